package tests

import (
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// Batch reads larger than one read chunk are split, each part keeping its
// answers in the caller's order.
func TestGetManyAcrossReadChunks(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, func(c *runtime.Config) { c.ReadChunk = 10 })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	var items []runtime.Item[memKey, memData]
	var keys []memKey
	for i := 0; i < 35; i++ {
		k := memKey{"s", "b", fmt.Sprintf("%02d", i)}
		keys = append(keys, k)
		if i%5 != 4 { // every fifth key is absent
			items = append(items, runtime.Item[memKey, memData]{Key: k, Payload: memData{Value: i}, When: ms(1)})
		}
	}
	must(t, r.PutMany(ctx, items))
	// Half the identities are dropped: both phases cross chunk boundaries.
	for i := 0; i < 35; i += 2 {
		rk, err := r.RedisKey(keys[i])
		must(t, err)
		must(t, env.Redis.Del(ctx, rk).Err())
	}
	// Reverse order, to catch answers placed by position rather than by key.
	rev := make([]memKey, len(keys))
	for i, k := range keys {
		rev[len(keys)-1-i] = k
	}
	tctx, tr := runtime.WithTrace(ctx)
	got, err := r.GetMany(tctx, rev)
	must(t, err)
	for j, g := range got {
		i := len(keys) - 1 - j
		switch {
		case i%5 == 4 && g != nil:
			t.Fatalf("absent key %d read as %+v", i, g)
		case i%5 != 4 && (g == nil || g.Payload.Value != i || g.Key != keys[i]):
			t.Fatalf("key %d read as %+v", i, g)
		}
	}
	// Identities left: 14 hits (2 finds of 10); misses: 21 keys (3 finds).
	if tr.Mongo() != 5 {
		t.Fatalf("%v; want 2 finds by _id and 3 by key", tr.Commands())
	}
}

// Writers racing on the same keys in bulk: duplicate key errors inside a
// bulk write are retried for those items only and never returned.
func TestConcurrentBatchWritersOnTheSameKeys(t *testing.T) {
	env := setup(t, memorySchema(), candleSchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	c := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	const writers, n = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	inserted := make(chan int, writers)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			items := make([]runtime.Item[memKey, memData], n)
			for i := range items {
				items[i] = runtime.Item[memKey, memData]{Key: memKey{"race", "b", fmt.Sprint(i)}, Payload: memData{Value: w}, When: ms(int64(w + 1))}
			}
			errs <- r.PutMany(ctx, items)
		}()
		go func() {
			defer wg.Done()
			items := make([]runtime.Item[candleKey, candle], n)
			for i := range items {
				ts := float64(i * 60000)
				items[i] = runtime.Item[candleKey, candle]{Key: candleKey{"ex", "SYM", "1m", ts}, Payload: candle{Timestamp: ts, Close: float64(w)}}
			}
			k, err := c.InsertMany(ctx, items)
			errs <- err
			inserted <- k
		}()
	}
	wg.Wait()
	close(errs)
	close(inserted)
	for err := range errs {
		if err != nil {
			t.Fatalf("a racing batch writer got %v", err)
		}
	}
	total := 0
	for k := range inserted {
		total += k
	}
	if total != n {
		t.Fatalf("racing InsertMany calls inserted %d candles in all, want each of the %d exactly once", total, n)
	}
	for coll, want := range map[string]int64{"memory-items": n, "candle-items": n} {
		got, err := env.Conn.Database().Collection(coll).CountDocuments(ctx, bson.D{})
		must(t, err)
		if got != want {
			t.Fatalf("%s holds %d documents, want %d (one per key)", coll, got, want)
		}
	}
}

// Bulk writers on separate Conns (as separate processes would be) share
// FerretDB's connection pool: with the default chunk, three of them writing
// matched updates at once must not hang it. Not parallel, so that no other
// test's bulk writes add to theirs.
func TestBulkWritersOnSeparateConnsDoNotExhaustFerretDB(t *testing.T) {
	items := make([]runtime.Item[memKey, memData], 40)
	for i := range items {
		items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", fmt.Sprint(i)}, Payload: memData{Value: i}, When: ms(1)}
	}
	var repos []*runtime.Repo[memKey, memData]
	for i := 0; i < 3; i++ {
		env := testenv.New(t)
		must(t, env.Conn.EnsureIndexes(ctxT(t), memorySchema()))
		r := newRepo[memKey, memData](t, env.Conn, memorySchema())
		must(t, r.PutMany(ctxT(t), items)) // from now on every update matches
		repos = append(repos, r)
	}
	ctx := ctxT(t)
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, len(repos))
		for _, r := range repos {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- r.PutMany(ctx, items) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
	}
}
