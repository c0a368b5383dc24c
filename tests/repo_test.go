package tests

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// openRepos gives a test every generated repository on its own database,
// with the indexes ensured.
func openRepos(t *testing.T) (*testenv.Env, *repo.Repos) {
	t.Helper()
	t.Parallel()
	env := testenv.New(t)
	must(t, repo.EnsureIndexes(ctxT(t), env.Conn))
	repos, err := repo.Open(env.Conn)
	must(t, err)
	return env, repos
}

func ptr[T any](v T) *T { return &v }

func TestGeneratedRepositoriesOfAllSixteenDomains(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	when := ms(1_700_000_000_000)
	sk := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	row := &repo.SignalRow{ID: "sig-1", Position: "long", PriceOpen: 100, PriceTakeProfit: 110, PriceStopLoss: 95,
		MinuteEstimatedTime: 60, ExchangeName: "binance", StrategyName: "macd", Symbol: "BTCUSDT", Timestamp: 1.7e12,
		TrailingPriceStopLoss: ptr(96.5)}
	absent := repo.SignalKey{Symbol: "NOPE", StrategyName: "macd", ExchangeName: "binance"}

	type check struct {
		name string
		fn   func(t *testing.T)
	}
	checks := []check{
		{"candle", func(t *testing.T) {
			base := int64(1_600_000_020_000) / 60000 * 60000
			cs := []repo.Candle{{Timestamp: float64(base), Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 10}, {Timestamp: float64(base + 60000), Close: 2}}
			n, err := r.Candle.Put(ctx, "binance", "BTCUSDT", "1m", cs)
			must(t, err)
			if n != 2 {
				t.Fatalf("stored %d", n)
			}
			got, ok, err := r.Candle.Window(ctx, "binance", "BTCUSDT", "1m", base, 2)
			must(t, err)
			if !ok || !cmp.Equal(cs, got) {
				t.Fatalf("window = %v, %+v", ok, got)
			}
			_, ok, err = r.Candle.Window(ctx, "binance", "BTCUSDT", "1m", base, 3)
			must(t, err)
			if ok {
				t.Fatal("a window with a missing candle reported ok")
			}
		}},
		{"signal", func(t *testing.T) { singleRoundTrip(t, ctx, r.Signal.Put, r.Signal.Get, sk, absent, row) }},
		{"schedule", func(t *testing.T) {
			singleRoundTrip(t, ctx, r.Schedule.Put, r.Schedule.Get, repo.ScheduleKey(sk), repo.ScheduleKey(absent), row)
		}},
		{"strategy", func(t *testing.T) {
			st := &repo.StrategyState{PendingSignalID: ptr("sig-1"), CommitQueue: []any{}, RetryOpenCount: 2, IsPaused: true}
			singleRoundTrip(t, ctx, r.Strategy.Put, r.Strategy.Get, repo.StrategyKey(sk), repo.StrategyKey(absent), st)
		}},
		{"risk", func(t *testing.T) {
			k := repo.RiskKey{RiskName: "max3", ExchangeName: "binance"}
			got, ok, err := r.Risk.Get(ctx, k)
			must(t, err)
			if ok || got == nil || len(got) != 0 {
				t.Fatalf("absent risk = %v, %#v; want false and an empty, non-nil list", ok, got)
			}
			v := []repo.RiskEntry{{Key: "macd_binance_BTCUSDT", Position: repo.RiskPosition{StrategyName: "macd", Symbol: "BTCUSDT", PriceOpen: 100}}}
			must(t, r.Risk.Put(ctx, k, v, when))
			got, ok, err = r.Risk.Get(ctx, k)
			must(t, err)
			if !ok || !cmp.Equal(v, got) {
				t.Fatalf("risk = %v, %+v", ok, got)
			}
		}},
		{"partial", func(t *testing.T) {
			k := repo.PartialKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance", SignalID: "sig-1"}
			v := map[string]repo.PartialState{"sig-1": {ProfitLevels: []float64{10, 20}, LossLevels: []float64{}}}
			emptyRoundTrip(t, ctx, r.Partial.Put, r.Partial.Get, r.Partial.GetAsOf, k, v, when)
		}},
		{"breakeven", func(t *testing.T) {
			k := repo.BreakevenKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance", SignalID: "sig-1"}
			emptyRoundTrip(t, ctx, r.Breakeven.Put, r.Breakeven.Get, r.Breakeven.GetAsOf, k, map[string]repo.BreakevenState{"sig-1": {Reached: true}}, when)
		}},
		{"storage", func(t *testing.T) {
			items := []repo.StorageRow{{ID: "a", Status: "opened", Symbol: "BTCUSDT"}, {ID: "b", Status: "closed"}}
			got, err := r.Storage.GetAll(ctx, true)
			must(t, err)
			if got == nil || len(got) != 0 {
				t.Fatalf("empty storage = %#v", got)
			}
			must(t, r.Storage.PutAll(ctx, true, items))
			got, err = r.Storage.GetAll(ctx, true)
			must(t, err)
			if len(got) != 2 {
				t.Fatalf("storage = %+v", got)
			}
			live, err := r.Storage.GetAll(ctx, false)
			must(t, err)
			if len(live) != 0 {
				t.Fatalf("live storage sees backtest rows: %+v", live)
			}
		}},
		{"notification", func(t *testing.T) {
			must(t, r.Notification.PutAll(ctx, false, []repo.Notification{{ID: "n1", Type: "signal.opened", Extra: map[string]any{"price": 100.5}}}))
			got, err := r.Notification.GetAll(ctx, false)
			must(t, err)
			if len(got) != 1 || got[0].Type != "signal.opened" || got[0].Extra["price"] != 100.5 {
				t.Fatalf("notifications = %+v", got)
			}
		}},
		{"log", func(t *testing.T) {
			n, err := r.Log.Append(ctx, []repo.LogEntry{{ID: "l1", Type: "info", Topic: "start", Args: []any{"a", 1.0}}})
			must(t, err)
			n2, err := r.Log.Append(ctx, []repo.LogEntry{{ID: "l1", Type: "warn", Topic: "overwrite?"}})
			must(t, err)
			got, err := r.Log.GetAll(ctx)
			must(t, err)
			if n != 1 || n2 != 0 || len(got) != 1 || got[0].Topic != "start" {
				t.Fatalf("log = %d, %d, %+v", n, n2, got)
			}
		}},
		{"measure", func(t *testing.T) {
			k := repo.MeasureKey{Bucket: "fib", EntryKey: "10"}
			bucketRoundTrip(t, ctx, r.Measure, k, repo.MeasureEntry{ID: "10", Data: 55.0})
		}},
		{"interval", func(t *testing.T) {
			k := repo.IntervalKey{Bucket: "atr", EntryKey: "BTCUSDT"}
			v := repo.IntervalEntry{ID: "x", Data: "v", When: time.UnixMilli(1_700_000_000_000).UTC()}
			must(t, r.Interval.Put(ctx, k, v, when))
			got, ok, err := r.Interval.Get(ctx, k)
			must(t, err)
			if !ok || !cmp.Equal(v, got) {
				t.Fatalf("interval = %v %+v", ok, got)
			}
			removed, err := r.Interval.Remove(ctx, k)
			must(t, err)
			_, ok, err = r.Interval.Get(ctx, k)
			must(t, err)
			if !removed || ok {
				t.Fatal("removed interval entry still read")
			}
		}},
		{"memory", func(t *testing.T) {
			k := repo.MemoryKey{SignalID: "sig-1", BucketName: "notes", MemoryID: "m1"}
			must(t, r.Memory.Put(ctx, k, repo.MemoryEntry{Priority: 1, Data: map[string]any{"x": 1.0}, Index: "i"}, when))
			has, err := r.Memory.Has(ctx, k)
			must(t, err)
			rows, err := runtime.Collect(r.Memory.List(ctx, "sig-1", "notes"))
			must(t, err)
			if !has || len(rows) != 1 || rows[0].Key.MemoryID != "m1" {
				t.Fatalf("memory has=%v rows=%+v", has, rows)
			}
			_, err = r.Memory.Remove(ctx, k)
			must(t, err)
			has, err = r.Memory.Has(ctx, k)
			must(t, err)
			rows, err = runtime.Collect(r.Memory.List(ctx, "sig-1", "notes"))
			must(t, err)
			if !has || len(rows) != 0 {
				t.Fatalf("after remove: has=%v rows=%+v", has, rows)
			}
		}},
		{"recent", func(t *testing.T) {
			k := repo.RecentKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance", FrameName: "", Backtest: false}
			v := &repo.RecentSignal{ID: "sig-1", Position: "short", PriceOpen: 100, OriginalPriceOpen: 99, Pnl: bson.D{{Key: "pnlPercentage", Value: 1.5}}}
			whenRoundTrip(t, ctx, r.Recent.Put, r.Recent.Get, r.Recent.GetAsOf, k, v, when)
		}},
		{"state", func(t *testing.T) {
			k := repo.StateKey{SignalID: "sig-1", BucketName: "b"}
			whenRoundTrip(t, ctx, r.State.Put, r.State.Get, r.State.GetAsOf, k, &repo.StateEntry{ID: "sig-1_b", Data: "x", When: 5}, when)
		}},
		{"session", func(t *testing.T) {
			k := repo.SessionKey{StrategyName: "macd", ExchangeName: "binance", FrameName: "f", Symbol: "BTCUSDT", Backtest: true}
			whenRoundTrip(t, ctx, r.Session.Put, r.Session.Get, r.Session.GetAsOf, k, &repo.SessionEntry{ID: "s", Data: 1.5}, when)
		}},
	}
	if len(checks) != len(repo.Schemas()) {
		t.Fatalf("%d checks for %d domains", len(checks), len(repo.Schemas()))
	}
	for i, c := range checks {
		if c.name != repo.Schemas()[i].Domain {
			t.Fatalf("check %d is %s, domain %d is %s", i, c.name, i, repo.Schemas()[i].Domain)
		}
		t.Run(c.name, c.fn)
	}
}

func singleRoundTrip[K any, P any](t *testing.T, ctx context.Context, put func(context.Context, K, P) error, get func(context.Context, K) (P, bool, error), k, absent K, v P) {
	t.Helper()
	must(t, put(ctx, k, v))
	got, ok, err := get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(v, got) {
		t.Fatalf("read back %v: %s", ok, cmp.Diff(v, got))
	}
	_, ok, err = get(ctx, absent)
	must(t, err)
	if ok {
		t.Fatal("absent key read as present")
	}
	var null P
	must(t, put(ctx, k, null))
	got, ok, err = get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(null, got) {
		t.Fatalf("after writing nothing: ok=%v %+v; want the row kept with a null payload", ok, got)
	}
}

func emptyRoundTrip[K any, P any](t *testing.T, ctx context.Context, put func(context.Context, K, P, time.Time) error, get func(context.Context, K) (P, bool, error), asOf func(context.Context, K, time.Time) (P, bool, error), k K, v P, when time.Time) {
	t.Helper()
	got, ok, err := get(ctx, k)
	must(t, err)
	if ok || cmp.Equal(got, *new(P)) {
		t.Fatalf("absent read = %v %#v; want false and an empty, non-nil value", ok, got)
	}
	must(t, put(ctx, k, v, when))
	got, ok, err = get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(v, got) {
		t.Fatalf("read back: %s", cmp.Diff(v, got))
	}
	_, ok, err = asOf(ctx, k, when.Add(-time.Millisecond))
	must(t, err)
	if ok {
		t.Fatal("as-of read saw a later write")
	}
}

func whenRoundTrip[K any, P any](t *testing.T, ctx context.Context, put func(context.Context, K, P, time.Time) error, get func(context.Context, K) (P, bool, error), asOf func(context.Context, K, time.Time) (P, bool, error), k K, v P, when time.Time) {
	t.Helper()
	_, ok, err := get(ctx, k)
	must(t, err)
	if ok {
		t.Fatal("absent key read as present")
	}
	must(t, put(ctx, k, v, when))
	got, ok, err := get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(v, got) {
		t.Fatalf("read back: %s", cmp.Diff(v, got))
	}
	if _, ok, err = asOf(ctx, k, when.Add(-time.Millisecond)); err != nil || ok {
		t.Fatalf("as-of before the write: %v %v", ok, err)
	}
	if got, ok, err = asOf(ctx, k, when); err != nil || !ok || !cmp.Equal(v, got) {
		t.Fatalf("as-of at the write: %v %v", ok, err)
	}
}

func bucketRoundTrip(t *testing.T, ctx context.Context, r *repo.MeasureRepo, k repo.MeasureKey, v repo.MeasureEntry) {
	t.Helper()
	_, ok, err := r.Get(ctx, k)
	must(t, err)
	if ok {
		t.Fatal("absent read as present")
	}
	must(t, r.Put(ctx, k, v))
	got, ok, err := r.Get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(v, got) {
		t.Fatalf("read back: %s", cmp.Diff(v, got))
	}
	keys, err := runtime.Collect(r.List(ctx, k.Bucket))
	must(t, err)
	if len(keys) != 1 || keys[0].Key != k {
		t.Fatalf("list = %+v", keys)
	}
}

// Read-after-write rests on reading from the primary: a connection string
// asking for another read preference is refused with what to do, and the
// default write concern (majority, set by the Conn) is accepted by the
// server: writes and reads work.
func TestOpenReadsFromThePrimaryOnly(t *testing.T) {
	mongoURI, _ := testenv.URIs(t)
	sep := "?"
	if strings.Contains(mongoURI, "?") {
		sep = "&"
	}
	_, err := runtime.Open(runtime.Config{MongoURI: mongoURI + sep + "readPreference=secondaryPreferred", DisableRedis: true})
	if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), "primary") || !strings.Contains(err.Error(), "remove readPreference") {
		t.Fatalf("Open with readPreference=secondaryPreferred = %v", err)
	}
	c, err := runtime.Open(runtime.Config{MongoURI: mongoURI + sep + "readPreference=primary", DisableRedis: true, Database: "pgrp_" + testenv.ID()})
	must(t, err)
	t.Cleanup(func() {
		_ = c.Database().Drop(context.Background())
		_ = c.Close(context.Background())
	})
	s := memorySchemaIn(runtime.CacheNone, 0)
	must(t, c.EnsureIndexes(ctxT(t), s))
	r := newRepo[memKey, memData](t, c, s)
	must(t, r.Put(ctxT(t), memKey{"s", "b", "1"}, memData{Value: 5}, ms(1)))
	if rec, err := r.Get(ctxT(t), memKey{"s", "b", "1"}); err != nil || rec.Payload.Value != 5 {
		t.Fatalf("Get = %+v, %v", rec.Payload, err)
	}
}
