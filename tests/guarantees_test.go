package tests

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

func TestReadAfterWriteAcrossTwoInstances(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	a := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	b := newRepo[sigKey, *sigRow](t, env.Open(t), signalSchema())
	k := sigKey{"BTCUSDT", "s", "ex"}
	for i := 0; i < 5; i++ {
		w, r := a, b
		if i%2 == 1 {
			w, r = b, a
		}
		want := fmt.Sprintf("v%d", i)
		must(t, w.Put(ctx, k, &sigRow{ID: want}, time.Time{}))
		got, err := r.Get(ctx, k)
		must(t, err)
		if got.Payload == nil || got.Payload.ID != want {
			t.Fatalf("round %d: other instance read %+v, want %s", i, got.Payload, want)
		}
	}
}

func TestFiftyConcurrentUpsertsMakeOneDocumentAndNoErrors(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for round := 0; round < 3; round++ {
		k := memKey{"race", "b", fmt.Sprint(round)}
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for g := 0; g < 50; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.Put(ctx, k, memData{Value: g}, ms(int64(g+1)))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: a concurrent upsert returned %v", round, err)
			}
		}
		n, err := r.Collection().CountDocuments(ctx, bson.D{{Key: "memoryId", Value: k.MemoryID}})
		must(t, err)
		if n != 1 {
			t.Fatalf("round %d: %d documents for one key", round, n)
		}
		got, err := r.Get(ctx, k)
		must(t, err)
		if got.Payload.Value < 0 || got.Payload.Value >= 50 || !got.When.Equal(ms(int64(got.Payload.Value+1))) {
			t.Fatalf("round %d: torn write %+v", round, got)
		}
	}
}

func TestConcurrentInsertsKeepExactlyOneFirstWriter(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	k := candleKey{"ex", "SYM", "1m", 60000}
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted := 0
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := r.Insert(ctx, k, candle{Timestamp: 60000, Close: float64(g)}, time.Time{})
			if err != nil {
				t.Errorf("insert: %v", err)
			}
			if ok {
				mu.Lock()
				inserted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if inserted != 1 {
		t.Fatalf("%d inserts reported inserted, want 1", inserted)
	}
	if n, _ := r.Collection().CountDocuments(ctx, bson.D{}); n != 1 {
		t.Fatalf("documents = %d", n)
	}
}

func TestDocumentDeletedBehindTheCacheHeals(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	k := sigKey{"BTCUSDT", "s", "ex"}
	rk, err := r.RedisKey(k)
	must(t, err)
	must(t, r.Put(ctx, k, &sigRow{ID: "old"}, time.Time{}))
	oldID := env.Redis.Get(ctx, rk).Val()

	// Deleted: the read is not found and the dead identity is dropped.
	_, err = r.Collection().DeleteMany(ctx, bson.D{})
	must(t, err)
	_, err = r.Get(ctx, k)
	wantNotFound(t, err)
	if env.Redis.Exists(ctx, rk).Val() != 0 {
		t.Fatal("the identity of a deleted document was kept")
	}

	// Recreated by someone else with a new _id: the stale identity falls back
	// to the compound filter, then heals, and the next read is warm again.
	must(t, r.Put(ctx, k, &sigRow{ID: "mid"}, time.Time{}))
	must(t, env.Redis.Set(ctx, rk, oldID, 0).Err())
	_, err = r.Collection().DeleteMany(ctx, bson.D{})
	must(t, err)
	newID := bson.NewObjectID()
	_, err = r.Collection().InsertOne(ctx, bson.D{{Key: "_id", Value: newID}, {Key: "symbol", Value: "BTCUSDT"}, {Key: "strategyName", Value: "s"},
		{Key: "exchangeName", Value: "ex"}, {Key: "payload", Value: bson.D{{Key: "id", Value: "new"}}}})
	must(t, err)
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.ID != "new" {
		t.Fatalf("read %+v after recreation", got.Payload)
	}
	if env.Redis.Get(ctx, rk).Val() != newID.Hex() {
		t.Fatal("identity not healed")
	}
	tctx, tr := runtime.WithTrace(ctx)
	_, err = r.Get(tctx, k)
	must(t, err)
	if tr.Mongo() != 1 || tr.Redis() != 1 {
		t.Fatalf("read after healing: %v, want one GET and one find", tr.Commands())
	}
}

func TestIdentityOfAnotherDocumentIsNeverFollowed(t *testing.T) {
	// Another engine that does not escape ':' can write the identity of one
	// key under the Redis key of another. The read must still answer for the
	// key it was asked.
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	a, b := sigKey{"A", "s", "ex"}, sigKey{"B", "s", "ex"}
	must(t, r.Put(ctx, a, &sigRow{ID: "a"}, time.Time{}))
	must(t, r.Put(ctx, b, &sigRow{ID: "b"}, time.Time{}))
	rka, _ := r.RedisKey(a)
	rkb, _ := r.RedisKey(b)
	must(t, env.Redis.Set(ctx, rka, env.Redis.Get(ctx, rkb).Val(), 0).Err())
	got, err := r.Get(ctx, a)
	must(t, err)
	if got.Payload.ID != "a" {
		t.Fatalf("read %q for key A", got.Payload.ID)
	}
	if env.Redis.Get(ctx, rka).Val() != got.ID.Hex() {
		t.Fatal("wrong identity not replaced")
	}
}

func TestRedisCutMidRunReadsAndWritesGoOnAndCacheReturns(t *testing.T) {
	t.Parallel()
	_, redisURL := testenv.URIs(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0"))
	env := testenv.New(t, func(c *runtime.Config) {
		c.RedisURL = "redis://" + proxy.Addr() + "/0"
		c.RedisTimeout = 300 * time.Millisecond
		c.RedisRetryAfter = 200 * time.Millisecond
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	check := func(k memKey, want int) {
		t.Helper()
		got, err := r.Get(ctx, k)
		if err != nil || got.Payload.Value != want {
			t.Fatalf("Get(%v) = %+v, %v; want %d", k, got.Payload, err, want)
		}
	}
	for i := 0; i < 10; i++ {
		must(t, r.Put(ctx, memKey{"s", "b", itoa(i)}, memData{Value: i}, ms(1)))
	}
	check(memKey{"s", "b", "3"}, 3)

	for _, outage := range []struct {
		name string
		cut  func()
	}{{"refused", proxy.Cut}, {"stalled", proxy.Stall}} {
		outage.cut()
		before := env.Conn.Stats().RedisFailures
		for i := 0; i < 10; i++ {
			must(t, r.Put(ctx, memKey{"s", "b", itoa(i)}, memData{Value: 100 + i}, ms(2)))
			must(t, r.Put(ctx, memKey{"s", "new-" + outage.name, itoa(i)}, memData{Value: 200 + i}, ms(2)))
		}
		for i := 0; i < 10; i++ {
			check(memKey{"s", "b", itoa(i)}, 100+i)
			check(memKey{"s", "new-" + outage.name, itoa(i)}, 200+i)
		}
		got, err := r.GetMany(ctx, []memKey{{"s", "b", "1"}, {"s", "new-" + outage.name, "2"}})
		must(t, err)
		if got[0] == nil || got[0].Payload.Value != 101 || got[1] == nil || got[1].Payload.Value != 202 {
			t.Fatalf("%s: GetMany during outage = %+v", outage.name, got)
		}
		if env.Conn.Stats().RedisFailures == before {
			t.Fatalf("%s: no Redis failure counted", outage.name)
		}
		proxy.Restore()
		// Back: within a bounded wait a read is served from the identity again.
		deadline := time.Now().Add(patience)
		for {
			tctx, tr := runtime.WithTrace(ctx)
			if got, err := r.Get(tctx, memKey{"s", "new-" + outage.name, "4"}); err != nil || got.Payload.Value != 204 {
				t.Fatalf("%s: read after restore = %+v, %v", outage.name, got.Payload, err)
			}
			if tr.Redis() == 1 && tr.Mongo() == 1 {
				break // warm read: the identity written after the outage is used
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: cache not used again after Redis came back: %v", outage.name, tr.Commands())
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i := 0; i < 10; i++ {
			check(memKey{"s", "b", itoa(i)}, 100+i)
		}
	}
}

func TestRoundTripBudgets(t *testing.T) {
	env := setup(t, memorySchema(), candleSchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	budget := func(name string, wantMongo, wantRedis int64, fn func(context.Context)) {
		t.Helper()
		tctx, tr := runtime.WithTrace(ctx)
		fn(tctx)
		if tr.Mongo() != wantMongo || tr.Redis() != wantRedis {
			t.Errorf("%s: %d MongoDB + %d Redis round trips %v; want %d + %d", name, tr.Mongo(), tr.Redis(), tr.Commands(), wantMongo, wantRedis)
		}
	}
	budget("write", 1, 1, func(c context.Context) { must(t, r.Put(c, k, memData{Value: 1}, ms(1))) })
	budget("warm read", 1, 1, func(c context.Context) { _, err := r.Get(c, k); must(t, err) })
	rk, _ := r.RedisKey(k)
	must(t, env.Redis.Del(ctx, rk).Err())
	budget("cold read", 1, 2, func(c context.Context) { _, err := r.Get(c, k); must(t, err) })
	budget("absent read", 1, 1, func(c context.Context) { _, err := r.Get(c, memKey{"s", "b", "nope"}); wantNotFound(t, err) })
	budget("as-of read", 1, 0, func(c context.Context) { _, err := r.GetAsOf(c, k, ms(5)); must(t, err) })
	budget("exists", 1, 0, func(c context.Context) { _, err := r.Exists(c, k); must(t, err) })
	budget("remove", 1, 0, func(c context.Context) { _, err := r.Remove(c, k); must(t, err) })

	const n = 500
	items := make([]runtime.Item[memKey, memData], n)
	keys := make([]memKey, n)
	for i := range items {
		keys[i] = memKey{"bulk", "b", itoa(i)}
		items[i] = runtime.Item[memKey, memData]{Key: keys[i], Payload: memData{Value: i}, When: ms(1)}
	}
	chunks := int64((n + env.Conn.WriteChunk() - 1) / env.Conn.WriteChunk())
	budget("batch write of 500 (new rows)", chunks, 1, func(c context.Context) { must(t, r.PutMany(c, items)) })
	budget("batch write of 500 (existing rows)", chunks, 0, func(c context.Context) { must(t, r.PutMany(c, items)) })
	budget("batch read of 500 (warm)", 1, 1, func(c context.Context) { _, err := r.GetMany(c, keys); must(t, err) })
	must(t, env.Redis.Del(ctx, mustKeys(t, r, keys)...).Err())
	budget("batch read of 500 (cold)", 1, 2, func(c context.Context) { _, err := r.GetMany(c, keys); must(t, err) })
	budget("list of 200 with a limit", 1, 0, func(c context.Context) {
		rows, err := runtime.Collect(r.List(c, runtime.ListOptions{Prefix: []any{"bulk"}, Limit: 200}))
		must(t, err)
		if len(rows) != 200 {
			t.Fatalf("listed %d", len(rows))
		}
	})

	cr := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	candles := make([]runtime.Item[candleKey, candle], n)
	for i := range candles {
		ts := float64(i * 60000)
		candles[i] = runtime.Item[candleKey, candle]{Key: candleKey{"ex", "SYM", "1m", ts}, Payload: candle{Timestamp: ts}}
	}
	budget("insert-if-absent of 500", 1, 1, func(c context.Context) {
		n, err := cr.InsertMany(c, candles)
		must(t, err)
		if n != 500 {
			t.Fatalf("inserted %d", n)
		}
	})
	// Where bulk results are inexact (FerretDB v1), the duplicate errors
	// are not mapped back to items: what is stored is read back by key.
	readBack := int64(0)
	if !env.Conn.Capabilities().BulkResults {
		readBack = 1
	}
	budget("insert-if-absent of 500 already stored", 1+readBack, 0, func(c context.Context) {
		n, err := cr.InsertMany(c, candles)
		must(t, err)
		if n != 0 {
			t.Fatalf("inserted %d", n)
		}
	})
}

func mustKeys[K runtime.Key, P any](t *testing.T, r *runtime.Repo[K, P], keys []K) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		var err error
		out[i], err = r.RedisKey(k)
		must(t, err)
	}
	return out
}

func TestStatsCountCallsRoundTripsAndCacheHits(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	k := sigKey{"a", "b", "c"}
	must(t, r.Put(ctx, k, &sigRow{ID: "1"}, time.Time{}))
	for i := 0; i < 3; i++ {
		_, err := r.Get(ctx, k)
		must(t, err)
	}
	_, err := r.Get(ctx, sigKey{"x", "y", "z"})
	wantNotFound(t, err)
	st := env.Conn.Stats()
	get, put := st.Ops["signal.Get"], st.Ops["signal.Put"]
	if get.Calls != 4 || get.Errors != 0 || get.CacheHits != 3 || get.CacheMisses != 1 || get.Mongo != 4 || get.Redis != 4 {
		t.Fatalf("signal.Get stats = %+v", get)
	}
	if put.Calls != 1 || put.Mongo != 1 || put.Redis != 1 {
		t.Fatalf("signal.Put stats = %+v", put)
	}
	if st.Mongo < get.Mongo+put.Mongo {
		t.Fatalf("total Mongo %d below the per-op sum", st.Mongo)
	}
}

func TestWithoutRedisEveryOperationGoesToMongoDB(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, func(c *runtime.Config) { c.DisableRedis = true })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	tctx, tr := runtime.WithTrace(ctx)
	must(t, r.Put(tctx, k, memData{Value: 3}, ms(1)))
	got, err := r.Get(tctx, k)
	must(t, err)
	many, err := r.GetMany(tctx, []memKey{k, {"s", "b", "absent"}})
	must(t, err)
	n, err := r.InsertMany(tctx, []runtime.Item[memKey, memData]{{Key: memKey{"s", "b", "new"}, Payload: memData{Value: 4}, When: ms(2)}})
	must(t, err)
	if got.Payload.Value != 3 || many[0] == nil || many[0].Payload.Value != 3 || many[1] != nil || n != 1 {
		t.Fatalf("get %+v, many %+v, inserted %d", got.Payload, many, n)
	}
	if tr.Redis() != 0 || tr.Mongo() != 4 {
		t.Fatalf("without Redis: %v; want 4 MongoDB commands and no Redis", tr.Commands())
	}
	if keys := env.Keys(ctx, t); len(keys) != 0 {
		t.Fatalf("Redis keys written with DisableRedis: %v", keys)
	}
}

// recorder is a slog.Handler that keeps the messages it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

func (h *recorder) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// The runtime never prints; it logs absorbed Redis failures, and the
// recovery, through the caller's logger.
func TestRedisFailuresAreLoggedThroughTheCallersLogger(t *testing.T) {
	t.Parallel()
	_, redisURL := testenv.URIs(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0"))
	rec := &recorder{}
	env := testenv.New(t, func(c *runtime.Config) {
		c.RedisURL = "redis://" + proxy.Addr() + "/0"
		c.RedisRetryAfter = 50 * time.Millisecond
		c.Logger = slog.New(rec)
	})
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	must(t, r.Put(ctx, sigKey{"a", "b", "c"}, &sigRow{ID: "1"}, time.Time{}))
	proxy.Cut()
	_, err := r.Get(ctx, sigKey{"a", "b", "c"})
	must(t, err)
	if !rec.has("WARN persistgen: redis failed; continuing against MongoDB alone") {
		t.Fatalf("no warning logged: %v", rec.msgs)
	}
	proxy.Restore()
	deadline := time.Now().Add(patience)
	for !rec.has("INFO persistgen: redis answers again") {
		if time.Now().After(deadline) {
			t.Fatalf("recovery not logged: %v", rec.msgs)
		}
		time.Sleep(60 * time.Millisecond)
		_, err := r.Get(ctx, sigKey{"a", "b", "c"})
		must(t, err)
	}
}
