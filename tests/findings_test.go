package tests

// One test per finding of the correctness review (issue 9): each failed on
// the runtime before its fix.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// docKey is the key of a schema whose payload is stored at the top level
// (like candles), with a map payload, so that a test can make the server
// refuse one item: $set of "a.b" where a holds a number fails everywhere.
type docKey struct {
	Name string `bson:"name"`
}

func (k docKey) KeyValues() []any { return []any{k.Name} }

func docSchema() *runtime.Schema {
	return &runtime.Schema{Domain: "doc", Collection: "doc-items", Key: []runtime.KeyField{{Name: "name", Type: runtime.TypeString}}, RedisPrefix: "doc_cache"}
}

func batchErr(t *testing.T, err error) *runtime.BatchError {
	t.Helper()
	var be *runtime.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want a *runtime.BatchError, got %v", err)
	}
	return be
}

func storedDoc(t *testing.T, ctx context.Context, env *testenv.Env, coll string, filter bson.D) (bson.Raw, bool) {
	t.Helper()
	raw, err := env.Conn.Database().Collection(coll).FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false
	}
	must(t, err)
	return raw, true
}

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

// Finding 4: a key part -0.0 was found by Get and not by GetMany (which
// matched by the key's text). -0 and 0 are one key, everywhere.
func TestNegativeZeroIsTheSameKeyAsZero(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	negZero := math.Copysign(0, -1)
	must(t, r.Put(ctx, candleKey{"ex", "S", "1m", negZero}, candle{Close: 7}, time.Time{}))
	for _, ts := range []float64{negZero, 0} {
		got, err := r.Get(ctx, candleKey{"ex", "S", "1m", ts})
		if err != nil || got.Payload.Close != 7 {
			t.Fatalf("Get(%v) = %+v, %v", ts, got.Payload, err)
		}
	}
	many, err := r.GetMany(ctx, []candleKey{{"ex", "S", "1m", negZero}, {"ex", "S", "1m", 0}})
	must(t, err)
	if many[0] == nil || many[1] == nil {
		t.Fatalf("GetMany of -0 and 0 = %v", many)
	}
	a, _ := r.RedisKey(candleKey{"ex", "S", "1m", negZero})
	b, _ := r.RedisKey(candleKey{"ex", "S", "1m", 0})
	if a != b {
		t.Fatalf("Redis keys differ: %q, %q", a, b)
	}
}

// Finding 5: as-of reads saw rows up to 1 ms in the future (when rounded
// down on both sides). A row is never visible before its when.
func TestAsOfNeverSeesARowFromLessThanAMillisecondAhead(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	when := ms(1_000_000).Add(600 * time.Microsecond)
	must(t, r.Put(ctx, k, memData{Value: 1}, when))
	for _, at := range []time.Time{ms(1_000_000), ms(1_000_000).Add(300 * time.Microsecond), when.Add(-time.Nanosecond)} {
		_, err := r.GetAsOf(ctx, k, at)
		wantNotFound(t, err)
		rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s"}, AsOf: at}))
		must(t, err)
		if len(rows) != 0 {
			t.Fatalf("List as of %v sees a row written at %v", at, when)
		}
	}
	if _, err := r.GetAsOf(ctx, k, ms(1_000_001)); err != nil {
		t.Fatalf("as of the next millisecond: %v", err)
	}
}

// Finding 6: a when beyond the int64 millisecond range wrapped around to
// 1970 and became visible to every as-of read. Whens outside what a
// JavaScript Date holds are refused; as-of bounds beyond it clamp.
func TestFarWhensAreRefusedAndAsOfBoundsNeverWrap(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for _, far := range []time.Time{time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(300_000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-300_000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := r.Put(ctx, memKey{"s", "b", "far"}, memData{Value: 1}, far)
		if !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Fatalf("when %v: %v; want ErrInvalidArgument", far, err)
		}
	}
	if _, err := r.GetAsOf(ctx, memKey{"s", "b", "far"}, ms(5)); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("a refused far write is visible: %v", err)
	}
	must(t, r.Put(ctx, memKey{"s", "b", "near"}, memData{Value: 2}, ms(5)))
	if _, err := r.GetAsOf(ctx, memKey{"s", "b", "near"}, time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("as of the far future: %v", err)
	}
	_, err := r.GetAsOf(ctx, memKey{"s", "b", "near"}, time.Date(-300_000_000, 1, 1, 0, 0, 0, 0, time.UTC))
	wantNotFound(t, err)
}

// Finding 7: newest first broke ties wrongly when PutMany (client _ids) and
// Put (server _ids) wrote in one millisecond. Writes of one millisecond read
// back in the order this process made them, whichever method made them.
func TestNewestFirstFollowsWriteOrderAcrossPutAndPutMany(t *testing.T) {
	t.Parallel()
	frozen := time.UnixMilli(1_700_000_000_000)
	env := testenv.New(t, func(c *runtime.Config) { c.Now = func() time.Time { return frozen } })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	var order []string
	for round := 0; round < 5; round++ {
		a, b, c, d := fmt.Sprintf("%d-a", round), fmt.Sprintf("%d-b", round), fmt.Sprintf("%d-c", round), fmt.Sprintf("%d-d", round)
		must(t, r.Put(ctx, memKey{"s", "b", a}, memData{}, ms(1)))
		must(t, r.PutMany(ctx, []runtime.Item[memKey, memData]{{Key: memKey{"s", "b", b}, When: ms(1)}, {Key: memKey{"s", "b", c}, When: ms(1)}}))
		_, err := r.Insert(ctx, memKey{"s", "b", d}, memData{}, ms(1))
		must(t, err)
		order = append(order, a, b, c, d)
	}
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s", "b"}, Sort: runtime.NewestFirst()}))
	must(t, err)
	var got []string
	for _, row := range rows {
		got = append(got, row.Key.MemoryID)
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	if fmt.Sprint(got) != fmt.Sprint(order) {
		t.Fatalf("newest first = %v, want %v", got, order)
	}
}

// Finding 8: with MongoDB unreachable, a second caller of the guard with a
// short deadline queued behind the first caller's wait. It returns with its
// own deadline's error while the first still waits.
func TestGuardReturnsAtEachCallersOwnDeadline(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	proxy.Cut()
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.ReadyTimeout = 20 * time.Second
	})
	first := make(chan error, 1)
	go func() { first <- env.Conn.Ready(ctxT(t)) }()
	for proxy.Accepted() == 0 { // the first caller's wait is under way
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := env.Conn.Ready(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("second caller: %v; want its own deadline, not ErrUnavailable", err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first caller's wait ended with the second caller's: %v", err)
	default:
	}
	proxy.Restore()
	if err := <-first; err != nil {
		t.Fatalf("the first caller's wait, once MongoDB is back: %v", err)
	}
}

// Finding 10a: the Redis breaker ran on the domain clock (Config.Now), so a
// simulated clock kept the cache off for good. It runs on the wall clock.
func TestRedisBreakerIgnoresTheSimulatedClock(t *testing.T) {
	t.Parallel()
	_, redisURL := testenv.URIs(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0"))
	frozen := time.UnixMilli(1_600_000_000_000)
	env := testenv.New(t, func(c *runtime.Config) {
		c.RedisURL = "redis://" + proxy.Addr() + "/0"
		c.RedisRetryAfter = 100 * time.Millisecond
		c.Now = func() time.Time { return frozen }
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	proxy.Cut()
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1))) // Redis fails: the breaker opens
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		must(t, r.Put(ctx, k, memData{Value: 2}, ms(2)))
		tctx, tr := runtime.WithTrace(ctx)
		_, err := r.Get(tctx, k)
		must(t, err)
		if tr.Redis() == 1 && tr.Mongo() == 1 {
			return // a warm read: the cache is back
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache stays off under a simulated clock: %v", tr.Commands())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Finding 10b: a caller's own cancelled context counted as a Redis failure
// and turned the cache off for every caller. It does not.
func TestACallersCancelledContextDoesNotTurnTheCacheOff(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Get(cancelled, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	tctx, tr := runtime.WithTrace(ctx)
	if _, err := r.Get(tctx, k); err != nil {
		t.Fatal(err)
	}
	if tr.Redis() != 1 || tr.Mongo() != 1 || env.Conn.Stats().RedisFailures != 0 {
		t.Fatalf("after another caller's cancellation: %v, %d Redis failures; want a warm read", tr.Commands(), env.Conn.Stats().RedisFailures)
	}
}

// Finding 10c: an identity key of the wrong type (WRONGTYPE) tripped the
// breaker on every read and never healed. It reads as a miss, is replaced,
// and counts as no Redis failure.
func TestAnIdentityKeyOfTheWrongTypeHeals(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	rk, _ := r.RedisKey(k)
	must(t, env.Redis.Del(ctx, rk).Err())
	must(t, env.Redis.HSet(ctx, rk, "x", "y").Err())
	for i := 0; i < 2; i++ {
		got, err := r.Get(ctx, k)
		if err != nil || got.Payload.Value != 1 {
			t.Fatalf("read %d over a hash identity: %+v, %v", i, got.Payload, err)
		}
		many, err := r.GetMany(ctx, []memKey{k})
		if err != nil || many[0] == nil {
			t.Fatalf("GetMany over a hash identity: %v, %v", many, err)
		}
	}
	if typ := env.Redis.Type(ctx, rk).Val(); typ != "string" || env.Conn.Stats().RedisFailures != 0 {
		t.Fatalf("identity key is a %s, %d Redis failures; want it replaced, none counted", typ, env.Conn.Stats().RedisFailures)
	}
	tctx, tr := runtime.WithTrace(ctx)
	_, err := r.Get(tctx, k)
	must(t, err)
	if tr.Redis() != 1 || tr.Mongo() != 1 {
		t.Fatalf("read after healing: %v; want a warm read", tr.Commands())
	}
}

// Finding 11: the caller's own deadline was reported as ErrUnavailable.
func TestTheCallersDeadlineIsNotReportedAsAnOutage(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) { c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1) })
	must(t, env.Conn.EnsureIndexes(ctxT(t), memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	proxy.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := r.Put(ctx, memKey{"s", "b", "m"}, memData{Value: 1}, ms(1))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Put past the caller's deadline: %v; want context.DeadlineExceeded, not ErrUnavailable", err)
	}
}

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

// Finding 12: List with a bound or prefix of the wrong type returned no rows
// and no error; a repeated sort field dropped the connection. Each is an
// error that says what is wrong, and the Conn keeps working.
func TestListArgumentsOfTheWrongTypeAreErrors(t *testing.T) {
	typed := candleSchema()
	for i, ty := range []runtime.KeyType{runtime.TypeString, runtime.TypeString, runtime.TypeString, runtime.TypeFloat64} {
		typed.Key[i].Type = ty
	}
	env := setup(t, typed)
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, typed)
	must(t, r.Put(ctx, candleKey{"ex", "S", "1m", 60000}, candle{Close: 1}, time.Time{}))
	bad := []struct {
		name string
		o    runtime.ListOptions
		want error
	}{
		{"prefix of the wrong type", runtime.ListOptions{Prefix: []any{42}}, runtime.ErrInvalidKey},
		{"range bound of the wrong type", runtime.ListOptions{Prefix: []any{"ex", "S", "1m"}, Range: &runtime.Range{Field: "timestamp", From: "0"}}, runtime.ErrInvalidArgument},
		{"date bound that is not a time", runtime.ListOptions{Range: &runtime.Range{Field: "createDate", From: 5}}, runtime.ErrInvalidArgument},
		{"repeated sort field", runtime.ListOptions{Sort: []runtime.SortField{{Field: "createDate"}, {Field: "createDate", Desc: true}}}, runtime.ErrInvalidArgument},
	}
	for _, b := range bad {
		_, err := runtime.Collect(r.List(ctx, b.o))
		if !errors.Is(err, b.want) {
			t.Fatalf("%s: %v; want %v", b.name, err, b.want)
		}
	}
	// An int bound for a float64 field is converted, not refused.
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"ex", "S", "1m"}, Range: &runtime.Range{Field: "timestamp", From: 0, To: int64(120000)}}))
	must(t, err)
	if len(rows) != 1 {
		t.Fatalf("after the errors, a valid list returned %d rows", len(rows))
	}
}

// Finding 13: nothing bounded a MongoDB call: a silent server held a Put
// until the caller's own deadline. Config.OpTimeout bounds each call, and
// the error says so.
func TestOpTimeoutBoundsACallToASilentServer(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.OpTimeout = 300 * time.Millisecond
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	proxy.Freeze()
	err := r.Put(ctx, memKey{"s", "b", "m"}, memData{Value: 1}, ms(1))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "OpTimeout") || ctx.Err() != nil {
		t.Fatalf("Put to a silent server: %v; want ErrUnavailable naming OpTimeout, well before the caller's deadline", err)
	}
}

// Finding 14: a Go write-back of a row the TypeScript engine wrote added
// fields that were absent (null for any, 0 for numbers), which changes
// what `x ?? fallback` means there. Absent fields stay absent; present
// nulls stay null; a field the program sets is written.
func TestAbsentFieldsStayAbsentWhenGoWritesARowBack(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.StrategyKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	_, err := env.Conn.Database().Collection("strategy-items").InsertOne(ctx, bson.D{
		{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName},
		{Key: "payload", Value: bson.D{{Key: "pendingSignalId", Value: nil}, {Key: "commitQueue", Value: bson.A{}}, {Key: "isPaused", Value: false}}}})
	must(t, err)
	got, ok, err := r.Strategy.Get(ctx, k)
	must(t, err)
	if !ok {
		t.Fatal("the TypeScript row is not found")
	}
	got.RetryOpenCount = 2 // the program sets one absent field
	must(t, r.Strategy.Put(ctx, k, got))
	raw, _ := storedDoc(t, ctx, env, "strategy-items", bson.D{{Key: "symbol", Value: k.Symbol}})
	payload := raw.Lookup("payload").Document()
	elems, err := payload.Elements()
	must(t, err)
	var names []string
	for _, e := range elems {
		names = append(names, e.Key())
	}
	if fmt.Sprint(names) != "[pendingSignalId commitQueue retryOpenCount isPaused]" {
		t.Fatalf("written back with fields %v; want the three the TypeScript engine wrote plus retryOpenCount", names)
	}
	if payload.Lookup("pendingSignalId").Type != bson.TypeNull {
		t.Fatalf("an explicit null became %v", payload.Lookup("pendingSignalId"))
	}
}

// Finding 15: Remove set the document's removed flag but left
// payload.removed false; upstream sets both.
func TestRemoveSetsThePayloadsRemovedFlagToo(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.MeasureKey{Bucket: "b", EntryKey: "e"}
	must(t, r.Measure.Put(ctx, k, repo.MeasureEntry{ID: "e", Data: 1}))
	removed, err := r.Measure.Remove(ctx, k)
	must(t, err)
	if !removed {
		t.Fatal("nothing removed")
	}
	raw, _ := storedDoc(t, ctx, env, "measure-items", bson.D{{Key: "bucket", Value: "b"}})
	if !raw.Lookup("removed").Boolean() || !raw.Lookup("payload", "removed").Boolean() {
		t.Fatalf("after Remove: removed=%v payload.removed=%v; want both true", raw.Lookup("removed"), raw.Lookup("payload", "removed"))
	}
}
