package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// backtest-kit's simulated minute (v18): getAveragePrice asks three times
// for the five one-minute candles before t (at tick start, in the signal
// step and before returning idle; CC_AVG_PRICE_CANDLES_COUNT = 5).
const (
	avgCandles = 5
	avgAsks    = 3
	// noTierSample is how many minutes are run without the series tier,
	// for comparison: each costs three finds, and on the embedded server
	// (FerretDB v1 on SQLite, which scans for a range) a find of five
	// candles among a month of them takes tens of milliseconds.
	noTierSample = 30
)

// minuteRun is what a run of simulated minutes cost.
type minuteRun struct {
	minutes    int64
	roundTrips int64
	took       time.Duration
}

func (m minuteRun) String() string {
	if m.minutes == 0 {
		return "no minutes"
	}
	per := m.took / time.Duration(m.minutes)
	if per > 100*time.Microsecond {
		per = per.Round(time.Microsecond)
	} else {
		per = per.Round(100 * time.Nanosecond)
	}
	return fmt.Sprintf("%6d minutes, %.4f round trips and %s per simulated minute", m.minutes, float64(m.roundTrips)/float64(m.minutes), per)
}

// avgPrices runs the minutes [from, to) of ex/sym through r: each asks
// three times for the five candles before it. It counts every round trip
// and calls tick after each minute.
func avgPrices(ctx context.Context, r *repo.Repos, ex, sym string, t0, from, to int64, tick func()) (minuteRun, error) {
	tctx, tr := runtime.WithTrace(ctx)
	start := time.Now()
	for m := from; m < to; m++ {
		t := t0 + m*minute
		for range avgAsks {
			got, ok, err := r.Candle.Window(tctx, ex, sym, "1m", t-avgCandles*minute, avgCandles)
			if err != nil {
				return minuteRun{}, err
			}
			if !ok || len(got) != avgCandles || int64(got[avgCandles-1].Timestamp) != t-minute {
				return minuteRun{}, fmt.Errorf("minute %s: the five candles before it: ok=%v, %d candles", time.UnixMilli(t).UTC().Format(time.DateTime), ok, len(got))
			}
		}
		if tick != nil {
			tick()
		}
	}
	return minuteRun{minutes: to - from, roundTrips: tr.Total(), took: time.Since(start)}, nil
}

// noTier opens a Conn like cfg's with the series tier off, and its
// repositories.
func noTier(cfg runtime.Config) (*runtime.Conn, *repo.Repos, error) {
	cfg.SeriesCacheBytes = -1
	conn, err := runtime.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := repo.Open(conn)
	if err != nil {
		conn.Close(context.Background())
		return nil, nil, err
	}
	return conn, r, nil
}

// printMinutes measures backtest-kit's minute on the candles the replay
// wrote for sym (minutes [avgCandles, n) after t0): every minute through
// the Conn's series tier, and the first noTierSample without it.
func printMinutes(ctx context.Context, o options, r *repo.Repos, ex, sym string, t0, n int64) error {
	withTier, err := avgPrices(ctx, r, ex, sym, t0, avgCandles, n, nil)
	if err != nil {
		return err
	}
	conn, plain, err := noTier(o.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	without, err := avgPrices(ctx, plain, ex, sym, t0, avgCandles, min(n, avgCandles+noTierSample), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "\nbacktest-kit's simulated minute (3 x the five candles before t), %s:\n", sym)
	fmt.Fprintf(o.out, "  series tier:  %s\n", withTier)
	fmt.Fprintf(o.out, "  without it:   %s\n", without)
	return nil
}

// The month (-month): one symbol's 31 days as backtest-kit reads them.
const monthDaysDefault = 31

// replayMonth writes a month of one-minute candles for one symbol (the
// five before its first minute too) the way warmCandles writes them, in
// chunks of 1,000, then runs every minute of it through the series tier,
// and a sample without it; with a progress bar when stderr is a terminal.
func replayMonth(ctx context.Context, conn *runtime.Conn, o options) error {
	if err := repo.EnsureIndexes(ctx, conn); err != nil {
		return err
	}
	r, err := repo.Open(conn)
	if err != nil {
		return err
	}
	ex, sym := fmt.Sprintf("month-%x", time.Now().UnixNano()), o.symbols[0]
	n := int64(o.monthDays) * 1440
	t0 := time.Now().Add(-time.Duration(n+1440) * time.Minute).Truncate(24 * time.Hour).UnixMilli()
	days := "days"
	if o.monthDays == 1 {
		days = "day"
	}
	fmt.Fprintf(o.out, "month: %d %s of one-minute candles for %s on exchange %q\n", o.monthDays, days, sym, ex)
	start := time.Now()
	bar := newBar(o.stderr)
	warm := bar("warm-up", n+avgCandles)
	for i := int64(0); i < n+avgCandles; i += 1000 {
		k := min(1000, n+avgCandles-i)
		cs := make([]repo.Candle, k)
		for j := range cs {
			p := 100 + float64((i+int64(j))%50)
			cs[j] = repo.Candle{Timestamp: float64(t0 + (i+int64(j)-avgCandles)*minute), Open: p, High: p + 1, Low: p - 1, Close: p + 0.5, Volume: 10}
		}
		if _, err := r.Candle.Put(ctx, ex, sym, "1m", cs); err != nil {
			return err
		}
		warm.add(int(k))
	}
	warm.done()
	fmt.Fprintf(o.out, "  warm-up: %d candles in %s\n", n+avgCandles, time.Since(start).Round(time.Millisecond))
	// The tier starts empty: a Conn of its own.
	tierConn, err := runtime.Open(o.cfg)
	if err != nil {
		return err
	}
	defer tierConn.Close(context.WithoutCancel(ctx))
	tr, err := repo.Open(tierConn)
	if err != nil {
		return err
	}
	back := bar("backtest", n)
	withTier, err := avgPrices(ctx, tr, ex, sym, t0, 0, n, func() { back.add(1) })
	back.done()
	if err != nil {
		return err
	}
	pc, plain, err := noTier(o.cfg)
	if err != nil {
		return err
	}
	defer pc.Close(context.WithoutCancel(ctx))
	sample := min(n, noTierSample)
	without, err := avgPrices(ctx, plain, ex, sym, t0, 0, sample, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "  series tier:  %s; the month in %s\n", withTier, withTier.took.Round(time.Millisecond))
	fmt.Fprintf(o.out, "  without it:   %s; the month in about %s (projected)\n", without, (without.took * time.Duration(n) / time.Duration(max(1, sample))).Round(time.Second))
	st := tierConn.Stats().Series
	fmt.Fprintf(o.out, "  tier: %d windows from memory, %d from the servers, %d blocks, %.1f MiB held\n", st.Hits, st.Misses, st.Blocks, float64(st.Bytes)/(1<<20))
	return nil
}

// progress is a bar on a terminal, nothing elsewhere.
type progress struct{ b *progressbar.ProgressBar }

func (p progress) add(n int) {
	if p.b != nil {
		_ = p.b.Add(n)
	}
}

func (p progress) done() {
	if p.b != nil {
		_ = p.b.Finish()
	}
}

func newBar(w io.Writer) func(what string, total int64) progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(string, int64) progress { return progress{} }
	}
	return func(what string, total int64) progress {
		return progress{progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
	}
}
