package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/schema"
)

// rawRow is a row as stored: the key the runtime decodes is the whole
// document, kept for printing.
type rawRow struct{ doc bson.Raw }

func (r rawRow) KeyValues() []any { return nil }

func (r *rawRow) DecodeKey(raw bson.Raw) error {
	r.doc = append(bson.Raw(nil), raw...)
	return nil
}

// keyParts turns the command line's key parts, a prefix of the key in key
// order, into typed values, saying which part is wrong and what it should
// be.
func keyParts(s *runtime.Schema, args []string) ([]any, error) {
	if len(args) > len(s.Key) {
		return nil, fmt.Errorf("%d key parts for %s, whose key has %d (%s)", len(args), s.Domain, len(s.Key), keyNames(s))
	}
	out := make([]any, len(args))
	for i, a := range args {
		f := s.Key[i]
		switch f.Type {
		case schema.TypeFloat64:
			v, err := strconv.ParseFloat(a, 64)
			if err != nil {
				return nil, fmt.Errorf("key part %d (%s) %q: want a number", i+1, f.Name, a)
			}
			out[i] = v
		case schema.TypeInt64:
			v, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("key part %d (%s) %q: want an integer", i+1, f.Name, a)
			}
			out[i] = v
		case schema.TypeBool:
			t, fl := f.TrueWord, f.FalseWord
			if t == "" {
				t, fl = "true", "false"
			}
			switch a {
			case t:
				out[i] = true
			case fl:
				out[i] = false
			default:
				return nil, fmt.Errorf("key part %d (%s) %q: want %s or %s", i+1, f.Name, a, t, fl)
			}
		default:
			out[i] = a
		}
	}
	// The schema's own rules (no empty part, no NaN, valid UTF-8...),
	// before any server is asked: bad input is a usage error.
	c, err := schema.Compile(s)
	if err != nil {
		return nil, err
	}
	for i, v := range out {
		if out[i], err = c.Part(i, v); err != nil {
			return nil, fmt.Errorf("key part %d (%s): %s", i+1, s.Key[i].Name, schema.Message(err))
		}
	}
	return out, nil
}

func keyNames(s *runtime.Schema) string {
	var n []string
	for _, f := range s.Key {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

// parseTime reads -as-of and -known-at: RFC 3339, or epoch milliseconds.
func parseTime(v string) (time.Time, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-01-02T15:04:05Z) or epoch milliseconds", v)
	}
	return t, nil
}

// inspect prints a domain's rows under a key prefix as JSON lines (MongoDB
// relaxed extended JSON), newest first: by when where the domain has one,
// else by updatedDate. It only reads.
//
// With knownAt (a domain with history), the rows are those a reader saw at
// knownAt: each key's last version recorded by then, with its _hv (version
// number) and _hr (when it was recorded).
func inspect(ctx context.Context, conn *runtime.Conn, s *runtime.Schema, parts []any, asOf, knownAt time.Time, limit int, removed bool, stdout io.Writer) (int, error) {
	r, err := runtime.NewRepo[rawRow, any](conn, s)
	if err != nil {
		return 0, err
	}
	newest := runtime.FieldUpdatedDate
	if s.HasWhen {
		newest = runtime.FieldWhen
	}
	n := 0
	for rec, err := range r.List(ctx, runtime.ListOptions{Prefix: parts, AsOf: asOf, KnownAt: knownAt, Limit: limit, IncludeRemoved: removed,
		Sort: []runtime.SortField{{Field: newest, Desc: true}}}) {
		if err != nil {
			return n, err
		}
		line, err := bson.MarshalExtJSON(rec.Key.doc, false, false)
		if err != nil {
			return n, fmt.Errorf("row %s: %v", rec.ID.Hex(), err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
