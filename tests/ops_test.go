package tests

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/runtime"
)

func TestGetAbsentKeyIsNotFound(t *testing.T) {
	env := setup(t, signalSchema())
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	_, err := r.Get(ctxT(t), sigKey{"BTCUSDT", "s1", "binance"})
	wantNotFound(t, err)
	var oe *runtime.OpError
	if !errors.As(err, &oe) || oe.Op != "Get" || oe.Domain != "signal" || oe.Key != "BTCUSDT/s1/binance" {
		t.Fatalf("error does not name op, domain and key: %#v", err)
	}
}

func TestPutThenGetReturnsPayloadAndBookkeeping(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	k := sigKey{"BTCUSDT", "s1", "binance"}
	must(t, r.Put(ctx, k, &sigRow{ID: "sig-1", Position: "long", PriceOpen: 42000.5}, time.Time{}))
	got, err := r.Get(ctx, k)
	must(t, err)
	if diff := cmp.Diff(&sigRow{ID: "sig-1", Position: "long", PriceOpen: 42000.5}, got.Payload); diff != "" {
		t.Fatalf("payload (-want +got):\n%s", diff)
	}
	if got.Key != k {
		t.Fatalf("key = %+v, want %+v", got.Key, k)
	}
	if got.ID.IsZero() || got.CreateDate.IsZero() || got.UpdatedDate.IsZero() {
		t.Fatalf("missing _id or dates: %+v", got)
	}
}

func TestPutNullPayloadKeepsDocument(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	k := sigKey{"ETHUSDT", "s1", "binance"}
	must(t, r.Put(ctx, k, &sigRow{ID: "a"}, time.Time{}))
	must(t, r.Put(ctx, k, nil, time.Time{}))
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload != nil {
		t.Fatalf("payload = %+v, want nil", got.Payload)
	}
	raw, err := env.Conn.Database().Collection("signal-items").FindOne(ctx, bson.D{{Key: "symbol", Value: "ETHUSDT"}}).Raw()
	must(t, err)
	if typ := raw.Lookup("payload").Type; typ != bson.TypeNull {
		t.Fatalf("stored payload type = %v, want null", typ)
	}
	if n, _ := env.Conn.Database().Collection("signal-items").CountDocuments(ctx, bson.D{}); n != 1 {
		t.Fatalf("documents = %d, want 1", n)
	}
}

func TestLastWriterWinsEvenWithSmallerWhen(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"sig", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(2000)))
	must(t, r.Put(ctx, k, memData{Value: 2}, ms(1000)))
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.Value != 2 || !got.When.Equal(ms(1000)) {
		t.Fatalf("got value %d when %v, want 2 at %v", got.Payload.Value, got.When, ms(1000))
	}
}

func TestGetAsOfNeverSeesTheFuture(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"sig", "b", "m"}
	_, err := r.GetAsOf(ctx, k, ms(5000))
	wantNotFound(t, err) // before any write
	must(t, r.Put(ctx, k, memData{Value: 7}, ms(3000)))
	_, err = r.GetAsOf(ctx, k, ms(2999))
	wantNotFound(t, err)
	got, err := r.GetAsOf(ctx, k, ms(3000))
	must(t, err)
	if got.Payload.Value != 7 {
		t.Fatalf("as of 3000: value %d, want 7", got.Payload.Value)
	}
	s := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	if _, err := s.GetAsOf(ctx, sigKey{"a", "b", "c"}, ms(1)); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("GetAsOf on a domain without when: %v, want ErrInvalidArgument", err)
	}
}

func TestWhenIsRequiredExactlyWhereTheDomainHasIt(t *testing.T) {
	env := setup(t)
	ctx := ctxT(t)
	m := newRepo[memKey, memData](t, env.Conn, memorySchema())
	if err := m.Put(ctx, memKey{"s", "b", "m"}, memData{}, time.Time{}); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("memory without when: %v", err)
	}
	s := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	if err := s.Put(ctx, sigKey{"a", "b", "c"}, nil, ms(1)); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("signal with when: %v", err)
	}
	if n, _ := env.Conn.Database().Collection("memory-items").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("a rejected write stored %d documents", n)
	}
}

func TestInsertIsFirstWriterWins(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	k := candleKey{"binance", "BTCUSDT", "1m", 1700000000000}
	ins, err := r.Insert(ctx, k, candle{Timestamp: k.Timestamp, Open: 1, Close: 2}, time.Time{})
	must(t, err)
	if !ins {
		t.Fatal("first insert reported not inserted")
	}
	ins, err = r.Insert(ctx, k, candle{Timestamp: k.Timestamp, Open: 9, Close: 9}, time.Time{})
	must(t, err)
	if ins {
		t.Fatal("second insert reported inserted")
	}
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.Open != 1 || got.Payload.Close != 2 {
		t.Fatalf("candle = %+v, want the first write", got.Payload)
	}
	// Top-level payload: OHLCV fields sit beside the key, no payload field.
	raw, err := r.Collection().FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	if _, err := raw.LookupErr("open"); err != nil {
		t.Fatalf("open not at top level: %v", raw)
	}
	if _, err := raw.LookupErr("payload"); err == nil {
		t.Fatalf("unexpected payload field: %v", raw)
	}
}

func TestRemoveHidesRowButExistsSeesIt(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"sig", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(10)))
	removed, err := r.Remove(ctx, k)
	must(t, err)
	if !removed {
		t.Fatal("Remove reported nothing removed")
	}
	_, err = r.Get(ctx, k)
	wantNotFound(t, err)
	ok, err := r.Exists(ctx, k)
	must(t, err)
	if !ok {
		t.Fatal("Exists = false for a removed row")
	}
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig", "b"}}))
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("list shows %d removed rows", len(rows))
	}
	rows, err = runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig", "b"}, IncludeRemoved: true}))
	must(t, err)
	if len(rows) != 1 || !rows[0].Removed {
		t.Fatalf("IncludeRemoved list = %+v", rows)
	}
	// Writing again revives it.
	must(t, r.Put(ctx, k, memData{Value: 2}, ms(20)))
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.Value != 2 || got.Removed {
		t.Fatalf("after rewrite: %+v", got)
	}
}

func TestRemoveAbsentKeyCreatesNothing(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	removed, err := r.Remove(ctx, memKey{"x", "y", "z"})
	must(t, err)
	if removed {
		t.Fatal("removed an absent key")
	}
	ok, err := r.Exists(ctx, memKey{"x", "y", "z"})
	must(t, err)
	if ok {
		t.Fatal("Remove created a row")
	}
	if n, _ := r.Collection().CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("documents = %d", n)
	}
}

func TestListPrefixSortLimitAsOf(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig"}}))
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("empty list = %d rows", len(rows))
	}
	for i, id := range []string{"c", "a", "d", "b"} {
		must(t, r.Put(ctx, memKey{"sig", "b1", id}, memData{Value: i}, ms(int64(100*(i+1)))))
	}
	must(t, r.Put(ctx, memKey{"sig", "b2", "z"}, memData{Value: 99}, ms(1)))
	must(t, r.Put(ctx, memKey{"other", "b1", "a"}, memData{Value: 98}, ms(1)))

	ids := func(rs []runtime.Record[memKey, memData]) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Key.MemoryID)
		}
		return out
	}
	rows, err = runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig", "b1"}}))
	must(t, err)
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, ids(rows)); diff != "" {
		t.Fatalf("key order (-want +got):\n%s", diff)
	}
	rows, err = runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig", "b1"}, Sort: []runtime.SortField{{Field: "when", Desc: true}}, Limit: 2}))
	must(t, err)
	if diff := cmp.Diff([]string{"b", "d"}, ids(rows)); diff != "" {
		t.Fatalf("newest two (-want +got):\n%s", diff)
	}
	rows, err = runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"sig", "b1"}, AsOf: ms(250)}))
	must(t, err)
	if diff := cmp.Diff([]string{"a", "c"}, ids(rows)); diff != "" {
		t.Fatalf("as of 250 (-want +got):\n%s", diff)
	}
	// Stopping early is fine and releases the cursor.
	n := 0
	for _, err := range r.List(ctx, runtime.ListOptions{Prefix: []any{"sig"}}) {
		must(t, err)
		n++
		if n == 2 {
			break
		}
	}
	if _, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Sort: []runtime.SortField{{Field: "payload"}}})); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("sort by payload: %v", err)
	}
	if _, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{""}})); !errors.Is(err, runtime.ErrInvalidKey) {
		t.Fatalf("empty prefix part: %v", err)
	}
}

func TestListRangeOverKeyField(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	var items []runtime.Item[candleKey, candle]
	for i := 0; i < 10; i++ {
		ts := float64(1_700_000_000_000 + i*60_000)
		items = append(items, runtime.Item[candleKey, candle]{Key: candleKey{"ex", "SYM", "1m", ts}, Payload: candle{Timestamp: ts, Close: float64(i)}})
	}
	n, err := r.InsertMany(ctx, items)
	must(t, err)
	if n != 10 {
		t.Fatalf("inserted %d", n)
	}
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{
		Prefix: []any{"ex", "SYM", "1m"},
		Range:  &runtime.Range{Field: "timestamp", From: 1_700_000_000_000 + 3*60_000, To: 1_700_000_000_000 + 6*60_000},
	}))
	must(t, err)
	var closes []float64
	for _, r := range rows {
		closes = append(closes, r.Payload.Close)
	}
	if diff := cmp.Diff([]float64{3, 4, 5}, closes); diff != "" {
		t.Fatalf("window (-want +got):\n%s", diff)
	}
}

func TestGetManyMixesHitsMissesAndAbsent(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	must(t, r.Put(ctx, memKey{"s", "b", "1"}, memData{Value: 1}, ms(1)))
	must(t, r.Put(ctx, memKey{"s", "b", "2"}, memData{Value: 2}, ms(1)))
	must(t, r.Put(ctx, memKey{"s", "b", "3"}, memData{Value: 3}, ms(1)))
	_, err := r.Remove(ctx, memKey{"s", "b", "3"})
	must(t, err)
	// Drop one identity so that key 2 is a cache miss.
	rk, err := r.RedisKey(memKey{"s", "b", "2"})
	must(t, err)
	must(t, env.Redis.Del(ctx, rk).Err())

	keys := []memKey{{"s", "b", "1"}, {"s", "b", "2"}, {"s", "b", "3"}, {"s", "b", "absent"}, {"s", "b", "1"}}
	got, err := r.GetMany(ctx, keys)
	must(t, err)
	var vals []int
	for _, g := range got {
		if g == nil {
			vals = append(vals, -1)
		} else {
			vals = append(vals, g.Payload.Value)
		}
	}
	if diff := cmp.Diff([]int{1, 2, -1, -1, 1}, vals); diff != "" {
		t.Fatalf("GetMany (-want +got):\n%s", diff)
	}
	if env.Redis.Exists(ctx, rk).Val() != 1 {
		t.Fatal("GetMany did not backfill the missing identity")
	}
}

func TestInsertManyKeepsExistingRowsAndFirstOfDuplicates(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	k := func(ts float64) candleKey { return candleKey{"ex", "SYM", "1m", ts} }
	_, err := r.Insert(ctx, k(1), candle{Timestamp: 1, Close: 100}, time.Time{})
	must(t, err)
	n, err := r.InsertMany(ctx, []runtime.Item[candleKey, candle]{
		{Key: k(1), Payload: candle{Timestamp: 1, Close: -1}},
		{Key: k(2), Payload: candle{Timestamp: 2, Close: 200}},
		{Key: k(2), Payload: candle{Timestamp: 2, Close: -2}},
		{Key: k(3), Payload: candle{Timestamp: 3, Close: 300}},
	})
	must(t, err)
	if n != 2 {
		t.Fatalf("inserted %d, want 2", n)
	}
	got, err := r.GetMany(ctx, []candleKey{k(1), k(2), k(3)})
	must(t, err)
	for i, want := range []float64{100, 200, 300} {
		if got[i] == nil || got[i].Payload.Close != want {
			t.Fatalf("candle %d = %+v, want close %v", i+1, got[i], want)
		}
	}
	if n, _ := r.Collection().CountDocuments(ctx, bson.D{}); n != 3 {
		t.Fatalf("documents = %d, want 3", n)
	}
	// Each identity names the document of its own key.
	for _, ts := range []float64{1, 2, 3} {
		rk, err := r.RedisKey(k(ts))
		must(t, err)
		raw, err := r.Collection().FindOne(ctx, bson.D{{Key: "timestamp", Value: ts}}).Raw()
		must(t, err)
		if got, want := env.Redis.Get(ctx, rk).Val(), raw.Lookup("_id").ObjectID().Hex(); got != want {
			t.Fatalf("identity of candle %v = %q, its document is %s", ts, got, want)
		}
	}
}

func TestPutManyOverwritesAndKeepsLastOfDuplicates(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	must(t, r.Put(ctx, memKey{"s", "b", "1"}, memData{Value: 1}, ms(5)))
	var items []runtime.Item[memKey, memData]
	for i := 0; i < 95; i++ { // several bulk writes where MaxBulk is 10 (FerretDB v1)
		items = append(items, runtime.Item[memKey, memData]{Key: memKey{"s", "b", itoa(i)}, Payload: memData{Value: 1000 + i}, When: ms(int64(i + 1))})
	}
	items = append(items, runtime.Item[memKey, memData]{Key: memKey{"s", "b", "7"}, Payload: memData{Value: -7}, When: ms(7)})
	must(t, r.PutMany(ctx, items))
	keys := make([]memKey, 95)
	for i := range keys {
		keys[i] = memKey{"s", "b", itoa(i)}
	}
	got, err := r.GetMany(ctx, keys)
	must(t, err)
	for i, g := range got {
		want := 1000 + i
		if i == 7 {
			want = -7
		}
		if g == nil || g.Payload.Value != want {
			t.Fatalf("key %d = %+v, want %d", i, g, want)
		}
	}
	if n, _ := r.Collection().CountDocuments(ctx, bson.D{}); n != 95 {
		t.Fatalf("documents = %d, want 95", n)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
