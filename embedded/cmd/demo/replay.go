package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/persistgen/persistgen/runtime"
)

type candleKey struct {
	Exchange  string  `bson:"exchangeName"`
	Symbol    string  `bson:"symbol"`
	Interval  string  `bson:"interval"`
	Timestamp float64 `bson:"timestamp"`
}

func (k candleKey) KeyValues() []any { return []any{k.Exchange, k.Symbol, k.Interval, k.Timestamp} }

type candle struct {
	Timestamp float64 `bson:"timestamp"`
	Open      float64 `bson:"open"`
	High      float64 `bson:"high"`
	Low       float64 `bson:"low"`
	Close     float64 `bson:"close"`
	Volume    float64 `bson:"volume"`
}

type signalKey struct {
	Symbol   string `bson:"symbol"`
	Strategy string `bson:"strategyName"`
	Exchange string `bson:"exchangeName"`
}

func (k signalKey) KeyValues() []any { return []any{k.Symbol, k.Strategy, k.Exchange} }

type signalRow struct {
	ID        string  `bson:"id"`
	Position  string  `bson:"position"`
	PriceOpen float64 `bson:"priceOpen"`
	Timestamp float64 `bson:"timestamp"`
}

type memoryKey struct {
	SignalID string `bson:"signalId"`
	Bucket   string `bson:"bucketName"`
	MemoryID string `bson:"memoryId"`
}

func (k memoryKey) KeyValues() []any { return []any{k.SignalID, k.Bucket, k.MemoryID} }

type decision struct {
	Fast   float64 `bson:"fast"`
	Slow   float64 `bson:"slow"`
	Action string  `bson:"action"`
}

func schemas() (candles, signals, memory *runtime.Schema) {
	candles = &runtime.Schema{Domain: "candle", Collection: "candle-items", RedisPrefix: "candle_cache",
		Key: []runtime.KeyField{{Name: "exchangeName"}, {Name: "symbol"}, {Name: "interval"}, {Name: "timestamp"}}}
	signals = &runtime.Schema{Domain: "signal", Collection: "signal-items", RedisPrefix: "signal_cache",
		Key:        []runtime.KeyField{{Name: "symbol"}, {Name: "strategyName"}, {Name: "exchangeName"}},
		RedisOrder: []string{"exchangeName", "strategyName", "symbol"}, Payload: "payload"}
	memory = &runtime.Schema{Domain: "memory", Collection: "memory-items", RedisPrefix: "memory_cache",
		Key:     []runtime.KeyField{{Name: "signalId"}, {Name: "bucketName"}, {Name: "memoryId"}},
		HasWhen: true, HasRemoved: true, Payload: "payload"}
	return
}

const (
	exchange = "demo-exchange"
	strategy = "sma-cross"
	minute   = int64(60_000)
	window   = 60
)

func replay(ctx context.Context, conn *runtime.Conn, o options) error {
	start := time.Now()
	cs, ss, ms := schemas()
	if err := conn.EnsureIndexes(ctx, cs, ss, ms); err != nil {
		return err
	}
	candles, err := runtime.NewRepo[candleKey, candle](conn, cs)
	if err != nil {
		return err
	}
	signals, err := runtime.NewRepo[signalKey, *signalRow](conn, ss)
	if err != nil {
		return err
	}
	memory, err := runtime.NewRepo[memoryKey, decision](conn, ms)
	if err != nil {
		return err
	}

	n := o.hours * 60
	// A day-aligned start in the past: every candle is closed.
	t0 := time.Now().Add(-time.Duration(n+60) * time.Minute).Truncate(24 * time.Hour).UnixMilli()
	rng := rand.New(rand.NewPCG(1, 2))
	checks, trades := 0, 0
	for si, sym := range o.symbols {
		price := 100.0 * float64(si+1)
		items := make([]runtime.Item[candleKey, candle], n)
		for i := range items {
			ts := float64(t0 + int64(i)*minute)
			next := price * (1 + (rng.Float64()-0.5)*0.004)
			items[i] = runtime.Item[candleKey, candle]{Key: candleKey{exchange, sym, "1m", ts},
				Payload: candle{Timestamp: ts, Open: price, High: max(price, next) * 1.001, Low: min(price, next) * 0.999, Close: next, Volume: 1 + rng.Float64()*10}}
			price = next
		}
		for b := 0; b < n; b += 500 {
			if _, err := candles.InsertMany(ctx, items[b:min(b+500, n)]); err != nil {
				return err
			}
		}
		fmt.Fprintf(o.out, "%s: wrote %d candles in batches of 500\n", sym, n)

		open := false
		for step := window; step <= n; step += 15 {
			now := t0 + int64(step)*minute // the simulated clock: candles before now are closed
			rows, err := runtime.Collect(candles.List(ctx, runtime.ListOptions{
				Prefix: []any{exchange, sym, "1m"},
				Range:  &runtime.Range{Field: "timestamp", From: float64(now - window*minute), To: float64(now)},
			}))
			if err != nil {
				return err
			}
			if len(rows) != window {
				return fmt.Errorf("%s at %d: window has %d candles, want %d", sym, now, len(rows), window)
			}
			fast, slow := 0.0, 0.0
			for i, r := range rows {
				if r.Payload.Timestamp >= float64(now) {
					return fmt.Errorf("look-ahead: candle %v read at %d", r.Payload.Timestamp, now)
				}
				slow += r.Payload.Close
				if i >= window-15 {
					fast += r.Payload.Close
				}
			}
			fast, slow = fast/15, slow/window
			action := "hold"
			sk := signalKey{sym, strategy, exchange}
			switch {
			case fast > slow && !open:
				action, open = "open", true
				row := &signalRow{ID: fmt.Sprintf("%s-%d", sym, now), Position: "long", PriceOpen: rows[window-1].Payload.Close, Timestamp: float64(now)}
				if err := signals.Put(ctx, sk, row, time.Time{}); err != nil {
					return err
				}
				trades++
			case fast < slow && open:
				action, open = "close", false
				if err := signals.Put(ctx, sk, nil, time.Time{}); err != nil {
					return err
				}
			}
			got, err := signals.Get(ctx, sk)
			if err != nil && !(action == "hold" && !open) {
				return fmt.Errorf("read-after-write of %s: %w", sym, err)
			}
			if err == nil && (got.Payload != nil) != open {
				return fmt.Errorf("read-after-write of %s: open=%v, stored %+v", sym, open, got.Payload)
			}
			mk := memoryKey{sym + "-session", "decisions", "last"}
			when := time.UnixMilli(now)
			if err := memory.Put(ctx, mk, decision{fast, slow, action}, when); err != nil {
				return err
			}
			if _, err := memory.GetAsOf(ctx, mk, when.Add(-time.Millisecond)); err == nil {
				return fmt.Errorf("look-ahead: a decision written at %v is visible before it", when)
			}
			d, err := memory.GetAsOf(ctx, mk, when)
			if err != nil || d.Payload.Action != action {
				return fmt.Errorf("as-of read of the decision at %v: %+v, %v", when, d.Payload, err)
			}
			checks += 3
			if step%(3*60) == 0 || step+15 > n {
				fmt.Fprintf(o.out, "%s: simulated up to %s, %d trades so far\n", sym, time.UnixMilli(now).UTC().Format("2006-01-02 15:04"), trades)
			}
		}
	}
	fmt.Fprintf(o.out, "\n%d symbols, %d candles each, %d trades, %d read-after-write and look-ahead checks passed in %s\n\n",
		len(o.symbols), n, trades, checks, time.Since(start).Round(time.Millisecond))
	printStats(o, conn.Stats())
	return nil
}

func printStats(o options, st runtime.Stats) {
	tw := tabwriter.NewWriter(o.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcalls\tMongoDB/op\tRedis/op\tcache hits\terrors\t")
	names := st.Names()
	sort.Strings(names)
	var total runtime.OpStats
	for _, name := range names {
		s := st.Ops[name]
		if s.Calls == 0 {
			continue
		}
		total = total.Add(s)
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%s\t%d\t\n", name, s.Calls, float64(s.Mongo)/float64(s.Calls), float64(s.Redis)/float64(s.Calls), hitRate(s), s.Errors)
	}
	fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%s\t%d\t\n", "total", total.Calls, float64(total.Mongo)/float64(total.Calls), float64(total.Redis)/float64(total.Calls), hitRate(total), total.Errors)
	tw.Flush()
	if st.RedisFailures > 0 {
		fmt.Fprintf(o.out, "Redis failures absorbed: %d\n", st.RedisFailures)
	}
}

func hitRate(s runtime.OpStats) string {
	if s.CacheHits+s.CacheMisses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(s.CacheHits)/float64(s.CacheHits+s.CacheMisses))
}
