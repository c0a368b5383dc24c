package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ValidateKey checks k against the domain's key rules (ErrInvalidKey).
func ValidateKey(s *Schema, k Key) error {
	_, _, err := keyOf(s, k)
	return err
}

// RedisKeyOf returns the Redis identity key of k, with prefix in front.
func RedisKeyOf(s *Schema, prefix string, k Key) (string, error) {
	c, vals, err := keyOf(s, k)
	if err != nil {
		return "", err
	}
	return c.redisKey(prefix, vals), nil
}

// FilterOf returns the compound filter of k, equal to the unique index.
func FilterOf(s *Schema, k Key) (bson.D, error) {
	c, vals, err := keyOf(s, k)
	if err != nil {
		return nil, err
	}
	return c.filter(vals), nil
}

func keyOf(s *Schema, k Key) (*compiled, []any, error) {
	c, err := compile(s)
	if err != nil {
		return nil, nil, err
	}
	vals, err := c.keyValues(k.KeyValues())
	if err != nil {
		return nil, nil, &OpError{Op: "key", Domain: s.Domain, Err: err}
	}
	return c, vals, nil
}

// PayloadOf unwraps the result of Get or GetAsOf: the payload and true for
// a row, the zero value and false (and no error) for ErrNotFound.
func PayloadOf[K Key, P any](rec Record[K, P], err error) (P, bool, error) {
	var zero P
	if errors.Is(err, ErrNotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	return rec.Payload, true, nil
}

// Payloads drains a list into its payloads; capHint sizes the slice (the
// list's limit), sparing the copies of a growing slice.
func Payloads[K Key, P any](seq iter.Seq2[Record[K, P], error], capHint int) ([]P, error) {
	out := make([]P, 0, max(capHint, 0))
	for rec, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Payload)
	}
	return out, nil
}

// NewestFirst sorts a list by creation, newest first.
func NewestFirst() []SortField { return []SortField{{Field: FieldCreateDate, Desc: true}} }

// IntervalStep returns the duration of a candle interval: 1m 3m 5m 15m 30m
// 1h 2h 4h 6h 8h 1d.
func IntervalStep(interval string) (time.Duration, error) {
	switch interval {
	case "1m":
		return time.Minute, nil
	case "3m":
		return 3 * time.Minute, nil
	case "5m":
		return 5 * time.Minute, nil
	case "15m":
		return 15 * time.Minute, nil
	case "30m":
		return 30 * time.Minute, nil
	case "1h":
		return time.Hour, nil
	case "2h":
		return 2 * time.Hour, nil
	case "4h":
		return 4 * time.Hour, nil
	case "6h":
		return 6 * time.Hour, nil
	case "8h":
		return 8 * time.Hour, nil
	case "1d":
		return 24 * time.Hour, nil
	}
	return 0, errorf(ErrInvalidArgument, "interval %q is not one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 1d", interval)
}

// axisMillis reads the last key value of a series key as epoch milliseconds.
func axisMillis(vals []any) (int64, bool) {
	switch v := vals[len(vals)-1].(type) {
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// PutSeries stores the elements of a time series, first write wins (an
// element is immutable once stored), skipping every element that is not
// closed yet: axis + interval >= now (Config.Now), so a candle still forming
// is never frozen. It returns how many were newly stored. Round trips: those
// of InsertMany (2), however many elements.
func PutSeries[K Key, P any](ctx context.Context, r *Repo[K, P], interval string, items []Item[K, P]) (int, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return 0, r.opErr(ctx, opInsertMany, nil, err)
	}
	now := r.conn.cfg.Now().UnixMilli()
	closed := make([]Item[K, P], 0, len(items))
	for _, it := range items {
		ts, ok := axisMillis(it.Key.KeyValues())
		if !ok {
			return 0, r.opErr(ctx, opInsertMany, it.Key.KeyValues(), errorf(ErrInvalidKey, "the series axis (last key field) must be a number of epoch milliseconds"))
		}
		if ts+step.Milliseconds() < now {
			closed = append(closed, it)
		}
	}
	if len(closed) == 0 {
		return 0, nil
	}
	return r.InsertMany(ctx, closed)
}

// SeriesWindow reads limit elements of the series prefix (the key without
// its axis) starting at since: exactly limit elements at since + i*interval,
// in order, or ok=false when any one of them is missing. One round trip.
func SeriesWindow[K Key, P any](ctx context.Context, r *Repo[K, P], prefix []any, interval string, since int64, limit int) ([]P, bool, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return nil, false, r.opErr(ctx, opList, prefix, err)
	}
	if limit <= 0 {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidArgument, "limit %d: ask for at least one element", limit))
	}
	if len(prefix) != len(r.s.Key)-1 {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidKey, "a window needs every key field but the axis (%d values), got %d", len(r.s.Key)-1, len(prefix)))
	}
	axis := r.s.Key[len(r.s.Key)-1].Name
	stepMs := step.Milliseconds()
	end := since + int64(limit)*stepMs
	out := make([]P, 0, limit)
	i := int64(0)
	for rec, err := range r.List(ctx, ListOptions{Prefix: prefix, Range: &Range{Field: axis, From: float64(since), To: float64(end)}, Limit: limit}) {
		if err != nil {
			return nil, false, err
		}
		ts, _ := axisMillis(rec.Key.KeyValues())
		if ts != since+i*stepMs {
			return nil, false, nil // a gap (or an element off the grid)
		}
		out = append(out, rec.Payload)
		i++
	}
	if len(out) != limit {
		return nil, false, nil
	}
	return out, true, nil
}

// MarshalTuple encodes values as a BSON array: the wire form of upstream's
// [key, value] pairs.
func MarshalTuple(values ...any) (byte, []byte, error) {
	t, data, err := bson.MarshalValue(bson.A(values))
	return byte(t), data, err
}

// UnmarshalTuple decodes a BSON array into ptrs in order, or a document by
// names (the object form of the same tuple). Null leaves ptrs unchanged.
func UnmarshalTuple(typ byte, data []byte, names []string, ptrs ...any) error {
	switch bson.Type(typ) {
	case bson.TypeArray:
		vals, err := bson.RawArray(data).Values()
		if err != nil {
			return err
		}
		if len(vals) != len(ptrs) {
			return fmt.Errorf("tuple: %d elements stored, %d expected", len(vals), len(ptrs))
		}
		for i, v := range vals {
			if err := v.Unmarshal(ptrs[i]); err != nil {
				return fmt.Errorf("tuple element %d (%s): %w", i, names[i], err)
			}
		}
		return nil
	case bson.TypeEmbeddedDocument:
		doc := bson.Raw(data)
		for i, n := range names {
			v, err := doc.LookupErr(n)
			if err != nil {
				continue
			}
			if err := v.Unmarshal(ptrs[i]); err != nil {
				return fmt.Errorf("tuple field %s: %w", n, err)
			}
		}
		return nil
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	}
	return fmt.Errorf("tuple: cannot decode BSON %s; want an array or a document", bson.Type(typ))
}

// KeyDecoder is implemented, on the pointer, by generated key types: it reads
// the key fields of a stored document without reflection. Keys that do not
// implement it are decoded with bson.Unmarshal.
type KeyDecoder interface {
	DecodeKey(raw bson.Raw) error
}

// KeyString reads a string key field of a stored document.
func KeyString(raw bson.Raw, field string) (string, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return "", fmt.Errorf("key field %q: %w", field, err)
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", fmt.Errorf("key field %q is a BSON %s, not a string", field, v.Type)
	}
	return s, nil
}

// KeyBool reads a bool key field of a stored document.
func KeyBool(raw bson.Raw, field string) (bool, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return false, fmt.Errorf("key field %q: %w", field, err)
	}
	b, ok := v.BooleanOK()
	if !ok {
		return false, fmt.Errorf("key field %q is a BSON %s, not a bool", field, v.Type)
	}
	return b, nil
}

// KeyFloat64 reads a numeric key field (double, int32 or int64) as float64.
func KeyFloat64(raw bson.Raw, field string) (float64, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return 0, fmt.Errorf("key field %q: %w", field, err)
	}
	switch v.Type {
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeInt32:
		return float64(v.Int32()), nil
	case bson.TypeInt64:
		return float64(v.Int64()), nil
	}
	return 0, fmt.Errorf("key field %q is a BSON %s, not a number", field, v.Type)
}

// KeyInt64 reads a numeric key field (int64, int32, or an integral double)
// as int64.
func KeyInt64(raw bson.Raw, field string) (int64, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return 0, fmt.Errorf("key field %q: %w", field, err)
	}
	switch v.Type {
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeDouble:
		if d := v.Double(); d == float64(int64(d)) {
			return int64(d), nil
		}
	}
	return 0, fmt.Errorf("key field %q is a BSON %s, not a whole number", field, v.Type)
}

// Shape records, for a payload read from a stored document, which of its
// type's fields the document lacked and which it held as null. Generated
// payload types keep one (their Shape field) and restore it when the value
// is written back: backtest-kit tells an absent field from a null one, and
// both from a zero (`x ?? fallback`). A field the program has since set to
// a non-empty value is written as set; one set to an empty value (0, "",
// false, nil) cannot be told from one left alone, and keeps its shape.
type Shape struct {
	Absent []string
	Null   []string
}

// ShapeOf reads the shape of an encoded document: the names among known
// (the type's fields that are always written) it lacks, and the names among
// nullable (the fields whose null the type would not write back by itself)
// it holds as null.
func ShapeOf(doc []byte, known, nullable []string) Shape {
	raw := bson.Raw(doc)
	var s Shape
	for _, name := range known {
		if _, err := raw.LookupErr(name); err != nil {
			s.Absent = append(s.Absent, name)
		}
	}
	for _, name := range nullable {
		if v, err := raw.LookupErr(name); err == nil && v.Type == bson.TypeNull {
			s.Null = append(s.Null, name)
		}
	}
	return s
}

// IsZero reports a value read from a document with every field present and
// none null, or not read at all: nothing to restore.
func (s Shape) IsZero() bool { return len(s.Absent) == 0 && len(s.Null) == 0 }

// Restore gives the encoded document doc its recorded shape: fields in
// Absent whose value is empty are removed, fields in Null whose value is
// empty (or that the encoding omitted) are written as null.
func (s Shape) Restore(doc []byte) ([]byte, error) {
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, len(doc)+16*len(s.Null))
	seen := make(map[string]bool, len(s.Null))
	for _, e := range elems {
		name := e.Key()
		switch {
		case slices.Contains(s.Absent, name) && emptyValue(e.Value()):
			continue
		case slices.Contains(s.Null, name):
			seen[name] = true
			if emptyValue(e.Value()) {
				out = appendNull(out, name)
				continue
			}
		}
		out = append(out, e...)
	}
	for _, name := range s.Null {
		if !seen[name] {
			out = appendNull(out, name)
		}
	}
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, nil
}

func appendNull(doc []byte, name string) []byte {
	doc = append(doc, byte(bson.TypeNull))
	doc = append(doc, name...)
	return append(doc, 0)
}

func emptyValue(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return true
	case bson.TypeDouble:
		return v.Double() == 0
	case bson.TypeInt32:
		return v.Int32() == 0
	case bson.TypeInt64:
		return v.Int64() == 0
	case bson.TypeString:
		return v.StringValue() == ""
	case bson.TypeBoolean:
		return !v.Boolean()
	}
	return false
}
