package runtime

// The documents a write sends: the fields set, the payload's encoding, the
// upsert and the inserted document.

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSetFields(t *testing.T) {
	p := purePayload{Name: "a", V: 2.5}
	when := time.UnixMilli(1000).Add(time.Nanosecond)
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	set, err := r.setFields(p, when)
	if err != nil {
		t.Fatal(err)
	}
	want := bson.D{{Key: "payload", Value: pureRaw(t, p)}, {Key: "when", Value: 1001.0},
		{Key: "removed", Value: false}, {Key: "updatedDate", Value: pureNowMs}}
	if diff := cmp.Diff(want, set); diff != "" {
		t.Fatalf("setFields (-want +got):\n%s", diff)
	}
	if loc := set[3].Value.(time.Time).Location(); loc != time.UTC {
		t.Errorf("updatedDate in %v, want UTC", loc)
	}

	// A top-level payload drops the key and bookkeeping fields it carries.
	type top struct {
		ID     string  `bson:"_id"`
		Symbol string  `bson:"symbol"`
		When   int64   `bson:"when"`
		Open   float64 `bson:"open"`
		Note   string  `bson:"note"`
	}
	flat := &Schema{Domain: "candle", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "symbol"}}}
	rTop := pureRepo[top](t, flat, pureConn(Config{}, nil))
	set, err = rTop.setFields(top{ID: "x", Symbol: "BTC", When: 9, Open: 1.5, Note: "n"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want = bson.D{{Key: "open", Value: pureRaw(t, 1.5)}, {Key: "note", Value: pureRaw(t, "n")}, {Key: "updatedDate", Value: pureNowMs}}
	if diff := cmp.Diff(want, set); diff != "" {
		t.Fatalf("top-level setFields (-want +got):\n%s", diff)
	}

	// A nil pointer payload is stored as null.
	rPtr := pureRepo[*purePayload](t, pureCandles(), pureConn(Config{}, nil))
	set, err = rPtr.setFields(nil, when)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bson.RawValue{Type: bson.TypeNull}, set[0].Value); diff != "" {
		t.Fatalf("nil payload (-want +got):\n%s", diff)
	}
}

func TestSetFieldsEncoder(t *testing.T) {
	for _, tc := range []struct {
		form TupleForm
		caps *Capabilities
		docs bool
	}{
		{TupleDocument, nil, true},
		{TupleArray, nil, false},
		{TupleAuto, &Capabilities{NestedArrays: true}, false},
		{TupleAuto, &Capabilities{}, true},
	} {
		r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{TupleForm: tc.form}, tc.caps))
		r.SetPayloadEncoder(func(p purePayload, docs bool) any {
			return bson.D{{Key: "name", Value: p.Name}, {Key: "docs", Value: docs}}
		})
		set, err := r.setFields(purePayload{Name: "z"}, pureNow)
		if err != nil {
			t.Fatal(err)
		}
		want := pureRaw(t, bson.D{{Key: "name", Value: "z"}, {Key: "docs", Value: tc.docs}})
		if diff := cmp.Diff(want, set[0].Value); diff != "" {
			t.Errorf("form %q caps %+v (-want +got):\n%s", tc.form, tc.caps, diff)
		}
	}
}

func TestSetFieldsRejects(t *testing.T) {
	all := AllCapabilities()
	withWhen := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	plain := &Schema{Domain: "log", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "id"}}, Payload: "payload"}
	noWhen := pureRepo[purePayload](t, plain, pureConn(Config{}, nil))
	flat := &Schema{Domain: "flat", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "id"}}}
	top := pureRepo[int64](t, flat, pureConn(Config{}, nil))
	big := pureRepo[string](t, plain, pureConn(Config{}, &all))
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing when", func() error { _, err := withWhen.setFields(purePayload{}, time.Time{}); return err },
			"candle records the simulation time of each write: pass a non-zero when"},
		{"unwanted when", func() error { _, err := noWhen.setFields(purePayload{}, pureNow); return err },
			"log has no when column: pass the zero time"},
		{"when out of range", func() error {
			_, err := withWhen.setFields(purePayload{}, time.UnixMilli(maxWhenMs).Add(time.Millisecond))
			return err
		}, "outside what a JavaScript Date can hold"},
		{"NaN without the capability", func() error { _, err := withWhen.setFields(purePayload{V: math.NaN()}, pureNow); return err },
			"payload.v is NaN"},
		{"top-level payload not a document", func() error { _, err := top.setFields(5, time.Time{}); return err },
			"flat stores its payload at the top level, so the payload must encode to a document"},
		{"oversized payload", func() error { _, err := big.setFields(strings.Repeat("x", MaxPayloadBytes), time.Time{}); return err },
			"a document is limited to 16 MiB"},
	} {
		pureWantErr(t, tc.name, tc.err(), ErrInvalidArgument, tc.want)
	}
	// With every capability NaN is stored.
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, &all))
	if _, err := r.setFields(purePayload{V: math.NaN()}, pureNow); err != nil {
		t.Fatalf("NaN refused on a server that stores it: %v", err)
	}
}

func TestUpsertUpdateAndInsertDoc(t *testing.T) {
	id := bson.NewObjectID()
	set := bson.D{{Key: "payload", Value: 1}, {Key: "updatedDate", Value: pureNowMs}}
	want := bson.D{{Key: "$set", Value: set},
		{Key: "$setOnInsert", Value: bson.D{{Key: "_id", Value: id}, {Key: "createDate", Value: pureNowMs}}}}
	if diff := cmp.Diff(want, upsertUpdate(set, id)); diff != "" {
		t.Fatalf("upsertUpdate (-want +got):\n%s", diff)
	}

	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	p := purePayload{Name: "n"}
	doc, err := r.insertDoc([]any{"BTC", true, 5.0}, p, time.UnixMilli(7), id)
	if err != nil {
		t.Fatal(err)
	}
	wantDoc := bson.D{{Key: "_id", Value: id}, {Key: "symbol", Value: "BTC"}, {Key: "backtest", Value: true}, {Key: "timestamp", Value: 5.0},
		{Key: "payload", Value: pureRaw(t, p)}, {Key: "when", Value: 7.0}, {Key: "removed", Value: false},
		{Key: "updatedDate", Value: pureNowMs}, {Key: "createDate", Value: pureNowMs}}
	if diff := cmp.Diff(wantDoc, doc); diff != "" {
		t.Fatalf("insertDoc (-want +got):\n%s", diff)
	}
	if _, err := r.insertDoc([]any{"BTC", true, 5.0}, p, time.Time{}, id); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("insertDoc without when: %v", err)
	}
}
