package tests

// Tests of what a second review of the batch outcomes and the guarantees
// found; each failed before its fix.

import (
	"context"
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
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// anyKey has a single untyped key field (KeyField.Type ""), which accepts
// any key type.
type anyKey struct{ V any }

func (k anyKey) KeyValues() []any { return []any{k.V} }

func anySchema() *runtime.Schema {
	return &runtime.Schema{Domain: "any", Collection: "any-items", RedisPrefix: "any_cache", Key: []runtime.KeyField{{Name: "v"}}, Payload: "payload"}
}

// The string "1" and the number 1 are two keys to the server, though they
// are spelled alike in Redis: batches and batch reads keep them apart.
func TestUntypedKeysOfDifferentTypesStayApartInBatches(t *testing.T) {
	env := setup(t, anySchema())
	ctx := ctxT(t)
	r := newRepo[anyKey, string](t, env.Conn, anySchema())
	must(t, r.PutMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{"1"}, Payload: "string"}, {Key: anyKey{1}, Payload: "number"}}))
	for k, want := range map[any]string{"1": "string", int64(1): "number"} {
		got, err := r.Get(ctx, anyKey{k})
		if err != nil || got.Payload != want {
			t.Fatalf("Get(%#v) = %q, %v; want %q", k, got.Payload, err, want)
		}
	}
	n, err := r.InsertMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{"true"}, Payload: "s"}, {Key: anyKey{true}, Payload: "b"}})
	if err != nil || n != 2 {
		t.Fatalf("InsertMany of \"true\" and true = %d, %v; want both inserted", n, err)
	}
	must(t, r.Put(ctx, anyKey{"2"}, "string two", time.Time{}))
	got, err := r.GetMany(ctx, []anyKey{{2}, {"2"}})
	must(t, err)
	if got[0] != nil || got[1] == nil || got[1].Payload != "string two" {
		t.Fatalf("GetMany(number 2, string 2) = %v, %v; want nothing, then the string's row", got[0], got[1])
	}
	// 1 and 1.0 are one key to the server, and to batches.
	n, err = r.InsertMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{1.0}, Payload: "double"}})
	if err != nil || n != 0 {
		t.Fatalf("InsertMany of 1.0 over 1 = %d, %v; want it kept", n, err)
	}
}

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

// A list stopped early, and a list whose getMore times out, close their
// cursor within a bound even when the server has stopped answering.
func TestAListStoppedOnASilentServerReturns(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.ListBatch = 2
		c.OpTimeout = time.Second
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for i := 0; i < 10; i++ {
		must(t, r.Put(ctx, memKey{"s", "b", itoa(i)}, memData{Value: i}, ms(1)))
	}
	for _, stop := range []bool{true, false} {
		done := make(chan error, 1)
		go func() {
			for _, err := range r.List(ctx, runtime.ListOptions{Prefix: []any{"s"}}) {
				if err != nil {
					done <- err
					return
				}
				proxy.Freeze()
				if stop {
					break
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if !stop && !errors.Is(err, runtime.ErrUnavailable) {
				t.Fatalf("a getMore to a silent server: %v; want ErrUnavailable", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("List (stopped early: %v) still blocked on a silent server after 20s (OpTimeout 1s)", stop)
		}
		proxy.Restore()
	}
}

// A row whose payload is null can be removed in a domain whose payload
// carries a removed flag (the document's flag is set; the null stays).
func TestRemoveOfARowWithANullPayload(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	_, err := env.Conn.Database().Collection("measure-items").InsertOne(ctx, bson.D{{Key: "bucket", Value: "b"}, {Key: "entryKey", Value: "e"},
		{Key: "payload", Value: nil}, {Key: "removed", Value: false}})
	must(t, err)
	removed, err := r.Measure.Remove(ctx, repo.MeasureKey{Bucket: "b", EntryKey: "e"})
	if err != nil || !removed {
		t.Fatalf("Remove of a row with a null payload = %v, %v", removed, err)
	}
	raw, _ := storedDoc(t, ctx, env, "measure-items", bson.D{{Key: "bucket", Value: "b"}})
	if !raw.Lookup("removed").Boolean() || raw.Lookup("payload").Type != bson.TypeNull {
		t.Fatalf("after Remove: %v", raw)
	}
}

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

// An index of the wanted name that is partial, sparse, collated or a TTL
// index does not keep keys unique: it is a conflict, never accepted.
func TestAPartialIndexOfTheWantedNameIsAConflict(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := ctxT(t)
	_, err := env.Conn.Database().Collection("memory-items").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "signalId", Value: 1}, {Key: "bucketName", Value: 1}, {Key: "memoryId", Value: 1}},
		Options: options.Index().SetName("signalId_1_bucketName_1_memoryId_1").SetUnique(true).
			SetPartialFilterExpression(bson.D{{Key: "when", Value: bson.D{{Key: "$gt", Value: 100}}}})})
	if err != nil {
		t.Skipf("the server refuses a partial index: %v", err)
	}
	err = env.Conn.EnsureIndexes(ctx, memorySchema())
	if !errors.Is(err, runtime.ErrIndexConflict) || !strings.Contains(err.Error(), "partialFilterExpression") {
		t.Fatalf("EnsureIndexes over a partial unique index: %v; want ErrIndexConflict naming it", err)
	}
}

// Explicit nulls stay null through a Go read and write-back, in fields of
// every kind; absent fields stay absent; a field the program sets is
// written.
func TestExplicitNullsStayNullWhenGoWritesARowBack(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	_, err := env.Conn.Database().Collection("signal-items").InsertOne(ctx, bson.D{
		{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName},
		{Key: "payload", Value: bson.D{{Key: "id", Value: "s1"}, {Key: "priceOpen", Value: nil}, {Key: "frameName", Value: nil},
			{Key: "_isScheduled", Value: nil}, {Key: "note", Value: nil}, {Key: "position", Value: "long"}}}})
	must(t, err)
	got, ok, err := r.Signal.Get(ctx, k)
	must(t, err)
	if !ok {
		t.Fatal("not found")
	}
	got.Position = "short"
	must(t, r.Signal.Put(ctx, k, got))
	raw, _ := storedDoc(t, ctx, env, "signal-items", bson.D{{Key: "symbol", Value: k.Symbol}})
	p := raw.Lookup("payload").Document()
	for _, f := range []string{"priceOpen", "frameName", "_isScheduled", "note"} {
		if p.Lookup(f).Type != bson.TypeNull {
			t.Errorf("%s was null and is written back as %v", f, p.Lookup(f))
		}
	}
	if p.Lookup("position").StringValue() != "short" {
		t.Errorf("the field the program set: %v", p.Lookup("position"))
	}
	if _, err := p.LookupErr("priceTakeProfit"); err == nil {
		t.Errorf("an absent field was added: %v", p)
	}
}

// A probe cut off after its writes (the server stops answering during the
// clean-up) does not hold the guard beyond its bound.
func TestAProbeCleanUpOnASilentServerIsBounded(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.ReadyTimeout = 3 * time.Second
		c.DisableRedis = true
	})
	proxy.FreezeOn("delete") // the server stops answering as the clean-up starts
	done := make(chan error, 1)
	go func() { done <- env.Conn.Ready(context.Background()) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Ready still blocked 20s into a probe whose clean-up met a silent server (ReadyTimeout 3s)")
	}
	proxy.Restore()
}
