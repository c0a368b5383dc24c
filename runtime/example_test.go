package runtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// The examples run against the servers `make test` starts (or any given
// by PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL), each on a
// database and Redis key prefix of its own, dropped at its end. Without
// servers (a plain `go test ./runtime` on a machine without them), they
// are compiled but not run, unless PERSIST_TEST_REQUIRE=1, where they fail.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("PERSIST_TEST_MONGO_URI") == "" && os.Getenv("PERSIST_TEST_REQUIRE") != "1" {
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			_ = f.Value.Set("^Test") // the examples need servers
		}
	}
	os.Exit(m.Run())
}

func mongoURI() string {
	if u := os.Getenv("PERSIST_TEST_MONGO_URI"); u != "" {
		return u
	}
	return "mongodb://127.0.0.1:27017"
}

func redisURL() string {
	if u := os.Getenv("PERSIST_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// scratch names a throwaway database and key prefix.
func scratch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "example_" + hex.EncodeToString(b[:])
}

// open is ExampleOpen's first lines, for the other examples.
func open(ctx context.Context) *runtime.Conn {
	name := scratch()
	conn, err := runtime.Open(runtime.Config{MongoURI: mongoURI(), Database: name, RedisURL: redisURL(), KeyPrefix: name + ":"})
	if err != nil {
		panic(err)
	}
	if err := repo.EnsureIndexes(ctx, conn); err != nil {
		panic(err)
	}
	return conn
}

// closeAndDrop drops the example's database and its Redis keys (the
// identities, which have no expiry).
func closeAndDrop(ctx context.Context, conn *runtime.Conn) {
	_ = conn.Database().Drop(ctx)
	if rdb, ok := conn.Redis().(*redis.Client); ok {
		iter := rdb.Scan(ctx, 0, conn.Database().Name()+":*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	}
	_ = conn.Close(ctx)
}

// Open a Conn (MongoDB and Redis), wait until both answer, and build the
// generated repositories on it. runtime.ConfigFromEnv reads backtest-kit's
// CC_* variables instead of a Config literal.
func ExampleOpen() {
	ctx := context.Background()
	name := scratch() // a throwaway database, say example_1a2b3c4d
	conn, err := runtime.Open(runtime.Config{
		MongoURI:  mongoURI(), // its path names the database, unless Database does
		Database:  name,
		RedisURL:  redisURL(),
		KeyPrefix: name + ":", // namespaces every Redis key of this Conn
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer closeAndDrop(ctx, conn)
	if err := conn.Ready(ctx); err != nil { // both servers answer, capabilities probed
		fmt.Println(err)
		return
	}
	if err := repo.EnsureIndexes(ctx, conn); err != nil { // once per deployment
		fmt.Println(err)
		return
	}
	repos, err := repo.Open(conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("repositories:", len(repo.Schemas()), repos.Signal != nil)
	// Output: repositories: 16 true
}

// Family single: one current row per key, last writer wins. GetAsOf(t)
// reads it only if it was written at or before t (its "when"), so a
// backtest at simulated time t never reads a row from its future.
func ExampleRepo_GetAsOf() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	r, _ := repo.NewRiskRepo(conn)
	k := repo.RiskKey{RiskName: "max-exposure", ExchangeName: "binance"}
	btc := repo.RiskEntry{Key: "BTCUSDT", Position: repo.RiskPosition{Symbol: "BTCUSDT", Position: "long"}}
	eth := repo.RiskEntry{Key: "ETHUSDT", Position: repo.RiskPosition{Symbol: "ETHUSDT", Position: "short"}}
	t1 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	_ = r.Put(ctx, k, []repo.RiskEntry{btc}, t1)
	_ = r.Put(ctx, k, []repo.RiskEntry{btc, eth}, t1.Add(time.Hour)) // replaces it, at 11:00

	now, _, _ := r.Get(ctx, k)
	later, okLater, _ := r.GetAsOf(ctx, k, t1.Add(90*time.Minute))
	_, okEarlier, _ := r.GetAsOf(ctx, k, t1.Add(30*time.Minute))
	fmt.Println("now:", len(now), "positions; as of 11:30:", okLater, len(later), "; as of 10:30:", okEarlier)
	// Output: now: 2 positions; as of 11:30: true 2 ; as of 10:30: false
}

// Family series: candles are written once (first writer wins) and read in
// windows: exactly limit candles from since, or ok=false when one is
// missing. One round trip each.
func ExampleSeriesWindow() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	candles, _ := repo.NewCandleRepo(conn)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	bars := []repo.Candle{{Timestamp: float64(t0), Close: 100}, {Timestamp: float64(t0 + 60_000), Close: 101}}
	n, _ := candles.Put(ctx, "binance", "BTCUSDT", "1m", bars)
	again, _ := candles.Put(ctx, "binance", "BTCUSDT", "1m", []repo.Candle{{Timestamp: float64(t0), Close: 999}})
	w, ok, _ := candles.Window(ctx, "binance", "BTCUSDT", "1m", t0, 2)
	_, ok3, _ := candles.Window(ctx, "binance", "BTCUSDT", "1m", t0, 3)
	fmt.Println("stored:", n, "then:", again, "window:", ok, w[0].Close, w[1].Close, "three:", ok3)
	// Output: stored: 2 then: 0 window: true 100 101 three: false
}

// Family bucket: entries under a bucket, removable; Has still sees a
// removed entry (a tombstone), Get and List do not.
func ExampleRepo_Remove() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	m, _ := repo.NewMeasureRepo(conn)
	k := repo.MeasureKey{Bucket: "atr-14", EntryKey: "BTCUSDT:2025-01-01"}
	_ = m.Put(ctx, k, repo.MeasureEntry{ID: "1", Data: 412.5})
	removed, _ := m.Remove(ctx, k)
	_, ok, _ := m.Get(ctx, k)
	has, _ := m.Has(ctx, k)
	fmt.Println("removed:", removed, "get:", ok, "has:", has)
	// Output: removed: true get: false has: true
}

// Family list: a feed read newest first, up to its read limit.
func ExampleRepo_List() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	feed, _ := repo.NewStorageRepo(conn)
	for _, id := range []string{"a", "b", "c"} {
		_ = feed.PutAll(ctx, true, []repo.StorageRow{{ID: id, Position: "long"}})
		time.Sleep(2 * time.Millisecond) // each its own updatedDate
	}
	rows, _ := feed.GetAll(ctx, true)
	for _, r := range rows {
		fmt.Print(r.ID, " ")
	}
	fmt.Println("of at most", feed.ReadLimit())
	// Output: c b a of at most 50
}

// Batch writes report per item: a *BatchError (under the *OpError) says
// which items are stored, kept, not stored or unknown, so that a caller
// sends exactly the rest again. A bad item (an empty key part, an
// oversized payload) refuses the whole call before anything is sent.
func ExampleBatchError() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	signals, _ := repo.NewSignalRepo(conn)
	items := []runtime.Item[repo.SignalKey, *repo.SignalRow]{
		{Key: repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}, Payload: &repo.SignalRow{ID: "1"}},
		{Key: repo.SignalKey{Symbol: "ETHUSDT", StrategyName: "macd", ExchangeName: "binance"}, Payload: &repo.SignalRow{ID: "2"}},
	}
	bad := append(items[:1:1], runtime.Item[repo.SignalKey, *repo.SignalRow]{Key: repo.SignalKey{StrategyName: "macd", ExchangeName: "binance"}})
	err := signals.Runtime().PutMany(ctx, bad)
	fmt.Println("empty symbol:", errors.Is(err, runtime.ErrInvalidKey))

	ended, cancel := context.WithCancel(ctx)
	cancel() // the caller gave up: whether the server applied the items is not known
	err = signals.Runtime().PutMany(ended, items)
	var be *runtime.BatchError
	if errors.As(err, &be) {
		fmt.Println("unknown:", be.Items(runtime.Unknown), "stored:", be.Items(runtime.Stored))
	}
	// PutMany is idempotent: sending the unknown ones again is safe.
	err = signals.Runtime().PutMany(ctx, items)
	fmt.Println("again:", err)
	// Output:
	// empty symbol: true
	// unknown: [0 1] stored: []
	// again: <nil>
}

// Cache modes: a domain in the value mode keeps its rows in Redis, under a
// lease protocol that is never stale once a write has returned. A cold
// read is three round trips (Redis, MongoDB, Redis), a warm one a single
// Redis round trip; Stats counts both.
func ExampleRepo_Get_valueCache() {
	ctx := context.Background()
	conn := open(ctx)
	defer closeAndDrop(ctx, conn)
	s := repo.SignalSchema()
	s.Cache, s.CacheTTL = runtime.CacheValue, time.Minute // or `cache: {mode: value, writers: persistgen-only}` in domains.yaml
	r, err := runtime.NewRepo[repo.SignalKey, *repo.SignalRow](conn, s)
	if err != nil {
		fmt.Println(err)
		return
	}
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	_ = r.PutMany(ctx, []runtime.Item[repo.SignalKey, *repo.SignalRow]{{Key: k, Payload: &repo.SignalRow{ID: "s1"}}})
	for _, read := range []string{"cold", "warm"} {
		tctx, trace := runtime.WithTrace(ctx)
		rec, err := r.Get(tctx, k)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s read of %s: %d MongoDB, %d Redis round trips\n", read, rec.Payload.ID, trace.Mongo(), trace.Redis())
	}
	st := conn.Stats().Cache["value"]
	fmt.Println("hits:", st.Hits, "misses:", st.Misses)
	// Output:
	// cold read of s1: 1 MongoDB, 2 Redis round trips
	// warm read of s1: 0 MongoDB, 1 Redis round trips
	// hits: 1 misses: 1
}
