package runtime

// List's query: the filter and options made of ListOptions, and what it
// refuses.

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestListQuery(t *testing.T) {
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

func TestListQueryRejects(t *testing.T) {
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

func TestRangeValue(t *testing.T) {
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

func TestSortable(t *testing.T) {
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
