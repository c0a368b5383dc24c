package runtime

import (
	"bytes"
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/schema"
)

// pureKey is a key given as its values.
type pureKey []any

func (k pureKey) KeyValues() []any { return k }

type purePayload struct {
	Name string  `bson:"name"`
	V    float64 `bson:"v"`
}

// pureNow is the clock of pureConn; pureNowMs is what Repo.now makes of it.
var (
	pureNow   = time.Date(2024, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))
	pureNowMs = time.Date(2024, 3, 4, 4, 6, 7, 891_000_000, time.UTC)
)

// pureConn is a Conn that never touches a server: a fixed clock and, when
// caps is non-nil, capabilities as if Ready had succeeded.
func pureConn(cfg Config, caps *Capabilities) *Conn {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return pureNow }
	}
	c := &Conn{cfg: cfg}
	if caps != nil {
		c.server = ServerInfo{Capabilities: *caps}
		c.ready.Store(true)
	}
	return c
}

func pureRepo[P any](t *testing.T, s *Schema, c *Conn) *Repo[pureKey, P] {
	t.Helper()
	return &Repo[pureKey, P]{conn: c, s: mustCompile(t, s)}
}

// pureCandles has a typed three-field key, when and removed.
func pureCandles() *Schema {
	return &Schema{Domain: "candle", Collection: "candle-items", RedisPrefix: "candle_cache",
		Key:     []KeyField{{Name: "symbol", Type: TypeString}, {Name: "backtest", Type: TypeBool}, {Name: "timestamp", Type: TypeFloat64}},
		HasWhen: true, HasRemoved: true, Payload: "payload"}
}

func pureRaw(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

func pureDoc(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pureWantErr(t *testing.T, name string, err, kind error, want string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want %v containing %q", name, err, kind, want)
	}
}

func TestPureListQuery(t *testing.T) {
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{ListBatch: 250}, nil))
	plain := pureCandles()
	plain.HasWhen, plain.HasRemoved = false, false
	rPlain := pureRepo[purePayload](t, plain, pureConn(Config{ListBatch: 250}, nil))
	notRemoved := bson.E{Key: "removed", Value: bson.D{{Key: "$ne", Value: true}}}
	keySort := bson.D{{Key: "symbol", Value: 1}, {Key: "backtest", Value: 1}, {Key: "timestamp", Value: 1}, {Key: "_id", Value: 1}}
	id := bson.NewObjectID()
	i64 := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name   string
		r      *Repo[pureKey, purePayload]
		o      ListOptions
		filter bson.D
		sort   bson.D
		limit  *int64
		batch  int32
	}{
		{"defaults", r, ListOptions{}, bson.D{notRemoved}, keySort, nil, 250},
		{"no removed column", rPlain, ListOptions{}, bson.D{}, keySort, nil, 250},
		{"include removed", r, ListOptions{IncludeRemoved: true}, bson.D{}, keySort, nil, 250},
		{"prefix normalised", r, ListOptions{Prefix: []any{"BTC", true, 5}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "backtest", Value: true}, {Key: "timestamp", Value: 5.0}, notRemoved}, keySort, nil, 250},
		{"range on the axis", r, ListOptions{Prefix: []any{"BTC", false}, Range: &Range{Field: "timestamp", From: 10, To: int64(20)}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "backtest", Value: false},
				{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: 10.0}, {Key: "$lt", Value: 20.0}}}, notRemoved}, keySort, nil, 250},
		{"range from only", r, ListOptions{Range: &Range{Field: "timestamp", From: 1.5}},
			bson.D{{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: 1.5}}}, notRemoved}, keySort, nil, 250},
		{"range to only", r, ListOptions{Range: &Range{Field: "_id", To: id}},
			bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}, notRemoved}, keySort, nil, 250},
		{"range without bounds", r, ListOptions{Range: &Range{Field: "timestamp"}}, bson.D{notRemoved}, keySort, nil, 250},
		{"range on when rounds up", r, ListOptions{Range: &Range{Field: "when", From: time.UnixMilli(1000).Add(time.Nanosecond), To: time.UnixMilli(2000)}},
			bson.D{{Key: "when", Value: bson.D{{Key: "$gte", Value: 1001.0}, {Key: "$lt", Value: 2000.0}}}, notRemoved}, keySort, nil, 250},
		{"as-of rounds down, after the range", r, ListOptions{
			Range: &Range{Field: "createDate", From: pureNow}, AsOf: time.UnixMilli(5000).Add(999_999)},
			bson.D{{Key: "createDate", Value: bson.D{{Key: "$gte", Value: pureNow}}},
				{Key: "when", Value: bson.D{{Key: "$lte", Value: 5000.0}}}, notRemoved}, keySort, nil, 250},
		{"sort newest first", r, ListOptions{Sort: NewestFirst()}, bson.D{notRemoved},
			bson.D{{Key: "createDate", Value: -1}, {Key: "_id", Value: -1}}, nil, 250},
		{"sort naming _id", r, ListOptions{Sort: []SortField{{Field: "timestamp"}, {Field: "_id", Desc: true}}}, bson.D{notRemoved},
			bson.D{{Key: "timestamp", Value: 1}, {Key: "_id", Value: -1}}, nil, 250},
		{"tie-breaker follows the first field", r, ListOptions{Sort: []SortField{{Field: "symbol"}, {Field: "when", Desc: true}}}, bson.D{notRemoved},
			bson.D{{Key: "symbol", Value: 1}, {Key: "when", Value: -1}, {Key: "_id", Value: 1}}, nil, 250},
		{"limit", r, ListOptions{Limit: 5}, bson.D{notRemoved}, keySort, i64(5), 6},
	} {
		filter, fo, err := tc.r.listQuery(tc.o)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.filter, filter); diff != "" {
			t.Errorf("%s: filter (-want +got):\n%s", tc.name, diff)
		}
		var got options.FindOptions
		for _, set := range fo.List() {
			if err := set(&got); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(tc.sort, got.Sort); diff != "" {
			t.Errorf("%s: sort (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.limit, got.Limit); diff != "" {
			t.Errorf("%s: limit (-want +got):\n%s", tc.name, diff)
		}
		if got.BatchSize == nil || *got.BatchSize != tc.batch {
			t.Errorf("%s: batch size %v, want %d", tc.name, got.BatchSize, tc.batch)
		}
	}
}

func TestPureListQueryRejects(t *testing.T) {
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	plain := pureCandles()
	plain.HasWhen = false
	rPlain := pureRepo[purePayload](t, plain, pureConn(Config{}, nil))
	for _, tc := range []struct {
		name string
		r    *Repo[pureKey, purePayload]
		o    ListOptions
		kind error
		want string
	}{
		{"long prefix", r, ListOptions{Prefix: []any{"a", true, 1, 2}}, ErrInvalidKey, "prefix has 4 values, the key has 3 fields (symbol, backtest, timestamp)"},
		{"mistyped prefix", r, ListOptions{Prefix: []any{"a", "yes"}}, ErrInvalidKey, `key field "backtest" is a bool, not a string (yes)`},
		{"empty prefix part", r, ListOptions{Prefix: []any{""}}, ErrInvalidKey, `key field "symbol" is empty`},
		{"range on payload", r, ListOptions{Range: &Range{Field: "payload", From: 1}}, ErrInvalidArgument, `range field "payload" is not a key field`},
		{"range on when without when", rPlain, ListOptions{Range: &Range{Field: "when", From: 1}}, ErrInvalidArgument, `range field "when"`},
		{"mistyped key bound", r, ListOptions{Range: &Range{Field: "timestamp", From: "x"}}, ErrInvalidArgument, "range bound"},
		{"mistyped date bound", r, ListOptions{Range: &Range{Field: "createDate", To: 5}}, ErrInvalidArgument, "does not fit createDate"},
		{"as-of without when", rPlain, ListOptions{AsOf: pureNow}, ErrInvalidArgument, "candle has no when column; AsOf does not apply"},
		{"sort on payload", r, ListOptions{Sort: []SortField{{Field: "payload"}}}, ErrInvalidArgument, `sort field "payload" is not a key field`},
		{"sort on when without when", rPlain, ListOptions{Sort: []SortField{{Field: "when"}}}, ErrInvalidArgument, `sort field "when"`},
		{"sort field twice", r, ListOptions{Sort: []SortField{{Field: "symbol"}, {Field: "timestamp"}, {Field: "symbol", Desc: true}}}, ErrInvalidArgument, `sort field "symbol" is listed twice`},
		{"_id twice", r, ListOptions{Sort: []SortField{{Field: "_id"}, {Field: "_id"}}}, ErrInvalidArgument, `sort field "_id" is listed twice`},
		{"negative limit", r, ListOptions{Limit: -1}, ErrInvalidArgument, "limit -1 is negative"},
	} {
		f, fo, err := tc.r.listQuery(tc.o)
		if f != nil || fo != nil {
			t.Errorf("%s: a query came with the error", tc.name)
		}
		pureWantErr(t, tc.name, err, tc.kind, tc.want)
	}
}

func TestPureRangeValue(t *testing.T) {
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	zone := time.FixedZone("Y", -7200)
	local := time.Date(2024, 1, 2, 3, 4, 5, 6, zone)
	id := bson.NewObjectID()
	for _, tc := range []struct {
		name  string
		field string
		v     any
		want  any
	}{
		{"int for a float key", "timestamp", 7, 7.0},
		{"empty string bound", "symbol", "", ""},
		{"bool key", "backtest", true, true},
		{"when from a whole-millisecond time", "when", time.UnixMilli(1500), 1500.0},
		{"when rounds up", "when", time.UnixMilli(1500).Add(time.Nanosecond), 1501.0},
		{"when before 1970 rounds up", "when", time.UnixMilli(-1500).Add(-time.Nanosecond), -1500.0},
		{"when beyond JavaScript dates clamps", "when", time.UnixMilli(maxWhenMs).Add(time.Millisecond), float64(maxWhenMs)},
		{"when before JavaScript dates clamps", "when", time.UnixMilli(-maxWhenMs).Add(-time.Millisecond), float64(-maxWhenMs - 1)},
		{"when as float millis", "when", 3.5, 3.5},
		{"when as int millis", "when", 3, int64(3)},
		{"when as int32 millis", "when", int32(-4), int64(-4)},
		{"when -0", "when", math.Copysign(0, -1), 0.0},
		{"createDate", "createDate", local, local},
		{"updatedDate", "updatedDate", local, local},
		{"_id", "_id", id, id},
	} {
		got, err := r.rangeValue(tc.field, tc.v)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		if tm, ok := got.(time.Time); ok && tm.Location() != time.UTC {
			t.Errorf("%s: %v is not in UTC", tc.name, tm)
		}
		if f, ok := got.(float64); ok && math.Signbit(f) && f == 0 {
			t.Errorf("%s: -0 kept", tc.name)
		}
	}
	for _, tc := range []struct {
		name  string
		field string
		v     any
		want  string
	}{
		{"string for a float key", "timestamp", "1", `key field "timestamp" is a float64, not a string (1)`},
		{"bool for a string key", "symbol", false, `range bound: key field "symbol" is a string, not a bool`},
		{"NaN key bound", "timestamp", math.NaN(), "not a storable number"},
		{"NaN when", "when", math.NaN(), "does not fit when"},
		{"string when", "when", "1", "does not fit when"},
		{"ObjectID when", "when", id, "does not fit when"},
		{"number createDate", "createDate", int64(5), "does not fit createDate"},
		{"time _id", "_id", local, "does not fit _id"},
		{"string _id", "_id", id.Hex(), "does not fit _id"},
		{"unknown field", "payload", local, "does not fit payload"},
	} {
		got, err := r.rangeValue(tc.field, tc.v)
		if got != nil {
			t.Errorf("%s: value %v came with the error", tc.name, got)
		}
		pureWantErr(t, tc.name, err, ErrInvalidArgument, tc.want)
	}
}

func TestPureSortable(t *testing.T) {
	r := pureRepo[purePayload](t, pureCandles(), pureConn(Config{}, nil))
	plain := pureCandles()
	plain.HasWhen = false
	rPlain := pureRepo[purePayload](t, plain, pureConn(Config{}, nil))
	for _, tc := range []struct {
		field        string
		when, noWhen bool
	}{
		{"symbol", true, true}, {"backtest", true, true}, {"timestamp", true, true},
		{"createDate", true, true}, {"updatedDate", true, true}, {"_id", true, true},
		{"when", true, false},
		{"removed", false, false}, {"payload", false, false}, {"", false, false}, {"Symbol", false, false},
	} {
		if got := r.sortable(tc.field); got != tc.when {
			t.Errorf("sortable(%q) with when = %v", tc.field, got)
		}
		if got := rPlain.sortable(tc.field); got != tc.noWhen {
			t.Errorf("sortable(%q) without when = %v", tc.field, got)
		}
	}
}

func TestPureWhenConversions(t *testing.T) {
	base := time.UnixMilli(1500)
	for _, tc := range []struct {
		name             string
		t                time.Time
		value, asOf, bnd float64
	}{
		{"whole millisecond", base, 1500, 1500, 1500},
		{"a nanosecond later", base.Add(time.Nanosecond), 1501, 1500, 1501},
		{"just before the next", base.Add(999_999), 1501, 1500, 1501},
		{"before 1970", time.UnixMilli(-1500).Add(-time.Nanosecond), -1500, -1501, -1500},
		{"epoch", time.Unix(0, 0), 0, 0, 0},
		{"latest JavaScript date", time.UnixMilli(maxWhenMs), maxWhenMs, maxWhenMs, maxWhenMs},
		{"earliest JavaScript date", time.UnixMilli(-maxWhenMs), -maxWhenMs, -maxWhenMs, -maxWhenMs},
	} {
		v, err := whenValue(tc.t)
		if err != nil || v != tc.value {
			t.Errorf("%s: whenValue = %v, %v; want %v", tc.name, v, err, tc.value)
		}
		if got := asOfValue(tc.t); got != tc.asOf {
			t.Errorf("%s: asOfValue = %v, want %v", tc.name, got, tc.asOf)
		}
		if got := whenBound(tc.t); got != tc.bnd {
			t.Errorf("%s: whenBound = %v, want %v", tc.name, got, tc.bnd)
		}
	}
	for _, tc := range []struct {
		name      string
		t         time.Time
		asOf, bnd float64
	}{
		{"after the latest", time.UnixMilli(maxWhenMs).Add(time.Nanosecond), maxWhenMs, maxWhenMs},
		{"far future", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), maxWhenMs, maxWhenMs},
		{"before the earliest", time.UnixMilli(-maxWhenMs).Add(-time.Nanosecond), -maxWhenMs - 1, -maxWhenMs - 1},
	} {
		_, err := whenValue(tc.t)
		pureWantErr(t, tc.name, err, ErrInvalidArgument, "outside what a JavaScript Date can hold")
		if got := asOfValue(tc.t); got != tc.asOf {
			t.Errorf("%s: asOfValue = %v, want %v", tc.name, got, tc.asOf)
		}
		if got := whenBound(tc.t); got != tc.bnd {
			t.Errorf("%s: whenBound = %v, want %v", tc.name, got, tc.bnd)
		}
	}
}

func TestPureTimeOf(t *testing.T) {
	at := time.UnixMilli(1700000040123).UTC()
	for _, tc := range []struct {
		name string
		v    any
		want time.Time
	}{
		{"date", at.In(time.FixedZone("Z", 3600)), at},
		{"double", 1700000040123.0, at},
		{"int64", int64(1700000040123), at},
		{"int32", int32(-5), time.UnixMilli(-5).UTC()},
		{"string", "2024", time.Time{}},
		{"bool", true, time.Time{}},
	} {
		got := timeOf(pureRaw(t, tc.v))
		if !got.Equal(tc.want) || got.Location() != tc.want.Location() {
			t.Errorf("%s: timeOf = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := timeOf(bson.RawValue{Type: bson.TypeNull}); !got.IsZero() {
		t.Errorf("timeOf(null) = %v", got)
	}
}

func TestPureSetFields(t *testing.T) {
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

func TestPureSetFieldsEncoder(t *testing.T) {
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

func TestPureSetFieldsRejects(t *testing.T) {
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

func TestPureUpsertUpdateAndInsertDoc(t *testing.T) {
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

func TestPureCompiledFilter(t *testing.T) {
	// testSchema's RedisOrder differs from its index order; the filter
	// follows the index.
	c := mustCompile(t, testSchema())
	got := c.filter([]any{"BTC", "macd", "binance", "", true})
	want := bson.D{{Key: "symbol", Value: "BTC"}, {Key: "strategyName", Value: "macd"}, {Key: "exchangeName", Value: "binance"},
		{Key: "frameName", Value: ""}, {Key: "backtest", Value: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("filter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(bson.D{{Key: "symbol", Value: "BTC"}}, c.filter([]any{"BTC"})); diff != "" {
		t.Fatalf("prefix filter (-want +got):\n%s", diff)
	}
}

func TestPureAnyOf(t *testing.T) {
	c := mustCompile(t, &Schema{Domain: "candle", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "symbol"}, {Name: "interval"}, {Name: "timestamp"}}})
	one := mustCompile(t, &Schema{Domain: "log", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "id"}}})
	for _, tc := range []struct {
		name string
		c    *compiled
		keys [][]any
		want bson.D
	}{
		{"shared prefix", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "1m", 2.0}, {"BTC", "1m", 3.0}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: bson.D{{Key: "$in", Value: bson.A{1.0, 2.0, 3.0}}}}}},
		{"one key", c, [][]any{{"BTC", "1m", 1.0}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: bson.D{{Key: "$in", Value: bson.A{1.0}}}}}},
		{"last key differs in a leading field", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "1m", 2.0}, {"ETH", "1m", 1.0}},
			bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 2.0}},
				bson.D{{Key: "symbol", Value: "ETH"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
			}}}},
		{"second field differs", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "5m", 1.0}},
			bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "5m"}, {Key: "timestamp", Value: 1.0}},
			}}}},
		{"single-field key", one, [][]any{{"a"}, {"b"}},
			bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: bson.A{"a", "b"}}}}}},
	} {
		if diff := cmp.Diff(tc.want, tc.c.anyOf(tc.keys)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPureDocKeyValues(t *testing.T) {
	s := &Schema{Domain: "d", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "s"}, {Name: "b"}, {Name: "i32"}, {Name: "i64"}, {Name: "negz"}, {Name: "f"}}}
	r := pureRepo[purePayload](t, s, pureConn(Config{}, nil))
	raw := pureDoc(t, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "f", Value: 2.5}, {Key: "s", Value: "x"}, {Key: "b", Value: true},
		{Key: "i32", Value: int32(7)}, {Key: "i64", Value: int64(1) << 60}, {Key: "negz", Value: math.Copysign(0, -1)}})
	got := r.docKeyValues(raw)
	want := []any{"x", true, int64(7), int64(1) << 60, 0.0, 2.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("docKeyValues (-want +got):\n%s", diff)
	}
	if math.Signbit(got[4].(float64)) {
		t.Fatal("-0 kept its sign")
	}
	// A document matches the key that was asked for, int or double.
	vals, err := r.s.Values([]any{"x", true, 7.0, float64(int64(1) << 60), 0, 2.5})
	if err != nil {
		t.Fatal(err)
	}
	if schema.Canon(vals) != schema.Canon(got) {
		t.Fatalf("Canon(%v) = %q, document's %q", vals, schema.Canon(vals), schema.Canon(got))
	}
}

func TestPureIntervalStep(t *testing.T) {
	for _, n := range schema.Intervals() {
		want, _ := schema.IntervalStep(n)
		if got, err := IntervalStep(n); err != nil || got != want || got <= 0 {
			t.Errorf("IntervalStep(%q) = %v, %v; want %v", n, got, err, want)
		}
	}
	if got, _ := IntervalStep("4h"); got != 4*time.Hour {
		t.Errorf("4h = %v", got)
	}
	for _, n := range []string{"", "2m", "1w", "1H"} {
		got, err := IntervalStep(n)
		if got != 0 {
			t.Errorf("IntervalStep(%q) = %v", n, got)
		}
		pureWantErr(t, n, err, ErrInvalidArgument, "is not one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 1d")
	}
}

func TestPureAxisMillis(t *testing.T) {
	for _, tc := range []struct {
		vals []any
		want int64
		ok   bool
	}{
		{[]any{"BTC", 1700000040000.0}, 1700000040000, true},
		{[]any{"BTC", 1.9}, 1, true},
		{[]any{int64(9), int64(-60000)}, -60000, true},
		{[]any{42}, 42, true},
		{[]any{int64(5), "5"}, 0, false},
		{[]any{1.0, true}, 0, false},
		{[]any{int32(5)}, 0, false},
	} {
		got, ok := axisMillis(tc.vals)
		if got != tc.want || ok != tc.ok {
			t.Errorf("axisMillis(%#v) = %d, %v; want %d, %v", tc.vals, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPureShapeOf(t *testing.T) {
	doc := pureDoc(t, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: nil}, {Key: "c", Value: "x"}, {Key: "d", Value: nil}})
	got := ShapeOf(doc, []string{"a", "x", "b", "y"}, []string{"b", "c", "z", "d"})
	want := Shape{Absent: []string{"x", "y"}, Null: []string{"b", "d"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ShapeOf (-want +got):\n%s", diff)
	}
	if got.IsZero() {
		t.Fatal("IsZero of a shape with fields")
	}
	full := ShapeOf(doc, []string{"a", "b"}, []string{"c"})
	if !full.IsZero() || full.Absent != nil || full.Null != nil {
		t.Fatalf("ShapeOf of a full document = %+v", full)
	}
	if !(Shape{}).IsZero() || (Shape{Null: []string{"a"}}).IsZero() || (Shape{Absent: []string{"a"}}).IsZero() {
		t.Fatal("IsZero")
	}
}

func TestPureShapeRestore(t *testing.T) {
	shape := Shape{
		Absent: []string{"zb", "zd", "zi32", "zi64", "zs", "znull", "zundef", "set", "emptyDoc", "emptyArr"},
		Null:   []string{"ns", "nset", "nmissing"},
	}
	doc := pureDoc(t, bson.D{
		{Key: "zb", Value: false}, {Key: "keep", Value: 0}, {Key: "zd", Value: 0.0}, {Key: "zi32", Value: int32(0)},
		{Key: "zi64", Value: int64(0)}, {Key: "zs", Value: ""}, {Key: "znull", Value: nil}, {Key: "zundef", Value: bson.Undefined{}},
		{Key: "set", Value: "v"}, {Key: "emptyDoc", Value: bson.D{}}, {Key: "emptyArr", Value: bson.A{}},
		{Key: "ns", Value: ""}, {Key: "nset", Value: 3.5},
	})
	got, err := shape.Restore(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := pureDoc(t, bson.D{
		{Key: "keep", Value: 0}, {Key: "set", Value: "v"}, {Key: "emptyDoc", Value: bson.D{}}, {Key: "emptyArr", Value: bson.A{}},
		{Key: "ns", Value: nil}, {Key: "nset", Value: 3.5}, {Key: "nmissing", Value: nil},
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("Restore:\n got %s\nwant %s", bson.Raw(got), bson.Raw(want))
	}
	if same, err := (Shape{}).Restore(doc); err != nil || !bytes.Equal(same, doc) {
		t.Fatalf("the zero shape changed the document: %v", err)
	}
	if _, err := shape.Restore([]byte{1, 2, 3}); err == nil {
		t.Fatal("Restore accepted a malformed document")
	}
}

// What ShapeOf records of a stored document, Restore gives back to the
// re-encoded value.
func TestPureShapeRoundTrip(t *testing.T) {
	type p struct {
		Name string `bson:"name"`
		N    int32  `bson:"n"`
		V    string `bson:"v"`
	}
	stored := pureDoc(t, bson.D{{Key: "name", Value: "a"}, {Key: "v", Value: nil}})
	shape := ShapeOf(stored, []string{"name", "n", "v"}, []string{"v"})
	var x p
	if err := bson.Unmarshal(stored, &x); err != nil {
		t.Fatal(err)
	}
	enc := pureDoc(t, bson.D{{Key: "name", Value: x.Name}, {Key: "n", Value: x.N}, {Key: "v", Value: x.V}})
	got, err := shape.Restore(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stored) {
		t.Fatalf("round trip: got %s, want %s", bson.Raw(got), bson.Raw(stored))
	}
}

func TestPureTuple(t *testing.T) {
	typ, data, err := MarshalTuple("k", int64(5))
	if err != nil {
		t.Fatal(err)
	}
	want := pureRaw(t, bson.A{"k", int64(5)})
	if bson.Type(typ) != bson.TypeArray || !bytes.Equal(data, want.Value) {
		t.Fatalf("MarshalTuple = %v %s", bson.Type(typ), bson.RawArray(data))
	}
	names := []string{"key", "value"}
	var k string
	var v int64
	if err := UnmarshalTuple(typ, data, names, &k, &v); err != nil || k != "k" || v != 5 {
		t.Fatalf("array form: %q %d %v", k, v, err)
	}

	obj := pureRaw(t, bson.D{{Key: "value", Value: int64(6)}, {Key: "key", Value: "o"}})
	k, v = "", 0
	if err := UnmarshalTuple(byte(obj.Type), obj.Value, names, &k, &v); err != nil || k != "o" || v != 6 {
		t.Fatalf("document form: %q %d %v", k, v, err)
	}
	part := pureRaw(t, bson.D{{Key: "key", Value: "p"}})
	k, v = "", 99
	if err := UnmarshalTuple(byte(part.Type), part.Value, names, &k, &v); err != nil || k != "p" || v != 99 {
		t.Fatalf("document without value: %q %d %v", k, v, err)
	}
	for _, nt := range []bson.Type{bson.TypeNull, bson.TypeUndefined} {
		k, v = "keep", 1
		if err := UnmarshalTuple(byte(nt), nil, names, &k, &v); err != nil || k != "keep" || v != 1 {
			t.Fatalf("%v: %q %d %v", nt, k, v, err)
		}
	}

	three := pureRaw(t, bson.A{"a", 1, 2})
	mistyped := pureRaw(t, bson.A{"a", "b"})
	badField := pureRaw(t, bson.D{{Key: "value", Value: "x"}})
	str := pureRaw(t, "x")
	for _, tc := range []struct {
		name string
		rv   bson.RawValue
		want string
	}{
		{"length", three, "tuple: 3 elements stored, 2 expected"},
		{"element type", mistyped, "tuple element 1 (value)"},
		{"field type", badField, "tuple field value"},
		{"not a tuple", str, "tuple: cannot decode BSON string; want an array or a document"},
	} {
		err := UnmarshalTuple(byte(tc.rv.Type), tc.rv.Value, names, &k, &v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestPureKeyDecoders(t *testing.T) {
	raw := bson.Raw(pureDoc(t, bson.D{{Key: "s", Value: "x"}, {Key: "b", Value: true}, {Key: "d", Value: 2.5},
		{Key: "di", Value: -3.0}, {Key: "i32", Value: int32(7)}, {Key: "i64", Value: int64(1) << 60}, {Key: "n", Value: nil}}))
	if got, err := KeyString(raw, "s"); err != nil || got != "x" {
		t.Errorf("KeyString = %q, %v", got, err)
	}
	if got, err := KeyBool(raw, "b"); err != nil || !got {
		t.Errorf("KeyBool = %v, %v", got, err)
	}
	for _, tc := range []struct {
		field string
		want  float64
	}{{"d", 2.5}, {"di", -3}, {"i32", 7}, {"i64", float64(int64(1) << 60)}} {
		if got, err := KeyFloat64(raw, tc.field); err != nil || got != tc.want {
			t.Errorf("KeyFloat64(%s) = %v, %v; want %v", tc.field, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		field string
		want  int64
	}{{"di", -3}, {"i32", 7}, {"i64", 1 << 60}} {
		if got, err := KeyInt64(raw, tc.field); err != nil || got != tc.want {
			t.Errorf("KeyInt64(%s) = %v, %v; want %v", tc.field, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"string of a bool", func() error { _, err := KeyString(raw, "b"); return err }(), `key field "b" is a BSON boolean, not a string`},
		{"string of null", func() error { _, err := KeyString(raw, "n"); return err }(), `key field "n" is a BSON null, not a string`},
		{"missing string", func() error { _, err := KeyString(raw, "nope"); return err }(), `key field "nope": `},
		{"bool of a string", func() error { _, err := KeyBool(raw, "s"); return err }(), `key field "s" is a BSON string, not a bool`},
		{"missing bool", func() error { _, err := KeyBool(raw, "nope"); return err }(), `key field "nope": `},
		{"float of a string", func() error { _, err := KeyFloat64(raw, "s"); return err }(), `key field "s" is a BSON string, not a number`},
		{"missing float", func() error { _, err := KeyFloat64(raw, "nope"); return err }(), `key field "nope": `},
		{"int of a fraction", func() error { _, err := KeyInt64(raw, "d"); return err }(), `key field "d" is a BSON double, not a whole number`},
		{"int of a bool", func() error { _, err := KeyInt64(raw, "b"); return err }(), `key field "b" is a BSON boolean, not a whole number`},
		{"missing int", func() error { _, err := KeyInt64(raw, "nope"); return err }(), `key field "nope": `},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestPureKeys(t *testing.T) {
	s := pureCandles()
	ks, err := CompileKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Schema() != s {
		t.Fatal("Schema() is not the compiled schema")
	}
	if _, err := CompileKeys(&Schema{Domain: "x"}); !errors.Is(err, ErrSchema) {
		t.Fatalf("CompileKeys(invalid) = %v", err)
	}
	if _, err := CompileKeys(nil); !errors.Is(err, ErrSchema) {
		t.Fatalf("CompileKeys(nil) = %v", err)
	}
	func() {
		defer func() {
			err, _ := recover().(error)
			if !errors.Is(err, ErrSchema) {
				t.Fatalf("MustCompileKeys(invalid) panicked with %v", err)
			}
		}()
		MustCompileKeys(&Schema{Domain: "x"})
	}()
	if MustCompileKeys(s).Schema() != s {
		t.Fatal("MustCompileKeys")
	}

	good := pureKey{"a:b", false, 5}
	if err := ks.Validate(good); err != nil {
		t.Fatal(err)
	}
	vals, err := ks.Values(good)
	if diff := cmp.Diff([]any{"a:b", false, 5.0}, vals); err != nil || diff != "" {
		t.Fatalf("Values: %v (-want +got):\n%s", err, diff)
	}
	if rk, err := ks.RedisKey("ns:", good); err != nil || rk != "ns:candle_cache:a%3Ab:false:5" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	f, err := ks.Filter(good)
	if diff := cmp.Diff(bson.D{{Key: "symbol", Value: "a:b"}, {Key: "backtest", Value: false}, {Key: "timestamp", Value: 5.0}}, f); err != nil || diff != "" {
		t.Fatalf("Filter: %v (-want +got):\n%s", err, diff)
	}

	bad := pureKey{"", false, 5}
	for _, tc := range []struct {
		op  string
		err error
	}{
		{"Validate", ks.Validate(bad)},
		{"RedisKey", func() error { _, err := ks.RedisKey("", bad); return err }()},
		{"Filter", func() error { _, err := ks.Filter(bad); return err }()},
	} {
		var oe *OpError
		if !errors.As(tc.err, &oe) || oe.Op != tc.op || oe.Domain != "candle" || !errors.Is(tc.err, ErrInvalidKey) ||
			!strings.Contains(tc.err.Error(), `key field "symbol" is empty`) {
			t.Errorf("%s: %v", tc.op, tc.err)
		}
	}
}

func TestPureEscapeKeyPart(t *testing.T) {
	var b strings.Builder
	EscapeKeyPart(&b, "a:%b")
	if b.String() != "a%3A%25b" {
		t.Fatalf("%q", b.String())
	}
}

func TestPureRaceOfCodes(t *testing.T) {
	for _, tc := range []struct {
		code int32
		msg  string
		want race
	}{
		{12582, "", raceDuplicate},
		{pgUniqueViolation, "", raceDuplicate},
		{pgExclusionViolation, "", raceDuplicate},
		{pgSerialization, "", raceTransient},
		{1, "ERROR: could not serialize access due to read/write dependencies", raceTransient},
		{0, "duplicate key value violates unique constraint", noRace},
		{11002, "", noRace},
	} {
		if got := raceOf(tc.code, tc.msg); got != tc.want {
			t.Errorf("raceOf(%d, %q) = %v, want %v", tc.code, tc.msg, got, tc.want)
		}
	}
	if pgState("23P01") != pgExclusionViolation || pgState("40001") != 16777220 || pgState("00000") != 0 {
		t.Fatalf("pgState")
	}
}

// pureSeq yields a record per payload name, then err if non-nil; stopped
// reports whether the consumer stopped early.
func pureSeq(names []string, err error, stopped *bool) iter.Seq2[Record[pureKey, purePayload], error] {
	return func(yield func(Record[pureKey, purePayload], error) bool) {
		for _, n := range names {
			if !yield(Record[pureKey, purePayload]{Payload: purePayload{Name: n}}, nil) {
				*stopped = true
				return
			}
		}
		if err != nil && !yield(Record[pureKey, purePayload]{}, err) {
			*stopped = true
			return
		}
		if err != nil {
			yield(Record[pureKey, purePayload]{Payload: purePayload{Name: "after"}}, nil)
		}
	}
}

func TestPurePayloadOf(t *testing.T) {
	rec := Record[pureKey, purePayload]{Payload: purePayload{Name: "a"}}
	if p, ok, err := PayloadOf(rec, nil); p.Name != "a" || !ok || err != nil {
		t.Errorf("row: %v %v %v", p, ok, err)
	}
	notFound := &OpError{Op: "Get", Domain: "d", Err: errorf(ErrNotFound, "x")}
	if p, ok, err := PayloadOf(rec, notFound); p != (purePayload{}) || ok || err != nil {
		t.Errorf("not found: %v %v %v", p, ok, err)
	}
	boom := errors.New("boom")
	if p, ok, err := PayloadOf(rec, boom); p != (purePayload{}) || ok || err != boom {
		t.Errorf("error: %v %v %v", p, ok, err)
	}
}

func TestPurePayloads(t *testing.T) {
	var stopped bool
	got, err := Payloads(pureSeq([]string{"a", "b", "c"}, nil, &stopped), 5)
	if err != nil || stopped {
		t.Fatal(err, stopped)
	}
	if diff := cmp.Diff([]purePayload{{Name: "a"}, {Name: "b"}, {Name: "c"}}, got); diff != "" || cap(got) != 5 {
		t.Fatalf("Payloads cap %d (-want +got):\n%s", cap(got), diff)
	}
	got, err = Payloads(pureSeq(nil, nil, &stopped), -1)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty: %#v %v", got, err)
	}
	boom := errors.New("boom")
	got, err = Payloads(pureSeq([]string{"a"}, boom, &stopped), 0)
	if got != nil || err != boom || !stopped {
		t.Fatalf("error: %v %v, stopped %v", got, err, stopped)
	}

	stopped = false
	recs, err := Collect(pureSeq([]string{"a", "b"}, boom, &stopped))
	if err != boom || !stopped || len(recs) != 2 || recs[1].Payload.Name != "b" {
		t.Fatalf("Collect = %v, %v, stopped %v", recs, err, stopped)
	}
	if diff := cmp.Diff([]SortField{{Field: "createDate", Desc: true}}, NewestFirst()); diff != "" {
		t.Fatalf("NewestFirst (-want +got):\n%s", diff)
	}
}

// ShapeOf's single pass agrees with a lookup per name, duplicate names and
// nulls included, on random documents.
func TestPureShapeOfAgreesWithLookups(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "ab", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		d := bson.D{}
		for range rng.IntN(8) {
			var v any = rng.IntN(3)
			if rng.IntN(3) == 0 {
				v = nil
			}
			d = append(d, bson.E{Key: names[rng.IntN(len(names))], Value: v})
		}
		doc := pureDoc(t, d)
		pick := func() []string {
			var out []string
			for _, n := range names {
				if rng.IntN(2) == 0 {
					out = append(out, n)
				}
			}
			return out
		}
		known, nullable := pick(), pick()
		if diff := cmp.Diff(shapeByLookup(doc, known, nullable), ShapeOf(doc, known, nullable)); diff != "" {
			t.Fatalf("%v, known %q, nullable %q (-lookups +ShapeOf):\n%s", d, known, nullable, diff)
		}
	}
}
