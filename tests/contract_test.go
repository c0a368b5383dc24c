package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

func candlesFrom(startMs int64, n int, interval time.Duration) []repo.Candle {
	out := make([]repo.Candle, n)
	for i := range out {
		ts := float64(startMs + int64(i)*interval.Milliseconds())
		out[i] = repo.Candle{Timestamp: ts, Open: float64(i), High: float64(i) + 1, Low: float64(i) - 1, Close: float64(i) + 0.5, Volume: 1}
	}
	return out
}

// Upstream keyed candles without the exchange: two exchanges' candles of one
// symbol overwrote each other.
func TestCandlesOfTwoExchangesNeverMix(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	start := int64(1_600_000_000_000)
	a := candlesFrom(start, 3, time.Minute)
	b := candlesFrom(start, 3, time.Minute)
	for i := range b {
		b[i].Close = 1000 + float64(i)
	}
	_, err := r.Candle.Put(ctx, "binance", "BTCUSDT", "1m", a)
	must(t, err)
	_, err = r.Candle.Put(ctx, "bybit", "BTCUSDT", "1m", b)
	must(t, err)
	for ex, want := range map[string][]repo.Candle{"binance": a, "bybit": b} {
		got, ok, err := r.Candle.Window(ctx, ex, "BTCUSDT", "1m", start, 3)
		must(t, err)
		if !ok || !cmp.Equal(want, got) {
			t.Fatalf("%s window: %s", ex, cmp.Diff(want, got))
		}
	}
	k, err := repo.CandleKey{ExchangeName: "bybit", Symbol: "BTCUSDT", Interval: "1m", Timestamp: float64(start)}.RedisKey()
	must(t, err)
	if k != "candle_cache:bybit:BTCUSDT:1m:1600000000000" {
		t.Fatalf("candle Redis key %q lacks the exchange", k)
	}
}

// Upstream stored a candle that was still forming and froze it forever.
func TestUnclosedCandleIsSkippedThenStoredOnceClosed(t *testing.T) {
	t.Parallel()
	clock := time.UnixMilli(1_600_000_100_000).UTC() // mid-candle of the minute starting at ..060_000
	env := testenv.New(t, func(c *runtime.Config) { c.Now = func() time.Time { return clock } })
	ctx := ctxT(t)
	must(t, repo.EnsureIndexes(ctx, env.Conn))
	r, err := repo.NewCandleRepo(env.Conn)
	must(t, err)
	closed := repo.Candle{Timestamp: 1_600_000_000_000, Close: 1}
	forming := repo.Candle{Timestamp: 1_600_000_060_000, Close: 2} // closes at ..120_000, after the clock
	n, err := r.Put(ctx, "ex", "SYM", "1m", []repo.Candle{closed, forming})
	must(t, err)
	if n != 1 {
		t.Fatalf("stored %d candles, want only the closed one", n)
	}
	_, ok, err := r.Get(ctx, repo.CandleKey{ExchangeName: "ex", Symbol: "SYM", Interval: "1m", Timestamp: forming.Timestamp})
	must(t, err)
	if ok {
		t.Fatal("a forming candle was stored")
	}
	// Later, the same candle with its final values is stored.
	later := env.Open(t, func(c *runtime.Config) { c.Now = func() time.Time { return clock.Add(time.Minute) } })
	r2, err := repo.NewCandleRepo(later)
	must(t, err)
	final := repo.Candle{Timestamp: forming.Timestamp, Close: 2.5}
	n, err = r2.Put(ctx, "ex", "SYM", "1m", []repo.Candle{final})
	must(t, err)
	got, ok, err := r2.Window(ctx, "ex", "SYM", "1m", 1_600_000_000_000, 2)
	must(t, err)
	if n != 1 || !ok || got[1].Close != 2.5 {
		t.Fatalf("after closing: stored %d, window %v %+v", n, ok, got)
	}
	if _, err := r.Put(ctx, "ex", "SYM", "7m", []repo.Candle{closed}); err == nil {
		t.Fatal("an unknown interval was accepted")
	}
}

// Upstream read a window with one sequential find (and one SET) per candle:
// 500 to 1000 round trips for 500 candles. Here a window of any length is
// one find, and a batch write of 500 is one insert and one pipeline. With
// the series tier (candles' cache mode), a window read from MongoDB brings
// the next 1,000 candles with it: the windows inside cost nothing.
func TestCandleWindowAndBatchWriteAreConstantRoundTrips(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	start := int64(1_500_000_000_000)
	all := candlesFrom(start, 2000, time.Minute)
	for b := 0; b < len(all); b += 500 {
		tctx, tr := runtime.WithTrace(ctx)
		n, err := r.Candle.Put(tctx, "ex", "SYM", "1m", all[b:b+500])
		must(t, err)
		if n != 500 || tr.Mongo() != 1 || tr.Redis() != 1 {
			t.Fatalf("batch write of 500: stored %d in %v; want 1 insert + 1 pipeline", n, tr.Commands())
		}
	}
	direct, err := repo.NewCandleRepo(env.Open(t, func(c *runtime.Config) { c.SeriesCacheBytes = -1 }))
	must(t, err)
	tiered, err := repo.NewCandleRepo(env.Open(t))
	must(t, err)
	for _, tc := range []struct {
		r        *repo.CandleRepo
		since    int64
		limit    int
		commands int64
	}{
		{direct, start, 100, 1}, {direct, start, 500, 1}, {direct, start, 1000, 1}, {direct, start, 1000, 1},
		{tiered, start, 100, 1},                                       // fetches 0..1099
		{tiered, start, 500, 0}, {tiered, start + 600*60_000, 500, 0}, // inside it
		{tiered, start + 1050*60_000, 100, 1}, // 1100..1149 missing: fetches 1100..2000
		{tiered, start + 1150*60_000, 850, 0},
	} {
		tctx, tr := runtime.WithTrace(ctx)
		got, ok, err := tc.r.Window(tctx, "ex", "SYM", "1m", tc.since, tc.limit)
		must(t, err)
		first := int((tc.since - start) / 60_000)
		if !ok || len(got) != tc.limit || got[0] != all[first] || got[tc.limit-1] != all[first+tc.limit-1] {
			t.Fatalf("window of %d from %d: ok=%v len=%d", tc.limit, first, ok, len(got))
		}
		if tr.Mongo() != tc.commands || tr.Redis() != 0 {
			t.Fatalf("window of %d from %d took %v; want %d finds", tc.limit, first, tr.Commands(), tc.commands)
		}
	}
}

func TestWindowWithAnyCandleMissingIsNothing(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	start := int64(1_500_000_000_000)
	all := candlesFrom(start, 10, time.Minute)
	_, err := r.Candle.Put(ctx, "ex", "SYM", "1m", append(all[:4:4], all[5:]...)) // the 5th is missing
	must(t, err)
	for _, tc := range []struct {
		since int64
		limit int
		ok    bool
	}{{start, 4, true}, {start, 5, false}, {start, 10, false}, {start + 5*60_000, 5, true}, {start + 5*60_000, 6, false}, {start + 30_000, 2, false}} {
		got, ok, err := r.Candle.Window(ctx, "ex", "SYM", "1m", tc.since, tc.limit)
		must(t, err)
		if ok != tc.ok || (ok && len(got) != tc.limit) || (!ok && got != nil) {
			t.Errorf("window(%d, %d) = %v, %d candles; want ok=%v", tc.since-start, tc.limit, ok, len(got), tc.ok)
		}
	}
}

// Upstream cut feeds at 200 rows (or an unsorted 1000, sorted by a field that
// does not exist). The engine keeps 50 storage rows, 500 notifications and
// 1000 log lines: reads return that many, newest first.
func TestFeedsReadNewestFirstUpToTheEnginesLimits(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	ids := func(n int, prefix string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%04d", prefix, i)
		}
		return out
	}
	newestFirst := func(all []string, limit int) []string {
		var out []string
		for i := len(all) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, all[i])
		}
		return out
	}

	storage := ids(60, "s")
	var rows []repo.StorageRow
	for _, id := range storage {
		rows = append(rows, repo.StorageRow{ID: id, Status: "opened"})
	}
	must(t, r.Storage.PutAll(ctx, true, rows[:30]))
	must(t, r.Storage.PutAll(ctx, true, rows)) // the engine rewrites its whole list
	gotS, err := r.Storage.GetAll(ctx, true)
	must(t, err)
	var gotIDs []string
	for _, s := range gotS {
		gotIDs = append(gotIDs, s.ID)
	}
	if diff := cmp.Diff(newestFirst(storage, 50), gotIDs); diff != "" {
		t.Fatalf("storage (-want +got):\n%s", diff)
	}

	notes := ids(520, "n")
	var ns []repo.Notification
	for _, id := range notes {
		ns = append(ns, repo.Notification{ID: id, Type: "x"})
	}
	must(t, r.Notification.PutAll(ctx, false, ns))
	gotN, err := r.Notification.GetAll(ctx, false)
	must(t, err)
	gotIDs = gotIDs[:0]
	for _, n := range gotN {
		gotIDs = append(gotIDs, n.ID)
	}
	if diff := cmp.Diff(newestFirst(notes, 500), gotIDs); diff != "" {
		t.Fatalf("notifications (-want +got):\n%s", diff)
	}

	lines := ids(1100, "l")
	var ls []repo.LogEntry
	for _, id := range lines {
		ls = append(ls, repo.LogEntry{ID: id, Type: "info"})
	}
	n, err := r.Log.Append(ctx, ls[:600])
	must(t, err)
	n2, err := r.Log.Append(ctx, ls)
	must(t, err)
	if n != 600 || n2 != 500 {
		t.Fatalf("appended %d then %d", n, n2)
	}
	tctx, tr := runtime.WithTrace(ctx)
	gotL, err := r.Log.GetAll(tctx)
	must(t, err)
	gotIDs = gotIDs[:0]
	for _, l := range gotL {
		gotIDs = append(gotIDs, l.ID)
	}
	if diff := cmp.Diff(newestFirst(lines, 1000), gotIDs); diff != "" {
		t.Fatalf("log (-want +got):\n%s", diff)
	}
	if tr.Total() != 1 {
		t.Fatalf("reading 1000 log lines took %v; want one find", tr.Commands())
	}
}

// Upstream overwrote a log entry written again with the same id.
func TestLogEntryIsNeverOverwritten(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	_, err := r.Log.Append(ctx, []repo.LogEntry{{ID: "e1", Topic: "first"}})
	must(t, err)
	n, err := r.Log.Append(ctx, []repo.LogEntry{{ID: "e1", Topic: "second"}, {ID: "e2", Topic: "other"}})
	must(t, err)
	got, err := r.Log.GetAll(ctx)
	must(t, err)
	if n != 1 || len(got) != 2 || got[1].Topic != "first" {
		t.Fatalf("appended %d, log = %+v", n, got)
	}
}

func TestBucketRemovalHidesButHasSeesAndAbsentRemovalCreatesNothing(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.MemoryKey{SignalID: "s", BucketName: "b", MemoryID: "m"}
	removed, err := r.Memory.Remove(ctx, k)
	must(t, err)
	has, err := r.Memory.Has(ctx, k)
	must(t, err)
	if removed || has {
		t.Fatalf("removing an absent key: removed=%v, has=%v afterwards", removed, has)
	}
	for _, b := range []struct {
		name  string
		put   func() error
		del   func() (bool, error)
		get   func() (bool, error)
		count func() int
	}{
		{"measure", func() error {
			return r.Measure.Put(ctx, repo.MeasureKey{Bucket: "b", EntryKey: "k"}, repo.MeasureEntry{ID: "k"})
		},
			func() (bool, error) { return r.Measure.Remove(ctx, repo.MeasureKey{Bucket: "b", EntryKey: "k"}) },
			func() (bool, error) {
				_, ok, err := r.Measure.Get(ctx, repo.MeasureKey{Bucket: "b", EntryKey: "k"})
				return ok, err
			},
			func() int { rows, _ := runtime.Collect(r.Measure.List(ctx, "b")); return len(rows) }},
		{"interval", func() error {
			return r.Interval.Put(ctx, repo.IntervalKey{Bucket: "b", EntryKey: "k"}, repo.IntervalEntry{ID: "k"}, ms(5))
		},
			func() (bool, error) { return r.Interval.Remove(ctx, repo.IntervalKey{Bucket: "b", EntryKey: "k"}) },
			func() (bool, error) {
				_, ok, err := r.Interval.Get(ctx, repo.IntervalKey{Bucket: "b", EntryKey: "k"})
				return ok, err
			},
			func() int { rows, _ := runtime.Collect(r.Interval.List(ctx, "b")); return len(rows) }},
		{"memory", func() error { return r.Memory.Put(ctx, k, repo.MemoryEntry{Index: "i"}, ms(5)) },
			func() (bool, error) { return r.Memory.Remove(ctx, k) },
			func() (bool, error) { _, ok, err := r.Memory.Get(ctx, k); return ok, err },
			func() int { rows, _ := runtime.Collect(r.Memory.List(ctx, "s", "b")); return len(rows) }},
	} {
		must(t, b.put())
		if b.count() != 1 {
			t.Fatalf("%s: list before removal = %d", b.name, b.count())
		}
		removed, err := b.del()
		must(t, err)
		visible, err := b.get()
		must(t, err)
		if !removed || visible || b.count() != 0 {
			t.Fatalf("%s: removed=%v visible=%v listed=%d", b.name, removed, visible, b.count())
		}
	}
	has, err = r.Memory.Has(ctx, k)
	must(t, err)
	if !has {
		t.Fatal("memory Has does not see a removed entry")
	}
}

func TestLastWriterWinsAndAsOfThroughGeneratedRepos(t *testing.T) {
	_, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.StateKey{SignalID: "s", BucketName: "b"}
	must(t, r.State.Put(ctx, k, &repo.StateEntry{ID: "later", When: 2000}, ms(2000)))
	must(t, r.State.Put(ctx, k, &repo.StateEntry{ID: "restart", When: 1000}, ms(1000))) // a restarted backtest
	got, ok, err := r.State.Get(ctx, k)
	must(t, err)
	if !ok || got.ID != "restart" {
		t.Fatalf("last writer did not win: %+v", got)
	}
	for _, tc := range []struct {
		at int64
		ok bool
	}{{999, false}, {1000, true}, {5000, true}} {
		got, ok, err := r.State.GetAsOf(ctx, k, ms(tc.at))
		must(t, err)
		if ok != tc.ok || (ok && got.ID != "restart") {
			t.Errorf("as of %d: %v %+v", tc.at, ok, got)
		}
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
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

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
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
