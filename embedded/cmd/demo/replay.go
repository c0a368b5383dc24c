package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

const (
	strategy = "sma-cross"
	frame    = "demo-frame"
	riskName = "demo-risk"
	minute   = int64(60_000)
	window   = 60 // candles per decision
)

// checker counts checks and keeps the failures.
type checker struct {
	passed   int
	failures []string
}

func (c *checker) that(ok bool, format string, args ...any) {
	if ok {
		c.passed++
		return
	}
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// equal checks that a read returned what was written.
func equal[T any](c *checker, what string, want, got T, ok bool, err error) {
	c.that(err == nil && ok && cmp.Equal(want, got), "read-after-write of %s: ok=%v err=%v %s", what, ok, err, cmp.Diff(want, got))
}

// notBefore checks the look-ahead rule on a row just written at now: an as-of
// read one millisecond earlier must not see it, one at now must.
func notBefore[K, P any](c *checker, what string, asOf func(context.Context, K, time.Time) (P, bool, error), ctx context.Context, k K, now time.Time) {
	_, early, err := asOf(ctx, k, now.Add(-time.Millisecond))
	c.that(err == nil && !early, "look-ahead: %s written at %v is visible before it (err %v)", what, now, err)
	_, seen, err := asOf(ctx, k, now)
	c.that(err == nil && seen, "as-of read of %s at its own time: ok=%v err=%v", what, seen, err)
}

// session is one symbol's strategy as it runs.
type session struct {
	symbol   string
	backtest bool
	frame    string
	open     *repo.SignalRow
	trades   int
}

type sim struct {
	ex       string // this run's exchange name: runs never share keys
	r        *repo.Repos
	c        *checker
	risk     []repo.RiskEntry
	storage  map[bool][]repo.StorageRow
	notified map[bool]int
	logged   int
}

func replay(ctx context.Context, conn *runtime.Conn, o options) error {
	start := time.Now()
	if err := repo.EnsureIndexes(ctx, conn); err != nil {
		return err
	}
	r, err := repo.Open(conn)
	if err != nil {
		return err
	}
	s := &sim{ex: fmt.Sprintf("demo-%x", time.Now().UnixNano()), r: r, c: &checker{}, storage: map[bool][]repo.StorageRow{}, notified: map[bool]int{}}

	n := int64(o.days) * 1440
	// Day-aligned and in the past, so every candle is closed.
	t0 := time.Now().Add(-time.Duration(n+1440) * time.Minute).Truncate(24 * time.Hour).UnixMilli()
	end := t0 + n*minute
	rng := rand.New(rand.NewPCG(7, 11))
	for i, sym := range o.symbols {
		if err := s.writeCandles(ctx, o, sym, 100*float64(i+1), t0, n, rng); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.out, "backtest on exchange %q: %d symbols, decisions every %s\n", s.ex, len(o.symbols), o.every)
	sessions := make([]*session, len(o.symbols))
	for i, sym := range o.symbols {
		sessions[i] = &session{symbol: sym, backtest: true, frame: frame}
	}
	step := o.every.Milliseconds()
	for now := t0 + window*minute; now <= end; now += step {
		for _, ss := range sessions {
			if err := s.decide(ctx, ss, now); err != nil {
				return err
			}
		}
		if (now-t0)%(24*60*minute) < step {
			fmt.Fprintf(o.out, "  simulated %s: %d trades, %d checks passed\n", time.UnixMilli(now).UTC().Format("2006-01-02 15:04"), trades(sessions), s.c.passed)
		}
	}
	// A live session: no frame, live keys, over the last six hours.
	live := &session{symbol: o.symbols[0], backtest: false, frame: ""}
	for now := end - 6*60*minute; now <= end; now += 60 * minute {
		if err := s.decide(ctx, live, now); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.out, "live: %s, 7 decisions on the last six hours\n", live.symbol)
	s.checkFeeds(ctx)
	if err := s.knownAt(ctx, o, live); err != nil {
		return err
	}

	fmt.Fprintf(o.out, "\n%d candles per symbol, %d trades, %d checks passed, %d failed, in %s\n\n",
		n, trades(sessions)+live.trades, s.c.passed, len(s.c.failures), time.Since(start).Round(time.Millisecond))
	errs := printStats(o, conn.Stats())
	if err := printMinutes(ctx, o, r, s.ex, o.symbols[0], t0, n); err != nil {
		return err
	}
	if len(s.c.failures) > 0 || errs > 0 {
		for i, f := range s.c.failures {
			if i == 10 {
				fmt.Fprintf(o.out, "... and %d more\n", len(s.c.failures)-10)
				break
			}
			fmt.Fprintln(o.out, "FAILED:", f)
		}
		return fmt.Errorf("%d checks failed, %d operations returned errors", len(s.c.failures), errs)
	}
	return nil
}

func trades(ss []*session) int {
	n := 0
	for _, s := range ss {
		n += s.trades
	}
	return n
}

func (s *sim) writeCandles(ctx context.Context, o options, sym string, price float64, t0, n int64, rng *rand.Rand) error {
	candles := make([]repo.Candle, n)
	for i := range candles {
		next := price * (1 + (rng.Float64()-0.5)*0.004)
		candles[i] = repo.Candle{Timestamp: float64(t0 + int64(i)*minute), Open: price, High: max(price, next) * 1.0005,
			Low: min(price, next) * 0.9995, Close: next, Volume: 1 + rng.Float64()*10}
		price = next
	}
	stored := 0
	for b := 0; b < len(candles); b += 500 {
		k, err := s.r.Candle.Put(ctx, s.ex, sym, "1m", candles[b:min(b+500, len(candles))])
		if err != nil {
			return err
		}
		stored += k
	}
	again, err := s.r.Candle.Put(ctx, s.ex, sym, "1m", candles[:500])
	if err != nil {
		return err
	}
	s.c.that(stored == len(candles) && again == 0, "%s: stored %d of %d candles, rewrite stored %d (candles are immutable)", sym, stored, len(candles), again)
	fmt.Fprintf(o.out, "%s: wrote %d candles in batches of 500\n", sym, stored)
	return nil
}

func mode(backtest bool) string {
	if backtest {
		return "backtest"
	}
	return "live"
}

// decide runs one strategy step of one symbol at the simulated time now.
func (s *sim) decide(ctx context.Context, ss *session, nowMs int64) error {
	c, r := s.c, s.r
	now := time.UnixMilli(nowMs).UTC()
	candles, ok, err := r.Candle.Window(ctx, s.ex, ss.symbol, "1m", nowMs-window*minute, window)
	if err != nil {
		return err
	}
	c.that(ok && len(candles) == window, "%s at %v: window of %d candles, ok=%v", ss.symbol, now, len(candles), ok)
	if !ok {
		return nil
	}
	c.that(candles[window-1].Timestamp < float64(nowMs), "look-ahead: candle %v read at %v", candles[window-1].Timestamp, now)
	slow, fast := 0.0, 0.0
	for i, k := range candles {
		slow += k.Close
		if i >= window-15 {
			fast += k.Close
		}
	}
	slow, fast = slow/window, fast/15
	price := candles[window-1].Close

	// measure: a function-result cache, keyed per bucket and entry.
	mk := repo.MeasureKey{Bucket: "sma-" + mode(ss.backtest), EntryKey: fmt.Sprintf("%s:%d", ss.symbol, nowMs)}
	_, cached, err := r.Measure.Get(ctx, mk)
	c.that(err == nil && !cached, "measure %v cached before it was computed", mk)
	me := repo.MeasureEntry{ID: mk.EntryKey, Data: slow}
	if err := r.Measure.Put(ctx, mk, me); err != nil {
		return err
	}
	got, ok, err := r.Measure.Get(ctx, mk)
	equal(c, "measure", me, got, ok, err)
	if removed, err := r.Measure.Remove(ctx, mk); err != nil || !removed {
		return fmt.Errorf("measure remove: %v %v", removed, err)
	}
	_, visible, err := r.Measure.Get(ctx, mk)
	has, herr := r.Measure.Has(ctx, mk)
	c.that(err == nil && herr == nil && !visible && has, "removed measure: visible=%v has=%v", visible, has)

	// interval: the same, stamped with the simulated time.
	ik := repo.IntervalKey{Bucket: "volatility-1h", EntryKey: ss.symbol + "-" + mode(ss.backtest)}
	ie := repo.IntervalEntry{ID: ik.EntryKey, Data: math.Abs(fast-slow) / slow, When: now}
	if err := r.Interval.Put(ctx, ik, ie, now); err != nil {
		return err
	}
	gi, ok, err := r.Interval.Get(ctx, ik)
	equal(c, "interval", ie, gi, ok, err)
	notBefore(c, "interval", r.Interval.GetAsOf, ctx, ik, now)

	sk := repo.SignalKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex}
	switch {
	case ss.open == nil && fast > slow*1.0003:
		if err := s.open(ctx, ss, now, price); err != nil {
			return err
		}
	case ss.open != nil && fast < slow:
		if err := s.close(ctx, ss, now, price); err != nil {
			return err
		}
	case ss.open == nil:
		// Waiting for a cross: keep a scheduled entry at the current price.
		row := s.signal(ss, now, price, fmt.Sprintf("%s-%s-sched-%d", s.ex, ss.symbol, nowMs))
		row.IsScheduled = true
		if err := r.Schedule.Put(ctx, repo.ScheduleKey(sk), row); err != nil {
			return err
		}
		got, ok, err := r.Schedule.Get(ctx, repo.ScheduleKey(sk))
		equal(c, "schedule", row, got, ok, err)
	}

	// Every step: memory, state, session, recent, and a log line.
	signalID := "none"
	if ss.open != nil {
		signalID = ss.open.ID
	}
	memk := repo.MemoryKey{SignalID: signalID, BucketName: "decisions-" + mode(ss.backtest), MemoryID: fmt.Sprint(nowMs)}
	mem := repo.MemoryEntry{Priority: float64(nowMs), Data: fmt.Sprintf("fast=%.4f slow=%.4f", fast, slow), Index: ss.symbol, When: float64(nowMs)}
	if err := r.Memory.Put(ctx, memk, mem, now); err != nil {
		return err
	}
	gm, ok, err := r.Memory.Get(ctx, memk)
	equal(c, "memory", mem, gm, ok, err)
	notBefore(c, "memory", r.Memory.GetAsOf, ctx, memk, now)

	stk := repo.StateKey{SignalID: signalID, BucketName: "sma-" + ss.symbol}
	st := &repo.StateEntry{ID: stk.SignalID + "_" + stk.BucketName, Data: fast - slow, When: float64(nowMs)}
	if err := r.State.Put(ctx, stk, st, now); err != nil {
		return err
	}
	gs, ok, err := r.State.Get(ctx, stk)
	equal(c, "state", st, gs, ok, err)
	notBefore(c, "state", r.State.GetAsOf, ctx, stk, now)

	sek := repo.SessionKey{StrategyName: strategy, ExchangeName: s.ex, FrameName: ss.frame, Symbol: ss.symbol, Backtest: ss.backtest}
	se := &repo.SessionEntry{ID: fmt.Sprintf("%s-%s", ss.symbol, mode(ss.backtest)), Data: price, When: float64(nowMs)}
	if err := r.Session.Put(ctx, sek, se, now); err != nil {
		return err
	}
	gse, ok, err := r.Session.Get(ctx, sek)
	equal(c, "session", se, gse, ok, err)
	notBefore(c, "session", r.Session.GetAsOf, ctx, sek, now)

	n, err := r.Log.Append(ctx, []repo.LogEntry{{ID: fmt.Sprintf("%s-%s-%s-%d", s.ex, ss.symbol, mode(ss.backtest), nowMs), Type: "info", Priority: 1,
		CreatedAt: now.Format(time.RFC3339Nano), Timestamp: float64(nowMs), Topic: "decision", Args: []any{ss.symbol, fast, slow}}})
	if err != nil {
		return err
	}
	s.logged += n
	c.that(n == 1, "log line not appended")
	return nil
}

func (s *sim) signal(ss *session, now time.Time, price float64, id string) *repo.SignalRow {
	return &repo.SignalRow{ID: id, Position: "long", PriceOpen: price, PriceTakeProfit: price * 1.01, PriceStopLoss: price * 0.99,
		MinuteEstimatedTime: 240, Cost: 100, ExchangeName: s.ex, StrategyName: strategy, FrameName: ss.frame,
		ScheduledAt: float64(now.UnixMilli()), PendingAt: float64(now.UnixMilli()), Symbol: ss.symbol, Timestamp: float64(now.UnixMilli())}
}

func (s *sim) open(ctx context.Context, ss *session, now time.Time, price float64) error {
	c, r := s.c, s.r
	ms := now.UnixMilli()
	row := s.signal(ss, now, price, fmt.Sprintf("%s-%s-%s-%d", s.ex, ss.symbol, mode(ss.backtest), ms))
	sk := repo.SignalKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex}
	if err := r.Signal.Put(ctx, sk, row); err != nil {
		return err
	}
	got, ok, err := r.Signal.Get(ctx, sk)
	equal(c, "signal", row, got, ok, err)
	if err := r.Schedule.Put(ctx, repo.ScheduleKey(sk), nil); err != nil { // the scheduled entry, if any, is consumed
		return err
	}
	ss.open, ss.trades = row, ss.trades+1

	s.risk = append(s.risk, repo.RiskEntry{Key: strategy + "_" + s.ex + "_" + ss.symbol, Position: repo.RiskPosition{
		StrategyName: strategy, ExchangeName: s.ex, FrameName: ss.frame, Symbol: ss.symbol, Position: "long",
		PriceOpen: price, PriceStopLoss: row.PriceStopLoss, PriceTakeProfit: row.PriceTakeProfit, MinuteEstimatedTime: 240, OpenTimestamp: float64(ms)}})
	if err := s.putRisk(ctx, now); err != nil {
		return err
	}
	pk := repo.PartialKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex, SignalID: row.ID}
	partial := map[string]repo.PartialState{row.ID: {ProfitLevels: []float64{}, LossLevels: []float64{}}}
	if err := r.Partial.Put(ctx, pk, partial, now); err != nil {
		return err
	}
	gp, ok, err := r.Partial.Get(ctx, pk)
	equal(c, "partial", partial, gp, ok, err)
	notBefore(c, "partial", r.Partial.GetAsOf, ctx, pk, now)
	bk := repo.BreakevenKey(pk)
	be := map[string]repo.BreakevenState{row.ID: {Reached: false}}
	if err := r.Breakeven.Put(ctx, bk, be, now); err != nil {
		return err
	}
	gb, ok, err := r.Breakeven.Get(ctx, bk)
	equal(c, "breakeven", be, gb, ok, err)

	if err := r.Strategy.Put(ctx, repo.StrategyKey(sk), &repo.StrategyState{PendingSignalID: &row.ID, CommitQueue: []any{}}); err != nil {
		return err
	}
	rk := repo.RecentKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex, FrameName: ss.frame, Backtest: ss.backtest}
	recent := &repo.RecentSignal{ID: row.ID, Position: row.Position, PriceOpen: price, Symbol: ss.symbol, OriginalPriceOpen: price,
		OriginalPriceStopLoss: row.PriceStopLoss, OriginalPriceTakeProfit: row.PriceTakeProfit, TotalEntries: 1}
	if err := r.Recent.Put(ctx, rk, recent, now); err != nil {
		return err
	}
	gr, ok, err := r.Recent.Get(ctx, rk)
	equal(c, "recent", recent, gr, ok, err)
	notBefore(c, "recent", r.Recent.GetAsOf, ctx, rk, now)
	return s.feeds(ctx, ss, row, "opened", now)
}

func (s *sim) close(ctx context.Context, ss *session, now time.Time, price float64) error {
	c, r := s.c, s.r
	row := ss.open
	sk := repo.SignalKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex}
	if err := r.Signal.Put(ctx, sk, nil); err != nil { // no pending signal: the row stays, payload null
		return err
	}
	got, ok, err := r.Signal.Get(ctx, sk)
	c.that(err == nil && ok && got == nil, "closed signal: ok=%v payload=%+v err=%v", ok, got, err)
	ss.open = nil

	s.risk = slices.DeleteFunc(s.risk, func(e repo.RiskEntry) bool { return e.Position.Symbol == ss.symbol && e.Position.FrameName == ss.frame })
	if err := s.putRisk(ctx, now); err != nil {
		return err
	}
	pnl := (price - row.PriceOpen) / row.PriceOpen * 100
	pk := repo.PartialKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex, SignalID: row.ID}
	levels := repo.PartialState{ProfitLevels: []float64{}, LossLevels: []float64{}}
	if pnl > 0 {
		levels.ProfitLevels = []float64{10}
	} else {
		levels.LossLevels = []float64{10}
	}
	if err := r.Partial.Put(ctx, pk, map[string]repo.PartialState{row.ID: levels}, now); err != nil {
		return err
	}
	be := map[string]repo.BreakevenState{row.ID: {Reached: pnl > 0}}
	if err := r.Breakeven.Put(ctx, repo.BreakevenKey(pk), be, now); err != nil {
		return err
	}
	gb, ok, err := r.Breakeven.Get(ctx, repo.BreakevenKey(pk))
	equal(c, "breakeven", be, gb, ok, err)
	if err := r.Strategy.Put(ctx, repo.StrategyKey(sk), &repo.StrategyState{LastPendingID: &row.ID, CommitQueue: []any{}}); err != nil {
		return err
	}
	gst, ok, err := r.Strategy.Get(ctx, repo.StrategyKey(sk))
	c.that(err == nil && ok && gst != nil && gst.PendingSignalID == nil && *gst.LastPendingID == row.ID, "strategy state after close: %+v %v", gst, err)
	return s.feeds(ctx, ss, row, "closed", now)
}

func (s *sim) putRisk(ctx context.Context, now time.Time) error {
	rk := repo.RiskKey{RiskName: riskName, ExchangeName: s.ex}
	v := slices.Clone(s.risk)
	if err := s.r.Risk.Put(ctx, rk, v, now); err != nil {
		return err
	}
	got, ok, err := s.r.Risk.Get(ctx, rk)
	equal(s.c, "risk", v, got, ok, err)
	notBefore(s.c, "risk", s.r.Risk.GetAsOf, ctx, rk, now)
	return nil
}

// feeds writes the storage row and a notification of a signal event.
func (s *sim) feeds(ctx context.Context, ss *session, row *repo.SignalRow, status string, now time.Time) error {
	c, r := s.c, s.r
	ms := float64(now.UnixMilli())
	rows := s.storage[ss.backtest]
	i := slices.IndexFunc(rows, func(x repo.StorageRow) bool { return x.ID == row.ID })
	sr := repo.StorageRow{ID: row.ID, Position: row.Position, PriceOpen: row.PriceOpen, Symbol: row.Symbol, StrategyName: strategy,
		ExchangeName: s.ex, FrameName: ss.frame, CreatedAt: ms, UpdatedAt: ms, Status: status}
	if i >= 0 {
		sr.CreatedAt = rows[i].CreatedAt
		rows[i] = sr
	} else {
		rows = append(rows, sr)
	}
	s.storage[ss.backtest] = rows
	if err := r.Storage.PutAll(ctx, ss.backtest, rows); err != nil {
		return err
	}
	stored, err := r.Storage.GetAll(ctx, ss.backtest)
	// The feed is shared by every run on this database: this run's rows are
	// there, and a read returns at least as many as the engine keeps.
	c.that(err == nil && len(stored) >= min(len(rows), r.Storage.ReadLimit()), "storage holds %d rows, want at least %d (%v)", len(stored), len(rows), err)
	c.that(err == nil && slices.ContainsFunc(stored, func(x repo.StorageRow) bool { return x.ID == row.ID && x.Status == status }), "storage row %s not %s", row.ID, status)

	s.notified[ss.backtest]++
	note := repo.Notification{ID: fmt.Sprintf("%s-%s", row.ID, status), Type: "signal." + status, Timestamp: ms, Backtest: ss.backtest, CreatedAt: ms,
		Extra: map[string]any{"symbol": row.Symbol, "priceOpen": row.PriceOpen}}
	return r.Notification.PutAll(ctx, ss.backtest, []repo.Notification{note})
}

// checkFeeds reads the feeds back whole: newest first, nothing lost.
func (s *sim) checkFeeds(ctx context.Context) {
	c, r := s.c, s.r
	for _, bt := range []bool{true, false} {
		notes, err := r.Notification.GetAll(ctx, bt)
		c.that(err == nil && len(notes) >= min(s.notified[bt], r.Notification.ReadLimit()), "%s notifications: %d read, %d written (%v)", mode(bt), len(notes), s.notified[bt], err)
		ours := slices.DeleteFunc(notes, func(n repo.Notification) bool { return !strings.HasPrefix(n.ID, s.ex+"-") })
		c.that(slices.IsSortedFunc(ours, func(a, b repo.Notification) int { return -cmpFloat(a.CreatedAt, b.CreatedAt) }), "%s notifications are not newest first", mode(bt))
	}
	logs, err := r.Log.GetAll(ctx)
	c.that(err == nil && len(logs) >= min(s.logged, r.Log.ReadLimit()), "log: %d lines read, %d written (%v)", len(logs), s.logged, err)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// printStats prints one row per domain and returns the number of errors.
func printStats(o options, st runtime.Stats) int64 {
	type agg struct {
		runtime.OpStats
		ops []string
	}
	byDomain := map[string]*agg{}
	var order []string
	for _, name := range st.Names() {
		s := st.Ops[name]
		if s.Calls == 0 {
			continue
		}
		domain, op, _ := strings.Cut(name, ".")
		a := byDomain[domain]
		if a == nil {
			a = &agg{}
			byDomain[domain] = a
			order = append(order, domain)
		}
		a.OpStats = a.OpStats.Add(s)
		a.ops = append(a.ops, fmt.Sprintf("%s %d", op, s.Calls))
	}
	slices.SortFunc(order, func(a, b string) int { return indexOfDomain(a) - indexOfDomain(b) })
	fmt.Fprintf(o.out, "%-13s %8s %8s %8s %8s %6s  %s\n", "domain", "ops", "rt/op", "mongo/op", "hits", "errors", "operations")
	var total runtime.OpStats
	for _, d := range order {
		a := byDomain[d]
		total = total.Add(a.OpStats)
		fmt.Fprintf(o.out, "%-13s %8d %8.2f %8.2f %8s %6d  %s\n", d, a.Calls, rt(a.OpStats), float64(a.Mongo)/float64(a.Calls), hitRate(a.OpStats), a.Errors, strings.Join(a.ops, ", "))
	}
	fmt.Fprintf(o.out, "%-13s %8d %8.2f %8.2f %8s %6d\n", "total", total.Calls, rt(total), float64(total.Mongo)/float64(total.Calls), hitRate(total), total.Errors)
	if st.RedisFailures > 0 {
		fmt.Fprintf(o.out, "Redis failures absorbed: %d\n", st.RedisFailures)
	}
	return total.Errors
}

func indexOfDomain(d string) int {
	for i, s := range repo.Schemas() {
		if s.Domain == d {
			return i
		}
	}
	return len(repo.Schemas())
}

func rt(s runtime.OpStats) float64 { return float64(s.Mongo+s.Redis) / float64(s.Calls) }

func hitRate(s runtime.OpStats) string {
	if s.CacheHits+s.CacheMisses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(s.CacheHits)/float64(s.CacheHits+s.CacheMisses))
}

// knownAt shows the strategy domain's history (history: {keep: forever} in
// the manifest): what the engine knew at an earlier moment of the run,
// read back with GetAt, next to the row as it is now. The moment is the
// last version that differs from the current row and was recorded before
// the version after it (versions written in one millisecond share a
// recorded time, and a reader at that time saw the last of them).
func (s *sim) knownAt(ctx context.Context, o options, ss *session) error {
	k := repo.StrategyKey{Symbol: ss.symbol, StrategyName: strategy, ExchangeName: s.ex}
	now, ok, err := s.r.Strategy.Get(ctx, k)
	if err != nil || !ok {
		s.c.that(false, "strategy state of %s: ok=%v err=%v", ss.symbol, ok, err)
		return nil
	}
	versions, err := runtime.Collect(s.r.Strategy.History(ctx, k, runtime.HistoryOptions{}))
	if err != nil {
		return err
	}
	s.c.that(len(versions) > 0 && cmp.Equal(versions[0].Payload, now), "the newest version of the strategy state is the row")
	for i := 1; i < len(versions); i++ { // newest first: versions[i-1] came after versions[i]
		v, next := versions[i], versions[i-1]
		if cmp.Equal(v.Payload, now) || !v.Recorded.Before(next.Recorded) {
			continue
		}
		then, ok, err := s.r.Strategy.GetAt(ctx, k, v.Recorded)
		if err != nil {
			return err
		}
		s.c.that(ok && cmp.Equal(then, v.Payload) && !cmp.Equal(then, now), "known-at read of version %d: %+v, the version holds %+v", v.Number, then, v.Payload)
		fmt.Fprintf(o.out, "known at %s (version %d of %d): %s; now: %s\n",
			v.Recorded.Format("15:04:05.000"), v.Number, versions[0].Number, describeStrategy(then), describeStrategy(now))
		return nil
	}
	s.c.that(false, "no earlier version of the strategy state differs from the row (%d versions)", len(versions))
	return nil
}

func describeStrategy(st *repo.StrategyState) string {
	switch {
	case st == nil:
		return "no state"
	case st.PendingSignalID != nil:
		return "signal " + *st.PendingSignalID + " pending"
	case st.LastPendingID != nil:
		return "nothing pending, last " + *st.LastPendingID
	}
	return "nothing pending"
}
