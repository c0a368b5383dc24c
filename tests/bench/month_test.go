package bench

// backtest-kit's month: the access pattern of its backtest and live loops
// (v18: BacktestLogicPrivateService, ClientExchange), run by upstream's
// adapter pattern, by ours without the series tier and by ours with it, on
// the same servers and data, in the rotating order of the other workloads.
//
//   - Backtest: an idle simulated minute asks three times for the five
//     one-minute candles before t (getAveragePrice at tick start, in the
//     signal step and before returning idle; CC_AVG_PRICE_CANDLES_COUNT =
//     5). Ten minutes of the month open a position: two 4h candles before
//     t, the 1,445 candles after t (chunks of 1,000 and 445), and the five
//     candles before each of the 1,445 held minutes.
//   - Live: the newest of the five candles is not stored yet (the minute
//     just closed), so the engine writes the five and reads them twice
//     more; an active minute adds a recent-signal upsert and a storage list
//     write of 50 rows.
//   - Warm-up: one day of one-minute candles written the way warmCandles
//     writes them (chunks of 1,000), projected to the month's 31 days.
//
// upstream and ours (no tier) are measured per minute and per position and
// their month is projected (44,640 minutes and ten positions: a month
// through upstream takes the better part of an hour); the tier's month is
// run whole, each time on a fresh Conn (an empty tier), so its round trips
// per minute are the month's own, misses included.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

const (
	monthSymbol  = "MONTH"
	monthMinutes = 44_640 // 31 days of one-minute frames
	avgCandles   = 5      // CC_AVG_PRICE_CANDLES_COUNT
	avgAsks      = 3      // getAveragePrice calls in an idle minute
	monthSignals = 10
	heldMinutes  = 1_445 // a position's forward read: 1,000 + 445
	minuteMs     = int64(60_000)
	fourHoursMs  = 4 * 60 * minuteMs
	dayMinutes   = 1_440
)

// monthT0 is the month's first minute (a whole 4h boundary, in 2020).
func monthT0() int64 { return fx0().t0/fourHoursMs*fourHoursMs + 2*fourHoursMs }

// signalMinute is the k-th position's minute of the month.
func signalMinute(k int) int { return 1_000 + k*4_000 }

var monthOnce struct {
	sync.Once
	err error
}

// seedMonth stores the month once per process: the five candles before
// its first minute, its 44,640 one-minute candles and its 4h candles, and
// upstream's identity keys for them (as its own warm-up would have left).
func seedMonth(b *testing.B) {
	monthOnce.Do(func() { monthOnce.err = writeMonth(context.Background()) })
	if monthOnce.err != nil {
		b.Fatalf("seeding the month: %v", monthOnce.err)
	}
}

func writeMonth(ctx context.Context) error {
	o := fx.impls[2].(ours)
	t0 := monthT0()
	all := candles(t0-avgCandles*minuteMs, monthMinutes+avgCandles+heldMinutes)
	for i := 0; i < len(all); i += 1_000 {
		if err := o.writeCandles(ctx, benchExchange, monthSymbol, "1m", all[i:min(i+1_000, len(all))]); err != nil {
			return err
		}
	}
	var h4 []repo.Candle
	for ts := t0 - 2*fourHoursMs; ts < t0+int64(monthMinutes)*minuteMs; ts += fourHoursMs {
		h4 = append(h4, repo.Candle{Timestamp: float64(ts), Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 100})
	}
	if err := o.writeCandles(ctx, benchExchange, monthSymbol, "4h", h4); err != nil {
		return err
	}
	cur, err := fx.conn.Database().Collection("candle-items").Find(ctx, bson.D{{Key: "symbol", Value: monthSymbol}})
	if err != nil {
		return err
	}
	var docs []struct {
		ID        bson.ObjectID `bson:"_id"`
		Interval  string        `bson:"interval"`
		Timestamp float64       `bson:"timestamp"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return err
	}
	if want := len(all) + len(h4); len(docs) != want {
		return fmt.Errorf("%d month candles stored; want %d", len(docs), want)
	}
	rdb := fx.conn.Redis()
	for i := 0; i < len(docs); i += 1_000 {
		pipe := rdb.Pipeline()
		for _, d := range docs[i:min(i+1_000, len(docs))] {
			pipe.Set(ctx, fx.prefix+upstreamCandleKey(monthSymbol, d.Interval, d.Timestamp), d.ID.Hex(), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// avgPrice is one getAveragePrice: the five one-minute candles before t.
func avgPrice(ctx context.Context, im impl, sym string, t int64) (bool, error) {
	got, ok, err := im.window(ctx, benchExchange, sym, "1m", t-avgCandles*minuteMs, avgCandles)
	if err == nil && ok && len(got) != avgCandles {
		err = fmt.Errorf("a window of %d candles returned %d", avgCandles, len(got))
	}
	return ok, err
}

// idleMinute is minute m of the backtest month.
func idleMinute(ctx context.Context, im impl, m int) error {
	t := monthT0() + int64(m)*minuteMs
	for range avgAsks {
		if ok, err := avgPrice(ctx, im, monthSymbol, t); err != nil || !ok {
			return fmt.Errorf("minute %d: candles before it: ok=%v %v", m, ok, err)
		}
	}
	return nil
}

// position is the k-th signal of the month: what the engine reads beyond
// its idle minute when a signal opens and is held.
func position(ctx context.Context, im impl, k int) error {
	t := monthT0() + int64(signalMinute(k))*minuteMs
	if _, ok, err := im.window(ctx, benchExchange, monthSymbol, "4h", t/fourHoursMs*fourHoursMs-2*fourHoursMs, 2); err != nil || !ok {
		return fmt.Errorf("position %d: 4h candles: ok=%v %v", k, ok, err)
	}
	for _, c := range [][2]int{{0, 1_000}, {1_000, heldMinutes - 1_000}} {
		if _, ok, err := im.window(ctx, benchExchange, monthSymbol, "1m", t+int64(c[0])*minuteMs, c[1]); err != nil || !ok {
			return fmt.Errorf("position %d: candles after it: ok=%v %v", k, ok, err)
		}
	}
	for h := 1; h <= heldMinutes; h++ {
		if ok, err := avgPrice(ctx, im, monthSymbol, t+int64(h)*minuteMs); err != nil || !ok {
			return fmt.Errorf("position %d, held minute %d: ok=%v %v", k, h, ok, err)
		}
	}
	return nil
}

// backtestMonth is the whole month: every minute, and the positions at
// their minutes.
func backtestMonth(ctx context.Context, im impl) error {
	k := 0
	for m := range monthMinutes {
		if err := idleMinute(ctx, im, m); err != nil {
			return err
		}
		if k < monthSignals && m == signalMinute(k) {
			if err := position(ctx, im, k); err != nil {
				return err
			}
			k++
		}
	}
	return nil
}

// monthImpls are upstream and ours (no tier), in the rotating order.
func monthImpls() []impl {
	var out []impl
	for j := range len(fx.impls) {
		im := fx.impls[(j+fx.rep)%len(fx.impls)]
		if n := im.name(); n == "upstream" || n == "ours" {
			out = append(out, im)
		}
	}
	return out
}

// runMonth times b.N operations of op (i counting from 0), counting every
// round trip they make; it reports per operation, and per simulated
// minute where an operation stands for minutes of them.
func runMonth(b *testing.B, minutes float64, setup func(i int) (impl, error), op func(ctx context.Context, im impl, i int) error) {
	ctx := context.Background()
	tctx, tr := runtime.WithTrace(ctx)
	var elapsed time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		im, err := setup(i)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		b.StartTimer()
		err = op(tctx, im, i)
		b.StopTimer()
		elapsed += time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", im.name(), err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(tr.Mongo())/n, "mongo/op")
	b.ReportMetric(float64(tr.Redis())/n, "redis/op")
	b.ReportMetric(float64(tr.Total())/n, "rt/op")
	if minutes > 0 {
		b.ReportMetric(float64(elapsed.Nanoseconds())/n/minutes, "ns/minute")
		b.ReportMetric(float64(tr.Total())/n/minutes, "rt/minute")
	}
}

// BenchmarkMonth runs the month's workloads. Its sub-benchmarks are named
// Month/<workload>/<upstream|ours|tier>; the report turns them into the
// month table and its targets.
func BenchmarkMonth(b *testing.B) {
	if fx == nil {
		b.Skip("PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL are not set; run `make bench`")
	}
	seedMonth(b)
	b.Run("Minute", func(b *testing.B) {
		for _, im := range monthImpls() {
			b.Run(im.name(), func(b *testing.B) {
				runMonth(b, 1, func(int) (impl, error) { return im, nil }, func(ctx context.Context, im impl, i int) error {
					return idleMinute(ctx, im, i%monthMinutes)
				})
			})
		}
	})
	b.Run("Position", func(b *testing.B) {
		for _, im := range monthImpls() {
			b.Run(im.name(), func(b *testing.B) {
				runMonth(b, 0, func(int) (impl, error) { return im, nil }, func(ctx context.Context, im impl, i int) error {
					return position(ctx, im, i%monthSignals)
				})
			})
		}
	})
	b.Run("Backtest", func(b *testing.B) {
		b.Run("tier", func(b *testing.B) {
			var conn *runtime.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			runMonth(b, monthMinutes, func(int) (impl, error) {
				// A fresh Conn each month: its tier starts empty.
				if conn != nil {
					conn.Close(context.Background())
				}
				cfg := fx.cfg
				cfg.SeriesCacheBytes = 0 // the default bound
				c, err := runtime.Open(cfg)
				if err != nil {
					return nil, err
				}
				conn = c
				if err := c.Ready(context.Background()); err != nil {
					return nil, err
				}
				r, err := repo.Open(c)
				return tier{ours{r: r}}, err
			}, func(ctx context.Context, im impl, _ int) error {
				return backtestMonth(ctx, im)
			})
		})
	})
	b.Run("LiveIdle", func(b *testing.B) { liveMinutes(b, false) })
	b.Run("LiveActive", func(b *testing.B) { liveMinutes(b, true) })
	b.Run("WarmUp", func(b *testing.B) {
		for _, im := range monthImpls() {
			b.Run(im.name(), func(b *testing.B) {
				day := candles(monthT0(), dayMinutes)
				sym := func(i int) string { return fmt.Sprintf("WARM-%s-%d", im.name(), i) }
				runMonth(b, dayMinutes, func(i int) (impl, error) {
					if i > 0 {
						return im, dropSymbol(context.Background(), sym(i-1), day)
					}
					return im, nil
				}, func(ctx context.Context, im impl, i int) error {
					for j := 0; j < len(day); j += 1_000 {
						if err := im.writeCandles(ctx, benchExchange, sym(i), "1m", day[j:min(j+1_000, len(day))]); err != nil {
							return err
						}
					}
					return nil
				})
				if err := dropSymbol(context.Background(), sym(b.N-1), day); err != nil {
					b.Fatal(err)
				}
			})
		}
	})
}

// tier is ours on a Conn whose series tier is on.
type tier struct{ ours }

func (tier) name() string { return "tier" }

// dropSymbol removes a symbol's one-minute candles at the timestamps of cs
// and both engines' identity keys for them.
func dropSymbol(ctx context.Context, sym string, cs []repo.Candle) error {
	if _, err := fx.conn.Database().Collection("candle-items").DeleteMany(ctx, bson.D{{Key: "symbol", Value: sym}}); err != nil {
		return err
	}
	var keys []string
	for _, c := range cs {
		keys = append(keys, fx.prefix+upstreamCandleKey(sym, "1m", c.Timestamp),
			fmt.Sprintf("%scandle_cache:%s:%s:1m:%d", fx.prefix, benchExchange, sym, int64(c.Timestamp)))
	}
	for i := 0; i < len(keys); i += 1_000 {
		if err := fx.conn.Redis().Del(ctx, keys[i:min(i+1_000, len(keys))]...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// liveMinutes runs the live loop, one minute per operation, on a symbol of
// its own per implementation: ours runs on a Conn with the tier on, as a
// live engine would.
func liveMinutes(b *testing.B, active bool) {
	ctx := context.Background()
	cfg := fx.cfg
	cfg.SeriesCacheBytes = 0
	conn, err := runtime.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	r, err := repo.Open(conn)
	if err != nil {
		b.Fatal(err)
	}
	live := []liveImpl{upstreamLive{fx.impls[1].(upstream)}, oursLive{ours{r: r}}}
	if fx.rep%2 == 1 {
		live[0], live[1] = live[1], live[0]
	}
	for _, im := range live {
		sym := fmt.Sprintf("LIVE-%s-%v-%d", im.name(), active, fx.rep)
		t0 := monthT0() + 40*int64(dayMinutes)*minuteMs // after the month
		// The four candles before the first minute's newest.
		if err := im.writeCandles(ctx, benchExchange, sym, "1m", candles(t0-avgCandles*minuteMs, avgCandles-1)); err != nil {
			b.Fatal(err)
		}
		next := 0 // minutes run so far: each run of the sub-benchmark goes on from there
		b.Run(im.name(), func(b *testing.B) {
			base := next
			runMonth(b, 1, func(int) (impl, error) { return im, nil }, func(ctx context.Context, _ impl, i int) error {
				return liveMinute(ctx, im, sym, t0+int64(base+i)*minuteMs, active, base+i)
			})
			next += b.N
		})
		if err := dropSymbol(ctx, sym, candles(t0-avgCandles*minuteMs, next+avgCandles)); err != nil {
			b.Fatal(err)
		}
	}
}

// liveImpl is an implementation the live loop runs: it also upserts the
// recent signal.
type liveImpl interface {
	impl
	writeRecent(ctx context.Context, k repo.RecentKey, v *repo.RecentSignal) error
}

type upstreamLive struct{ upstream }

func (u upstreamLive) writeRecent(ctx context.Context, k repo.RecentKey, v *repo.RecentSignal) error {
	now := time.Now()
	return u.writeOne(ctx, "recent-items", fmt.Sprintf("recent_cache:%s:%s:%s:%s:%v", k.Symbol, k.StrategyName, k.ExchangeName, k.FrameName, k.Backtest),
		bson.D{{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName}, {Key: "frameName", Value: k.FrameName}, {Key: "backtest", Value: k.Backtest}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "payload", Value: v}, {Key: "updatedDate", Value: now}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}}})
}

type oursLive struct{ ours }

func (o oursLive) writeRecent(ctx context.Context, k repo.RecentKey, v *repo.RecentSignal) error {
	return o.r.Recent.Put(ctx, k, v, time.UnixMilli(int64(v.Timestamp)))
}

// liveMinute is the live loop at minute t: the candle that just closed is
// not stored yet, so the first read misses it; the engine writes the five
// and reads them twice more.
func liveMinute(ctx context.Context, im liveImpl, sym string, t int64, active bool, i int) error {
	if ok, err := avgPrice(ctx, im, sym, t); err != nil || ok {
		return fmt.Errorf("live minute %d: the newest candle is not stored yet, yet ok=%v (%v)", i, ok, err)
	}
	if err := im.writeCandles(ctx, benchExchange, sym, "1m", candles(t-avgCandles*minuteMs, avgCandles)); err != nil {
		return err
	}
	for range avgAsks - 1 {
		if ok, err := avgPrice(ctx, im, sym, t); err != nil || !ok {
			return fmt.Errorf("live minute %d: after the write: ok=%v %v", i, ok, err)
		}
	}
	if !active {
		return nil
	}
	k := repo.RecentKey{Symbol: sym, StrategyName: "macd", ExchangeName: benchExchange}
	if err := im.writeRecent(ctx, k, &repo.RecentSignal{ID: fmt.Sprint("sig-", i), Position: "long", PriceOpen: 100, Timestamp: float64(t)}); err != nil {
		return err
	}
	return im.writeList(ctx, "storage", false, ids(fmt.Sprintf("live-%s", im.name()), 50))
}
