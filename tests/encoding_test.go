package tests

// Values in payloads: what the server cannot store is refused before
// anything is sent, and what it can store round-trips.

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/runtime"
)

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 11: NaN (which drops a FerretDB v1 connection), ±Inf and NUL
// bytes were not ErrInvalidArgument. Where the server cannot store them
// they are refused before anything is sent; where it can they round-trip.
func TestValuesTheServerCannotStoreAreInvalidArguments(t *testing.T) {
	env := setup(t, docSchema())
	ctx := ctxT(t)
	r := newRepo[docKey, map[string]any](t, env.Conn, docSchema())
	caps := env.Conn.Capabilities()
	cases := []struct {
		name  string
		value any
		can   bool
	}{
		{"nan", math.NaN(), caps.NaN},
		{"inf", math.Inf(1), caps.Infinity},
		{"nul", "a\x00b", caps.NulInStrings},
		{"nested", bson.A{bson.A{1, 2}}, caps.NestedArrays},
	}
	for _, c := range cases {
		k := docKey{c.name}
		err := r.Put(ctx, k, map[string]any{"deep": map[string]any{"v": c.value}}, time.Time{})
		if !c.can {
			if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), "payload.deep.v") {
				t.Fatalf("%s on %s: %v; want ErrInvalidArgument naming payload.deep.v", c.name, env.Conn.Server().Product, err)
			}
			if _, ok := storedDoc(t, ctx, env, "doc-items", bson.D{{Key: "name", Value: c.name}}); ok {
				t.Fatalf("%s: a refused write stored a row", c.name)
			}
			continue
		}
		must(t, err)
		got, err := r.Get(ctx, k)
		must(t, err)
		if fmt.Sprint(got.Payload["deep"]) == "" {
			t.Fatalf("%s: read back %v", c.name, got.Payload)
		}
	}
	if !caps.NulInStrings {
		if err := r.Put(ctx, docKey{"a\x00b"}, map[string]any{"v": 1}, time.Time{}); !errors.Is(err, runtime.ErrInvalidKey) {
			t.Fatalf("a NUL in a key part: %v; want ErrInvalidKey", err)
		}
	}
}

// A long key part beside a payload under MaxPayloadBytes, which together
// exceed a document, is refused before anything is sent, and the error
// does not repeat the whole key. Found by a review (issue 21): the write
// was sent and refused by the server, and the error held 200 KiB of key.
func TestAKeyAndPayloadOverADocumentAreRefusedBeforeSending(t *testing.T) {
	s := signalSchema()
	env := setup(t, s)
	r := newRepo[sigKey, *sigRow](t, env.Conn, s)
	k := sigKey{strings.Repeat("k", 200<<10), "b", "c"}
	big := &sigRow{ID: strings.Repeat("p", runtime.MaxPayloadBytes-100<<10)}
	ctx, tr := runtime.WithTrace(ctxT(t))
	err := r.Put(ctx, k, big, time.Time{})
	if !errors.Is(err, runtime.ErrInvalidArgument) || len(err.Error()) > 1000 {
		t.Fatalf("Put of a 200 KiB key part and a %d-byte payload = %.300v (%d bytes of text); want ErrInvalidArgument, short", len(big.ID), err, len(err.Error()))
	}
	if tr.Mongo() != 0 {
		t.Fatalf("the refused Put sent %v", tr.Commands())
	}
	if err := r.PutMany(ctxT(t), []runtime.Item[sigKey, *sigRow]{{Key: k, Payload: big}}); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("PutMany of it = %.300v; want ErrInvalidArgument", err)
	}
}
