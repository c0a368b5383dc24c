// Package bench compares, in one process and on the same data, three ways
// of doing each job: the fewest plain driver calls (floor), the TypeScript
// adapter's access pattern (upstream) and the generated repositories (ours).
// `make bench` runs it several times over and turns the output into
// BENCHMARKS.md (see report/).
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// fixture is the data every benchmark of this process reads, seeded once.
type fixture struct {
	conn   *runtime.Conn
	cfg    runtime.Config // opens further Conns (Throughput)
	prefix string
	impls  []impl
	sig    repo.SignalKey
	mem    repo.MemoryKey
	t0     int64
	// rep rotates the order of the implementations (BENCH_REP): make bench
	// runs this process several times, so repetitions interleave and no
	// implementation always goes first.
	rep int
}

const (
	benchExchange = "ex-bench"
	benchSymbol   = "BTCUSDT"
)

// fx is set up by TestMain for the benchmarks of this process.
var fx *fixture

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		return m.Run() // no benchmark asked for: nothing to seed
	}
	mongoURI, redisURL := os.Getenv("PERSIST_TEST_MONGO_URI"), os.Getenv("PERSIST_TEST_REDIS_URL")
	if mongoURI == "" || redisURL == "" {
		fmt.Println("bench: PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL are not set; run `make bench`, which starts the servers")
		return m.Run() // the benchmarks skip themselves
	}
	ctx := context.Background()
	id := testenv.ID()
	// The series tier off: these workloads compare one operation's round
	// trips, and a tier would answer every repeated window from memory.
	// The month workloads (month_test.go) measure it, on Conns of their own.
	cfg := runtime.Config{MongoURI: mongoURI, Database: "pgb_" + id, RedisURL: redisURL, KeyPrefix: "pgb:" + id + ":", SeriesCacheBytes: -1}
	conn, err := runtime.Open(cfg)
	if err != nil {
		fmt.Println("bench:", err)
		return 1
	}
	defer conn.Close(ctx)
	// The local mode runs on a Conn of its own: its copies are per Conn.
	lconn, err := runtime.Open(cfg)
	if err != nil {
		fmt.Println("bench:", err)
		return 1
	}
	defer lconn.Close(ctx)
	f, err := seed(ctx, conn, lconn, "pgb:"+id+":")
	if f != nil {
		f.cfg = cfg
	}
	if err != nil {
		fmt.Println("bench: seeding:", err)
		return 1
	}
	defer cleanup(ctx, conn, redisURL, f.prefix)
	fx = f
	printEnv(ctx, conn, redisURL)
	printMemory(ctx, f)
	return m.Run()
}

func seed(ctx context.Context, conn, lconn *runtime.Conn, prefix string) (*fixture, error) {
	if err := repo.EnsureIndexes(ctx, conn); err != nil {
		return nil, err
	}
	repos, err := repo.Open(conn)
	if err != nil {
		return nil, err
	}
	rep, _ := strconv.Atoi(os.Getenv("BENCH_REP"))
	f := &fixture{conn: conn, prefix: prefix, rep: rep,
		sig: repo.SignalKey{Symbol: benchSymbol, StrategyName: "macd", ExchangeName: benchExchange},
		mem: repo.MemoryKey{SignalID: "sig-1", BucketName: "notes", MemoryID: "m1"},
		t0:  1_600_000_000_000 / 60_000 * 60_000}
	c, err := newCached(conn, ours{r: repos}, runtime.CacheValue)
	if err != nil {
		return nil, err
	}
	lrepos, err := repo.Open(lconn)
	if err != nil {
		return nil, err
	}
	l, err := newCached(lconn, ours{r: lrepos}, runtime.CacheLocal)
	if err != nil {
		return nil, err
	}
	f.impls = []impl{floor{db: conn.Database(), chunk: conn.WriteChunk()}, upstream{db: conn.Database(), rdb: conn.Redis(), ns: prefix}, ours{r: repos}, c, l}
	if err := conn.EnsureIndexes(ctx, c.signal.Schema(), c.memory.Schema(), c.candle.Schema()); err != nil {
		return nil, err
	}
	// The same rows in ours' collections and in the cached modes' (shared
	// by value and local).
	for _, im := range []impl{f.impls[2], c} {
		if err := im.writeSignal(ctx, f.sig, signalRow(0)); err != nil {
			return nil, err
		}
		if err := im.writeMemory(ctx, f.mem, repo.MemoryEntry{Index: "i", Data: "x"}, time.UnixMilli(f.t0)); err != nil {
			return nil, err
		}
	}
	for _, im := range []impl{f.impls[2], c} {
		if err := im.writeCandles(ctx, benchExchange, benchSymbol, "1m", candles(f.t0, 1000)); err != nil {
			return nil, err
		}
	}
	for _, l := range lists() {
		backtest := l.domain == "storage"
		if err := f.impls[2].writeList(ctx, l.domain, backtest, ids(l.domain+"-seed", l.limit)); err != nil {
			return nil, err
		}
	}
	// Upstream's identities for the candles (its keys differ from ours).
	if _, ok, err := f.impls[1].window(ctx, benchExchange, benchSymbol, "1m", f.t0, 1000); err != nil || !ok {
		return nil, fmt.Errorf("upstream warm-up: %v %v", ok, err)
	}
	return f, nil
}

func cleanup(ctx context.Context, conn *runtime.Conn, redisURL, prefix string) {
	_ = conn.Database().Drop(ctx)
	if o, err := redis.ParseURL(redisURL); err == nil {
		rdb := redis.NewClient(o)
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				rdb.Del(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	}
}

// printEnv prints the servers for the report.
func printEnv(ctx context.Context, conn *runtime.Conn, redisURL string) {
	_ = conn.Ready(ctx)
	s := conn.Server()
	redisVersion := "unknown"
	if o, err := redis.ParseURL(redisURL); err == nil {
		rdb := redis.NewClient(o)
		if info, err := rdb.Info(ctx, "server").Result(); err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					redisVersion = v
				}
			}
		}
		rdb.Close()
	}
	fmt.Printf("bench-env: mongo=%s; redis=%s; writechunk=%d; capabilities=%+v\n", s.Product, redisVersion, conn.WriteChunk(), s.Capabilities)
}

// printMemory measures the Redis memory one cached row takes in each cache
// mode (MEMORY USAGE of its key, after a read), for the report.
func printMemory(ctx context.Context, f *fixture) {
	c, ok := f.impls[3].(cached)
	if !ok {
		return
	}
	if _, _, err := f.impls[2].readSignal(ctx, f.sig); err != nil {
		return
	}
	for range 2 { // a miss that fills, then a hit
		if _, _, err := c.readSignal(ctx, f.sig); err != nil {
			return
		}
	}
	rdb := f.conn.Redis().(*redis.Client)
	id, err1 := rdb.MemoryUsage(ctx, f.prefix+signalRedisKey(f.sig)).Result()
	vk, err2 := c.signal.CacheKey(f.sig)
	if err2 != nil {
		fmt.Printf("bench-memory: not measured (%v)\n", err2)
		return
	}
	val, err2 := rdb.MemoryUsage(ctx, vk).Result()
	if err1 != nil || err2 != nil {
		fmt.Printf("bench-memory: not measured (%v, %v)\n", err1, err2)
		return
	}
	local := "local not measured"
	if l, ok := f.impls[4].(cached); ok {
		for range 2 { // a hit that grants a copy, then the copy
			if _, _, err := l.readSignal(ctx, f.sig); err != nil {
				return
			}
		}
		raw, err := l.signal.Collection().FindOne(ctx, bson.D{{Key: "symbol", Value: f.sig.Symbol}, {Key: "strategyName", Value: f.sig.StrategyName}, {Key: "exchangeName", Value: f.sig.ExchangeName}}).Raw()
		if lv, err2 := rdb.MemoryUsage(ctx, vk).Result(); err == nil && err2 == nil {
			// In process: the document and its key, and the entry's
			// struct and LRU element (about 150 B with Go's map overhead).
			local = fmt.Sprintf("local %d B in Redis (value's and one process's grant) and about %d B in each process holding a copy (the document, %d B, its key and about 150 B of bookkeeping)", lv, len(raw)+len(vk)+150, len(raw))
		}
	}
	printEstimate(ctx, f, id, val)
	fmt.Printf("bench-memory: identity %d B (the key and a 24-character _id), value %d B (the key, the row's BSON document, its expiry and which Redis process stored it), %s, none 0 B\n", id, val, local)
}

func signalRow(i int) *repo.SignalRow {
	return &repo.SignalRow{ID: "sig-1", Position: "long", PriceOpen: 100 + float64(i), PriceTakeProfit: 110, PriceStopLoss: 95,
		MinuteEstimatedTime: 240, ExchangeName: benchExchange, StrategyName: "macd", Symbol: benchSymbol, Timestamp: 1.6e12}
}

func candles(t0 int64, n int) []repo.Candle {
	out := make([]repo.Candle, n)
	for i := range out {
		p := 100 + float64(i%50)
		out[i] = repo.Candle{Timestamp: float64(t0 + int64(i)*60_000), Open: p, High: p + 1, Low: p - 1, Close: p + 0.5, Volume: 10}
	}
	return out
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// workload is one job: op is timed, before and after are not; skip leaves
// an implementation out.
type workload struct {
	before, after func(ctx context.Context, im impl, i int) error
	op            func(ctx context.Context, im impl, i int) error
	skip          func(im impl) bool
}

// compare runs w for each implementation as a sub-benchmark, one after the
// other, starting with a different one on each repetition (BENCH_REP).
func compare(b *testing.B, w workload) {
	if fx == nil {
		b.Skip("PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL are not set; run `make bench`")
	}
	k := fx.rep
	n := len(fx.impls)
	for j := 0; j < n; j++ {
		im := fx.impls[(j+k)%n]
		if w.skip != nil && w.skip(im) {
			continue
		}
		b.Run(im.name(), func(b *testing.B) { measure(b, im, w) })
	}
}

func measure(b *testing.B, im impl, w workload) {
	ctx := context.Background()
	step := func(ctx context.Context, i int, timed bool) {
		if w.before != nil {
			if timed {
				b.StopTimer()
			}
			if err := w.before(ctx, im, i); err != nil {
				b.Fatal(err)
			}
			if timed {
				b.StartTimer()
			}
		}
		if err := w.op(ctx, im, i); err != nil {
			b.Fatalf("%s: %v", im.name(), err)
		}
		if w.after != nil {
			if timed {
				b.StopTimer()
			}
			if err := w.after(ctx, im, i); err != nil {
				b.Fatal(err)
			}
			if timed {
				b.StartTimer()
			}
		}
	}
	// Warm up, then count the round trips of one untimed operation.
	step(ctx, -2, false)
	tctx, tr := runtime.WithTrace(ctx)
	if w.before != nil {
		if err := w.before(ctx, im, -1); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.op(tctx, im, -1); err != nil {
		b.Fatal(err)
	}
	if w.after != nil {
		if err := w.after(ctx, im, -1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		step(ctx, i, true)
	}
	b.StopTimer()
	// This process's CPU (user + system), so the servers' work is not in it;
	// the untimed before/after steps are, where a workload has them.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(tr.Mongo()), "mongo/op")
	b.ReportMetric(float64(tr.Redis()), "redis/op")
	b.ReportMetric(float64(tr.Total()), "rt/op")
}

func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func BenchmarkWarmRead(b *testing.B) {
	compare(b, workload{op: func(ctx context.Context, im impl, i int) error {
		row, ok, err := im.readSignal(ctx, fx.sig)
		if err != nil {
			return err
		}
		return check(ok && row != nil, "signal not found")
	}})
}

func BenchmarkColdRead(b *testing.B) {
	compare(b, workload{
		// A local-mode cold read is a value-mode one, and its process's
		// copy cannot be dropped from outside.
		skip: func(im impl) bool { return im.name() == "local" },
		before: func(ctx context.Context, _ impl, _ int) error {
			keys := []string{fx.prefix + signalRedisKey(fx.sig)}
			if c, ok := fx.impls[3].(cached); ok {
				vk, err := c.signal.CacheKey(fx.sig)
				if err != nil {
					return err
				}
				keys = append(keys, vk)
			}
			return fx.conn.Redis().Del(ctx, keys...).Err()
		},
		op: func(ctx context.Context, im impl, i int) error {
			row, ok, err := im.readSignal(ctx, fx.sig)
			if err != nil {
				return err
			}
			return check(ok && row != nil, "signal not found")
		}})
}

func BenchmarkWrite(b *testing.B) {
	compare(b, workload{op: func(ctx context.Context, im impl, i int) error {
		return im.writeSignal(ctx, fx.sig, signalRow(i))
	}})
}

func BenchmarkCandleWindow(b *testing.B) {
	for _, n := range []int{100, 500, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			compare(b, workload{op: func(ctx context.Context, im impl, i int) error {
				got, ok, err := im.window(ctx, benchExchange, benchSymbol, "1m", fx.t0, n)
				if err != nil {
					return err
				}
				return check(ok && len(got) == n, "window of %d: ok=%v len=%d", n, ok, len(got))
			}})
		})
	}
}

func BenchmarkCandleWrite500(b *testing.B) {
	const sym = "WRITE"
	batch := candles(fx0().t0, 500)
	compare(b, workload{
		op: func(ctx context.Context, im impl, i int) error {
			return im.writeCandles(ctx, benchExchange, sym, "1m", batch)
		},
		after: func(ctx context.Context, _ impl, _ int) error {
			// Leave the collection and Redis as they were.
			for _, c := range []string{"candle-items", cachedCollection("candle-items")} {
				if _, err := fx.conn.Database().Collection(c).DeleteMany(ctx, bson.D{{Key: "symbol", Value: sym}}); err != nil {
					return err
				}
			}
			var keys []string
			for _, c := range batch {
				keys = append(keys, fx.prefix+upstreamCandleKey(sym, "1m", c.Timestamp),
					fmt.Sprintf("%scandle_cache:%s:%s:1m:%d", fx.prefix, benchExchange, sym, int64(c.Timestamp)))
			}
			return fx.conn.Redis().Del(ctx, keys...).Err()
		}})
}

// fx0 returns the fixture or a zero one (for building inputs before compare
// skips).
func fx0() *fixture {
	if fx == nil {
		return &fixture{}
	}
	return fx
}

func BenchmarkListRead(b *testing.B) {
	for _, l := range lists() {
		b.Run(fmt.Sprintf("%s%d", l.domain, l.limit), func(b *testing.B) {
			compare(b, workload{op: func(ctx context.Context, im impl, i int) error {
				n, err := im.readList(ctx, l.domain, l.domain == "storage")
				if err != nil {
					return err
				}
				return check(n > 0, "empty list")
			}})
		})
	}
}

func BenchmarkListWrite(b *testing.B) {
	for _, l := range lists() {
		b.Run(fmt.Sprintf("%s%d", l.domain, l.limit), func(b *testing.B) {
			w := workload{op: func(ctx context.Context, im impl, i int) error {
				// The engine rewrites its whole list: after the warm-up, updates.
				return im.writeList(ctx, l.domain, l.domain != "storage", ids(l.domain+"-w", l.limit))
			}}
			if l.domain == "log" {
				// The log only ever appends: new entries, removed afterwards.
				w.op = func(ctx context.Context, im impl, i int) error {
					return im.writeList(ctx, "log", false, ids(fmt.Sprintf("log-w%d", i), l.limit))
				}
				w.after = func(ctx context.Context, _ impl, i int) error {
					_, err := fx.conn.Database().Collection("log-items").DeleteMany(ctx, bson.D{{Key: "entryId", Value: bson.D{{Key: "$regex", Value: fmt.Sprintf("^log-w%d-", i)}}}})
					return err
				}
			}
			compare(b, w)
		})
	}
}

// BenchmarkReplayStep is one strategy step of the demo: a one-hour window,
// the pending signal read and written, a decision remembered and read back,
// one log line.
func BenchmarkReplayStep(b *testing.B) {
	compare(b, workload{
		op: func(ctx context.Context, im impl, i int) error {
			since := fx.t0 + int64((i+3)%900)*60_000
			if _, ok, err := im.window(ctx, benchExchange, benchSymbol, "1m", since, 60); err != nil || !ok {
				return fmt.Errorf("window: %v %v", ok, err)
			}
			if _, _, err := im.readSignal(ctx, fx.sig); err != nil {
				return err
			}
			if err := im.writeSignal(ctx, fx.sig, signalRow(i)); err != nil {
				return err
			}
			when := time.UnixMilli(since + 60*60_000)
			if err := im.writeMemory(ctx, fx.mem, repo.MemoryEntry{Index: "i", Data: float64(i), When: float64(when.UnixMilli())}, when); err != nil {
				return err
			}
			if _, ok, err := im.readMemory(ctx, fx.mem); err != nil || !ok {
				return fmt.Errorf("memory: %v %v", ok, err)
			}
			return im.writeList(ctx, "log", false, []string{fmt.Sprintf("step-%s-%d", im.name(), i)})
		},
		after: func(ctx context.Context, im impl, i int) error {
			_, err := fx.conn.Database().Collection("log-items").DeleteOne(ctx, bson.D{{Key: "entryId", Value: fmt.Sprintf("step-%s-%d", im.name(), i)}})
			return err
		}})
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughput runs 1, 2, 4 and 8 clients at once, each its own Conn
// (a process's view), each reading and writing memory entries of its own
// keys (half each, identity mode) as fast as it can; it reports operations
// per second of them all (b.N operations shared out among the clients).
func BenchmarkThroughput(b *testing.B) {
	if fx == nil {
		b.Skip("PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL are not set; run `make bench`")
	}
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			clients := make([]*repo.Repos, n)
			for i := range clients {
				c, err := runtime.Open(fx.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close(ctx)
				if clients[i], err = repo.Open(c); err != nil {
					b.Fatal(err)
				}
				if err := c.Ready(ctx); err != nil {
					b.Fatal(err)
				}
			}
			key := func(client, i int) repo.MemoryKey {
				return repo.MemoryKey{SignalID: "tp-" + strconv.Itoa(client), BucketName: "tp", MemoryID: strconv.Itoa(i % 16)}
			}
			for c, r := range clients { // every key exists: reads find rows
				for i := range 16 {
					if err := r.Memory.Put(ctx, key(c, i), repo.MemoryEntry{Index: "i", Data: i}, time.UnixMilli(fx.t0)); err != nil {
						b.Fatal(err)
					}
				}
			}
			var next atomic.Int64
			errs := make(chan error, n)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c, r := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						var err error
						if i%2 == 0 {
							err = r.Memory.Put(ctx, key(c, i), repo.MemoryEntry{Index: "i", Data: i}, time.UnixMilli(fx.t0))
						} else {
							_, _, err = r.Memory.Get(ctx, key(c, i))
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
	}
}

// printEstimate prints, for the report, a paper estimate of the space a
// million rows take: in Redis from the measured bytes of one cached row
// per mode (the candle's identity key measured the same way), in MongoDB
// from the collections' average document size and index size per
// document (collStats).
func printEstimate(ctx context.Context, f *fixture, sigIdentity, sigValue int64) {
	rdb := f.conn.Redis().(*redis.Client)
	// A thousand more signals (other symbols), so that index bytes a row
	// are not one row's share of empty pages.
	if o, ok := f.impls[2].(ours); ok {
		items := make([]runtime.Item[repo.SignalKey, *repo.SignalRow], 1000)
		for i := range items {
			k := repo.SignalKey{Symbol: fmt.Sprintf("EST%04d", i), StrategyName: "macd", ExchangeName: benchExchange}
			items[i] = runtime.Item[repo.SignalKey, *repo.SignalRow]{Key: k, Payload: signalRow(i)}
		}
		if err := o.r.Signal.Runtime().PutMany(ctx, items); err != nil {
			fmt.Printf("bench-estimate: not measured (%v)\n", err)
			return
		}
	}
	candleIdentity, err := rdb.MemoryUsage(ctx, candleIdentityKey(f)).Result()
	if err != nil {
		fmt.Printf("bench-estimate: not measured (candle identity: %v)\n", err)
		return
	}
	candleValue := candleValueBytes(ctx, f)
	var rows []string
	for _, d := range []struct {
		domain, coll              string
		redisIdentity, redisValue int64 // bytes a row; value 0: not measured
	}{
		{"signal", "signal-items", sigIdentity, sigValue},
		{"candle", "candle-items", candleIdentity, candleValue},
	} {
		var st struct {
			Count      float64 `bson:"count"`
			AvgObjSize float64 `bson:"avgObjSize"`
			IndexSize  float64 `bson:"totalIndexSize"`
		}
		if err := f.conn.Database().RunCommand(ctx, bson.D{{Key: "collStats", Value: d.coll}}).Decode(&st); err != nil || st.Count == 0 {
			fmt.Printf("bench-estimate: not measured (%s: %v)\n", d.coll, err)
			return
		}
		idx := st.IndexSize / st.Count
		value := "-"
		if d.redisValue > 0 {
			value = fmt.Sprintf("%.0f MB", float64(d.redisValue))
		}
		rows = append(rows, fmt.Sprintf("| %s | %.0f MB | %s | 0 | %.0f MB documents + %.0f MB indexes (%.0f B and %.0f B a row, over %.0f rows) |",
			d.domain, float64(d.redisIdentity), value, st.AvgObjSize, idx, st.AvgObjSize, idx, st.Count))
	}
	fmt.Printf("bench-estimate: %s\n", strings.Join(rows, " ;; "))
}

// candleValueBytes is MEMORY USAGE of the first seeded candle's row in
// the value cache (its document copied to a collection of the value mode's
// own, read twice through a value-mode Repo: a miss that fills, then a
// hit); 0 when it cannot be measured. The local mode's Redis bytes are the
// value mode's and a grant field.
func candleValueBytes(ctx context.Context, f *fixture) int64 {
	s := repo.CandleSchema()
	// A collection of its own: the cached modes' candles are in mode none,
	// and a collection takes one cache family per Conn.
	s.Cache, s.CacheTTL, s.Collection = runtime.CacheValue, time.Minute, s.Collection+"-value"
	k := repo.CandleKey{ExchangeName: benchExchange, Symbol: benchSymbol, Interval: "1m", Timestamp: float64(f.t0)}
	filter := bson.D{{Key: "exchangeName", Value: k.ExchangeName}, {Key: "symbol", Value: k.Symbol}, {Key: "interval", Value: k.Interval}, {Key: "timestamp", Value: k.Timestamp}}
	raw, err := f.conn.Database().Collection(repo.CandleSchema().Collection).FindOne(ctx, filter).Raw()
	if err != nil {
		return 0
	}
	if _, err := f.conn.Database().Collection(s.Collection).InsertOne(ctx, raw); err != nil {
		return 0
	}
	r, err := runtime.NewRepo[repo.CandleKey, repo.Candle](f.conn, s)
	if err != nil {
		return 0
	}
	for range 2 {
		if _, err := r.Get(ctx, k); err != nil {
			return 0
		}
	}
	ck, err := r.CacheKey(k)
	if err != nil {
		return 0
	}
	n, err := f.conn.Redis().(*redis.Client).MemoryUsage(ctx, ck).Result()
	if err != nil {
		return 0
	}
	return n
}

// candleIdentityKey is the Redis identity key of the first seeded candle.
func candleIdentityKey(f *fixture) string {
	o, ok := f.impls[2].(ours)
	if !ok {
		return ""
	}
	k, err := o.r.Candle.Runtime().RedisKey(repo.CandleKey{ExchangeName: benchExchange, Symbol: benchSymbol, Interval: "1m", Timestamp: float64(f.t0)})
	if err != nil {
		return ""
	}
	return k
}
