package tests

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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

// batchErr returns the *runtime.BatchError err wraps, failing the test when
// it wraps none.
func batchErr(t *testing.T, err error) *runtime.BatchError {
	t.Helper()
	var be *runtime.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want a *runtime.BatchError, got %v", err)
	}
	return be
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 1: PutMany returned nil for items it never stored (FerretDB v1
// reports an unordered bulk error at [0] and skips the rest of the batch).
// An item the server refuses is reported as not stored, every other item
// is stored, and the error names the refused item.
func TestPutManyReportsTheItemTheServerRefusedAndStoresTheRest(t *testing.T) {
	env := setup(t, docSchema())
	ctx := ctxT(t)
	r := newRepo[docKey, map[string]any](t, env.Conn, docSchema())
	must(t, r.Put(ctx, docKey{"k1"}, map[string]any{"a": 5}, time.Time{}))
	items := []runtime.Item[docKey, map[string]any]{
		{Key: docKey{"k0"}, Payload: map[string]any{"v": 1}},
		{Key: docKey{"k1"}, Payload: map[string]any{"a.b": 1}}, // a is a number: refused
		{Key: docKey{"k2"}, Payload: map[string]any{"v": 1}},
		{Key: docKey{"k3"}, Payload: map[string]any{"v": 1}},
	}
	err := r.PutMany(ctx, items)
	be := batchErr(t, err)
	want := []runtime.Outcome{runtime.Stored, runtime.NotStored, runtime.Stored, runtime.Stored}
	if fmt.Sprint(be.Outcomes) != fmt.Sprint(want) || be.Refused[1] == nil {
		t.Fatalf("outcomes %v, refused %v; want %v with item 1 refused", be.Outcomes, be.Refused, want)
	}
	if !strings.Contains(err.Error(), "item 1 [k1]") {
		t.Fatalf("the error does not name the refused item: %v", err)
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if raw, ok := storedDoc(t, ctx, env, "doc-items", bson.D{{Key: "name", Value: k}}); !ok || raw.Lookup("v").Type == 0 {
			t.Fatalf("%s reported stored but is not: %v", k, raw)
		}
	}
	if raw, _ := storedDoc(t, ctx, env, "doc-items", bson.D{{Key: "name", Value: "k1"}}); raw.Lookup("a").Int32() != 5 {
		t.Fatalf("the refused item changed its row: %v", raw)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 1, as it was seen: one Conn writes k0..k9 in bulk while another
// writes k0 alone at the same moment. Whenever PutMany returns nil, every
// one of its items is stored.
func TestPutManyRacingASingleWriterNeverLosesItemsSilently(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	a := newRepo[memKey, memData](t, env.Conn, memorySchema())
	b := newRepo[memKey, memData](t, env.Open(t), memorySchema())
	for round := 0; round < 40; round++ {
		bucket := fmt.Sprintf("r%d", round)
		items := make([]runtime.Item[memKey, memData], 10)
		for i := range items {
			items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", bucket, itoa(i)}, Payload: memData{Value: i}, When: ms(1)}
		}
		var wg sync.WaitGroup
		var putManyErr, putErr error
		wg.Add(2)
		go func() { defer wg.Done(); putManyErr = a.PutMany(ctx, items) }()
		go func() { defer wg.Done(); putErr = b.Put(ctx, memKey{"s", bucket, "0"}, memData{Value: 100}, ms(1)) }()
		wg.Wait()
		must(t, putErr)
		must(t, putManyErr)
		for i := 1; i < 10; i++ {
			got, err := a.Get(ctx, items[i].Key)
			if err != nil || got.Payload.Value != i {
				t.Fatalf("round %d: PutMany returned nil but item %d reads %+v, %v", round, i, got.Payload, err)
			}
		}
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 2: a batch mixing updates and inserts gave key A the _id of key
// B's new document on FerretDB v1 (it numbers upserts among themselves).
// After PutMany, every identity is the _id of the document of its key.
func TestIdentitiesAfterPutManyAreTheStoredDocumentsIDs(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for _, i := range []int{1, 3, 4, 8} {
		must(t, r.Put(ctx, memKey{"s", "b", itoa(i)}, memData{Value: -i}, ms(1)))
	}
	items := make([]runtime.Item[memKey, memData], 10)
	for i := range items {
		items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", itoa(i)}, Payload: memData{Value: i}, When: ms(2)}
	}
	must(t, r.PutMany(ctx, items))
	for _, it := range items {
		rk, err := r.RedisKey(it.Key)
		must(t, err)
		id, err := env.Redis.Get(ctx, rk).Result()
		must(t, err)
		raw, ok := storedDoc(t, ctx, env, "memory-items", bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "b"}, {Key: "memoryId", Value: it.Key.MemoryID}})
		if !ok || raw.Lookup("_id").ObjectID().Hex() != id {
			t.Fatalf("key %s: identity %s, stored document %v", it.Key.MemoryID, id, raw)
		}
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 3: InsertMany with one refused item among 20 returned n=0 while
// 19 were stored without identities. It returns 19, names the refused item,
// and the 19 get their identities.
func TestInsertManyReportsARefusedItemAndKeepsTheOthers(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	// A unique index of the user's own on the payload: the server refuses
	// an item whose value another row already has.
	_, err := env.Conn.Database().Collection("memory-items").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "payload.value", Value: 1}}, Options: options.Index().SetUnique(true).SetName("payload.value_1")})
	must(t, err)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	must(t, r.Put(ctx, memKey{"other", "b", "x"}, memData{Value: 7}, ms(1)))
	items := make([]runtime.Item[memKey, memData], 20)
	for i := range items {
		items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", fmt.Sprintf("%02d", i)}, Payload: memData{Value: i}, When: ms(2)}
	}
	n, err := r.InsertMany(ctx, items)
	be := batchErr(t, err)
	if n != 19 || be.Outcomes[7] != runtime.NotStored || len(be.Items(runtime.Stored)) != 19 || be.Refused[7] == nil {
		t.Fatalf("n=%d outcomes %v refused %v; want 19 inserted and item 7 refused", n, be.Outcomes, be.Refused)
	}
	if !strings.Contains(err.Error(), "item 7 [s/b/07]") {
		t.Fatalf("the error does not name item 7: %v", err)
	}
	for i, it := range items {
		rk, _ := r.RedisKey(it.Key)
		id, rerr := env.Redis.Get(ctx, rk).Result()
		raw, ok := storedDoc(t, ctx, env, "memory-items", bson.D{{Key: "signalId", Value: "s"}, {Key: "memoryId", Value: it.Key.MemoryID}})
		switch {
		case i == 7 && ok:
			t.Fatalf("the refused item is stored: %v", raw)
		case i != 7 && (!ok || rerr != nil || raw.Lookup("_id").ObjectID().Hex() != id):
			t.Fatalf("item %d: stored %v, identity %q (%v)", i, ok, id, rerr)
		}
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 3: a batch cut off mid-way (the connection of its fourth bulk
// write drops) says which items are stored, which unknown and which never
// sent, and it says the truth.
func TestABatchCutMidWaySaysWhichItemsAreStoredUnknownOrUnsent(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.WriteChunk = 10
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	items := make([]runtime.Item[memKey, memData], 200)
	for i := range items {
		items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", fmt.Sprintf("%03d", i)}, Payload: memData{Value: i}, When: ms(1)}
	}
	proxy.FailOn("update", 3)
	err := r.PutMany(ctx, items)
	be := batchErr(t, err)
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("a dropped connection is not ErrUnavailable: %v", err)
	}
	stored, unknown, unsent := be.Items(runtime.Stored), be.Items(runtime.Unknown), be.Items(runtime.NotStored)
	if len(stored) != 30 || len(unknown) != 10 || len(unsent) != 160 || unknown[0] != 30 || unsent[0] != 40 {
		t.Fatalf("stored %d, unknown %v, not stored %d (from %v); want 30, items 30-39, 160", len(stored), unknown, len(unsent), unsent[:1])
	}
	for _, i := range append(stored, unsent...) {
		_, ok := storedDoc(t, ctx, env, "memory-items", bson.D{{Key: "memoryId", Value: items[i].Key.MemoryID}})
		if ok != (be.Outcomes[i] == runtime.Stored) {
			t.Fatalf("item %d is reported %v but stored=%v", i, be.Outcomes[i], ok)
		}
	}
	// Sending exactly the rest again completes the batch.
	var rest []runtime.Item[memKey, memData]
	for _, i := range append(unknown, unsent...) {
		rest = append(rest, items[i])
	}
	must(t, r.PutMany(ctx, rest))
	n, err := env.Conn.Database().Collection("memory-items").CountDocuments(ctx, bson.D{})
	must(t, err)
	if n != 200 {
		t.Fatalf("%d rows after sending the rest, want 200", n)
	}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// Where bulk results are inexact (FerretDB v1), a chunk whose results
// cannot be mapped is written again one by one; cut off in the middle, the
// items not written yet may have been written by the bulk write: unknown,
// not "not stored".
func TestItemsOfAnUnmappableBulkCutMidWayAreUnknown(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) { c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1) })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, docSchema()))
	if env.Conn.Capabilities().BulkResults {
		t.Skip("the one-by-one pass after an unmappable bulk write runs where bulk results are inexact; this server's are exact")
	}
	r := newRepo[docKey, map[string]any](t, env.Conn, docSchema())
	must(t, r.Put(ctx, docKey{"k1"}, map[string]any{"a": 5}, time.Time{}))
	// FerretDB v1 stores the items before the refused one and skips the
	// rest; the cut then comes at the first single update (of k0), so k2,
	// which the bulk write stored, is not written again.
	items := []runtime.Item[docKey, map[string]any]{
		{Key: docKey{"k0"}, Payload: map[string]any{"v": 1}},
		{Key: docKey{"k2"}, Payload: map[string]any{"v": 1}},
		{Key: docKey{"k1"}, Payload: map[string]any{"a.b": 1}}, // refused
		{Key: docKey{"k3"}, Payload: map[string]any{"v": 1}},
	}
	proxy.FailOn("update", 1) // the bulk write passes, the first single update is cut
	be := batchErr(t, r.PutMany(ctx, items))
	for i, o := range be.Outcomes {
		_, stored := storedDoc(t, ctx, env, "doc-items", bson.D{{Key: "name", Value: items[i].Key.Name}, {Key: "v", Value: 1}})
		if o == runtime.NotStored && stored || o == runtime.Stored && !stored {
			t.Fatalf("item %d is reported %v, stored=%v (outcomes %v)", i, o, stored, be.Outcomes)
		}
	}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// Removes racing batch writes of the same keys across Conns (DocumentDB
// deadlocks some of them) never see the race.
func TestRemovesRacingBatchWritesNeverFail(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	var repos []*runtime.Repo[memKey, memData]
	for i := 0; i < 4; i++ {
		c := env.Conn
		if i > 0 {
			c = env.Open(t)
		}
		repos = append(repos, newRepo[memKey, memData](t, c, memorySchema()))
	}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for w, r := range repos {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					k := memKey{fmt.Sprint(round), "b", itoa(i)}
					if w%2 == 0 {
						items := []runtime.Item[memKey, memData]{{Key: k, Payload: memData{Value: w}, When: ms(1)}, {Key: memKey{k.SignalID, "b", itoa(9 - i)}, When: ms(1)}}
						errs <- r.PutMany(ctx, items)
					} else {
						_, err := r.Remove(ctx, k)
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
	}
}
