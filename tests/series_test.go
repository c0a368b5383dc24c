package tests

// The series cache mode (issue 20): windows of an insert-only series served
// from each process's memory. Its promises: a window never returns an
// element at or after its end, never misses an element stored before the
// window began (absence is never kept), never returns a value MongoDB does
// not hold, and a window the tier holds costs no round trip.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"pgregory.net/rapid"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// seriesT0 is position 0 of the tests' grids (a whole minute, in 2020).
const seriesT0 = int64(1_600_000_020_000) - 1_600_000_020_000%60_000

func seriesSchema() *runtime.Schema {
	s := candleSchema()
	s.Cache = runtime.CacheSeries
	s.Key[len(s.Key)-1].Type = runtime.TypeFloat64 // the axis
	return s
}

// seriesCandle is the element at grid position p of a test series: its
// values say where it is, so that an element handed out for another
// position shows.
func seriesCandle(p int64, ts float64) candle {
	return candle{Timestamp: ts, Open: float64(p), Close: float64(p) + 0.5, Volume: 1}
}

// storedWindow is MongoDB's own answer, read with the driver: the elements
// at since + i*step, i < limit, and whether all of them are there.
func storedWindow(ctx context.Context, t testing.TB, db *runtime.Conn, sym string, since, step int64, limit int) ([]candle, bool) {
	t.Helper()
	cur, err := db.Database().Collection("candle-items").Find(ctx, bson.D{
		{Key: "exchangeName", Value: "ex"}, {Key: "symbol", Value: sym}, {Key: "interval", Value: "1m"},
		{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: float64(since)}, {Key: "$lt", Value: float64(since + int64(limit)*step)}}},
	})
	must(t, err)
	var docs []candle
	must(t, cur.All(ctx, &docs))
	out := make([]candle, limit)
	n := 0
	for _, d := range docs {
		off := int64(d.Timestamp) - since
		if off%step == 0 {
			out[off/step] = d
			n++
		}
	}
	return out, n == limit
}

// TestSeriesWindowsAgreeWithMongoDB drives random windows, read-aheads and
// tier sizes on reader Conns, and random inserts (on and off the grid) by a
// writer Conn, and checks every window against MongoDB's own answer read
// right after it: same elements, none at or after the window's end, and a
// window the tier answered (no MongoDB command) only where it had read the
// window before and evicted nothing since.
func TestSeriesWindowsAgreeWithMongoDB(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := t.Context() // no deadline: a slow machine takes longer, and go test -timeout guards against a hang
	must(t, env.Conn.EnsureIndexes(ctx, seriesSchema()))
	writer := newRepo[candleKey, candle](t, env.Open(t), seriesSchema())
	// Readers: read-aheads of none, a few and many elements; a tier of the
	// default size, and one that holds about two blocks (so it evicts).
	type reader struct {
		conn *runtime.Conn
		repo *runtime.Repo[candleKey, candle]
		name string
	}
	var readers []reader
	for _, ra := range []int{-1, 3, 700} {
		for _, bytes := range []int64{0, 110_000} {
			c := env.Open(t, func(c *runtime.Config) { c.SeriesReadAhead, c.SeriesCacheBytes = ra, bytes })
			readers = append(readers, reader{c, newRepo[candleKey, candle](t, c, seriesSchema()), fmt.Sprintf("read-ahead %d, %d bytes", ra, bytes)})
		}
	}
	const span = 2600 // positions -1100 .. 1500: four blocks and more
	// PERSIST_TEST_MODEL_CHECKS bounds the sequences, as for the model
	// tests (the test script lowers it on the embedded SQLite server, which
	// scans whole collections: a hundred sequences took over 19 minutes
	// there): past it, a sequence does nothing.
	limit, round := 100, 0
	if n, err := strconv.Atoi(os.Getenv("PERSIST_TEST_MODEL_CHECKS")); err == nil && n > 0 {
		limit = n
	}
	rapid.Check(t, func(rt *rapid.T) {
		if round++; round > limit {
			return
		}
		sym := "S" + testenv.ID() // a series of its own per sequence
		stored := map[int64]bool{}
		type seen struct {
			since int64
			limit int
			evict int64
		}
		last := map[int]seen{} // each reader's last complete window
		rt.Repeat(map[string]func(*rapid.T){
			"insert": func(rt *rapid.T) {
				from := rapid.Int64Range(-1100, 1500).Draw(rt, "from")
				n := rapid.Int64Range(1, 80).Draw(rt, "n")
				every := rapid.Int64Range(1, 4).Draw(rt, "every")
				offGrid := rapid.Bool().Draw(rt, "offGrid")
				var items []runtime.Item[candleKey, candle]
				for p := from; p < from+n && p < span-1100; p += every {
					ts := float64(seriesT0 + p*60_000)
					if offGrid {
						ts += 30_000 // between two grid points: no part of a window
					}
					items = append(items, runtime.Item[candleKey, candle]{Key: candleKey{"ex", sym, "1m", ts}, Payload: seriesCandle(p, ts)})
				}
				if _, err := writer.InsertMany(ctx, items); err != nil {
					rt.Fatalf("InsertMany: %v", err)
				}
				if !offGrid {
					for _, it := range items {
						stored[(int64(it.Key.Timestamp)-seriesT0)/60_000] = true
					}
				}
			},
			"window": func(rt *rapid.T) {
				i := rapid.IntRange(0, len(readers)-1).Draw(rt, "reader")
				rd := readers[i]
				since := seriesT0 + rapid.Int64Range(-1110, 1510).Draw(rt, "since")*60_000
				limit := rapid.IntRange(1, 40).Draw(rt, "limit")
				if p, ok := last[i]; ok && rapid.IntRange(0, 3).Draw(rt, "again") == 0 {
					since, limit = p.since, p.limit // the same window again
				}
				before := rd.conn.Stats()
				got, ok, err := runtime.SeriesWindow(ctx, rd.repo, []any{"ex", sym, "1m"}, "1m", since, limit)
				if err != nil {
					rt.Fatalf("%s: window(%d, %d): %v", rd.name, since, limit, err)
				}
				after := rd.conn.Stats()
				want, wantOK := storedWindow(ctx, t, env.Conn, sym, since, 60_000, limit)
				if ok != wantOK {
					rt.Fatalf("%s: window(%d, %d) ok=%v; MongoDB holds all of it: %v", rd.name, since, limit, ok, wantOK)
				}
				if ok {
					for j, c := range got {
						if c != want[j] || int64(c.Timestamp) != since+int64(j)*60_000 {
							rt.Fatalf("%s: window(%d, %d)[%d] = %+v; MongoDB has %+v", rd.name, since, limit, j, c, want[j])
						}
					}
				} else if got != nil {
					rt.Fatalf("%s: an incomplete window returned %d elements", rd.name, len(got))
				}
				// The model agrees with MongoDB (the test's own check).
				all := true
				for j := range int64(limit) {
					all = all && stored[(since-seriesT0)/60_000+j]
				}
				if all != wantOK {
					rt.Fatalf("the test's model says %v, MongoDB %v", all, wantOK)
				}
				commands := after.Mongo - before.Mongo
				hit := after.Series.Hits - before.Series.Hits
				if commands == 0 && hit != 1 || commands != 0 && hit != 0 {
					rt.Fatalf("%s: %d MongoDB commands and %d hits for one window", rd.name, commands, hit)
				}
				if p, held := last[i]; held && p.since == since && p.limit == limit && p.evict == after.Series.Evictions && commands != 0 {
					rt.Fatalf("%s: a window read complete before, with nothing evicted since, asked MongoDB again (%d commands)", rd.name, commands)
				}
				if ok {
					last[i] = seen{since, limit, after.Series.Evictions}
				} else {
					delete(last, i)
				}
			},
		})
	})
}

// TestSeriesWindowsSeeEveryInsertOfAnotherConn: a writer stores a series
// one element at a time while readers on two other Conns read the five
// elements before the newest one stored: absence is never kept, so every
// such window is complete, with the values stored.
func TestSeriesWindowsSeeEveryInsertOfAnotherConn(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, seriesSchema()))
	writer := newRepo[candleKey, candle](t, env.Conn, seriesSchema())
	const n = 300
	var done atomic.Int64 // the highest position whose insert returned
	done.Store(-1)
	var failed atomic.Value
	fail := func(err error) { failed.CompareAndSwap(nil, err) }
	var wg sync.WaitGroup
	for r := range 2 {
		c := env.Open(t, func(c *runtime.Config) { c.SeriesReadAhead = 50 })
		rr := newRepo[candleKey, candle](t, c, seriesSchema())
		wg.Go(func() {
			for failed.Load() == nil {
				d := done.Load()
				if d >= n-1 {
					return
				}
				if d < 4 {
					continue
				}
				since := seriesT0 + (d-4)*60_000
				got, ok, err := runtime.SeriesWindow(ctx, rr, []any{"ex", "S", "1m"}, "1m", since, 5)
				switch {
				case err != nil:
					fail(fmt.Errorf("reader %d: %w", r, err))
				case !ok:
					fail(fmt.Errorf("reader %d: the window ending at position %d, stored before it began, was incomplete", r, d))
				default:
					for j, c := range got {
						if p := d - 4 + int64(j); c != seriesCandle(p, float64(seriesT0+p*60_000)) {
							fail(fmt.Errorf("reader %d: position %d read as %+v", r, p, c))
						}
					}
				}
			}
		})
	}
	for p := range int64(n) {
		ts := float64(seriesT0 + p*60_000)
		if _, err := writer.Insert(ctx, candleKey{"ex", "S", "1m", ts}, seriesCandle(p, ts), time.Time{}); err != nil {
			fail(err)
			break
		}
		done.Store(p)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// TestSeriesModeRefusesWritesThatChangeElements: the tier's promise rests on
// stored elements never changing, so a series-mode repository refuses Put,
// PutMany and Remove (and stores nothing), and a Conn refuses a Repo of
// another mode on the same collection beside it.
func TestSeriesModeRefusesWritesThatChangeElements(t *testing.T) {
	env := setup(t, seriesSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, seriesSchema())
	k := candleKey{"ex", "S", "1m", float64(seriesT0)}
	if _, err := r.Insert(ctx, k, seriesCandle(0, float64(seriesT0)), time.Time{}); err != nil {
		t.Fatal(err)
	}
	changed := seriesCandle(99, float64(seriesT0))
	for name, err := range map[string]error{
		"Put":     r.Put(ctx, k, changed, ms(0)),
		"PutMany": r.PutMany(ctx, []runtime.Item[candleKey, candle]{{Key: k, Payload: changed}}),
		"Remove":  func() error { _, err := r.Remove(ctx, k); return err }(),
	} {
		if !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Errorf("%s on a series-mode domain: %v; want ErrInvalidArgument", name, err)
		}
	}
	got, ok, err := runtime.SeriesWindow(ctx, newRepo[candleKey, candle](t, env.Open(t), seriesSchema()), []any{"ex", "S", "1m"}, "1m", seriesT0, 1)
	if err != nil || !ok || got[0] != seriesCandle(0, float64(seriesT0)) {
		t.Fatalf("after the refused writes: %+v %v %v; want the element as inserted", got, ok, err)
	}
	if _, err := runtime.NewRepo[candleKey, candle](env.Conn, candleSchema()); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("an identity-mode Repo beside a series-mode one on a collection: %v; want ErrInvalidArgument", err)
	}
}

// TestSeriesTierStaysWithinItsBound reads a long series through a tier
// bounded to a few blocks: it evicts, never holds more than its bound, and
// still answers every window right.
func TestSeriesTierStaysWithinItsBound(t *testing.T) {
	env := setup(t, seriesSchema())
	ctx := ctxT(t)
	const n, bound = 6000, 200_000
	items := make([]runtime.Item[candleKey, candle], n)
	for p := range int64(n) {
		ts := float64(seriesT0 + p*60_000)
		items[p] = runtime.Item[candleKey, candle]{Key: candleKey{"ex", "S", "1m", ts}, Payload: seriesCandle(p, ts)}
	}
	_, err := newRepo[candleKey, candle](t, env.Conn, seriesSchema()).InsertMany(ctx, items)
	must(t, err)
	c := env.Open(t, func(c *runtime.Config) { c.SeriesCacheBytes = bound })
	r := newRepo[candleKey, candle](t, c, seriesSchema())
	maxBytes := int64(0)
	for p := int64(0); p+5 <= n; p += 7 {
		got, ok, err := runtime.SeriesWindow(ctx, r, []any{"ex", "S", "1m"}, "1m", seriesT0+p*60_000, 5)
		if err != nil || !ok || got[4] != items[p+4].Payload {
			t.Fatalf("window at %d: %v %v %+v", p, ok, err, got)
		}
		maxBytes = max(maxBytes, c.Stats().Series.Bytes)
	}
	s := c.Stats().Series
	if maxBytes > bound || s.Evictions == 0 || s.Hits == 0 || s.Misses < n/1000 {
		t.Fatalf("series tier: %+v, at most %d bytes held; want evictions, hits, at most %d bytes", s, maxBytes, bound)
	}
	if s.Blocks == 0 || s.Bytes <= 0 {
		t.Fatalf("series tier holds nothing: %+v", s)
	}
}

// TestSeriesWindowsAtTheEdges: windows before 1970 (negative positions),
// key parts holding the tier's old separator, fractional axis values (off
// every grid), an axis beyond what a Date holds and a window too long to
// hold each get the element MongoDB stored or a clear error, never a zero
// value or another series' element, on the writing Conn and on a fresh one.
func TestSeriesWindowsAtTheEdges(t *testing.T) {
	env := setup(t, seriesSchema())
	ctx := ctxT(t)
	w := newRepo[candleKey, candle](t, env.Conn, seriesSchema())
	put := func(ex, sym string, ts float64, open float64) {
		t.Helper()
		_, err := runtime.PutSeries(ctx, w, "1m", []runtime.Item[candleKey, candle]{{Key: candleKey{ex, sym, "1m", ts}, Payload: candle{Timestamp: ts, Open: open}}})
		must(t, err)
	}
	type want struct {
		ok    bool
		opens []float64
	}
	check := func(what string, r *runtime.Repo[candleKey, candle], ex, sym string, since int64, limit int, wt want) {
		t.Helper()
		got, ok, err := runtime.SeriesWindow(ctx, r, []any{ex, sym, "1m"}, "1m", since, limit)
		if err != nil || ok != wt.ok {
			t.Fatalf("%s: ok=%v err=%v; want ok=%v", what, ok, err, wt.ok)
		}
		for i, c := range got {
			if c.Open != wt.opens[i] || int64(c.Timestamp) != since+int64(i)*60_000 {
				t.Fatalf("%s: element %d = %+v; want open %g at %d", what, i, c, wt.opens[i], since+int64(i)*60_000)
			}
		}
	}
	// Before 1970: -60000 and 0 stored.
	put("ex", "NEG", -60_000, 41)
	put("ex", "NEG", 0, 42)
	// Parts that spelled one series in the tier's first naming.
	put("binance", "BTC/USDT", float64(seriesT0), 7)
	// Off the grid: T0+0.5 alone in FR1; T0, T0+0.5 and T0+60000 in FR2.
	put("ex", "FR1", float64(seriesT0)+0.5, 1)
	put("ex", "FR2", float64(seriesT0), 1)
	put("ex", "FR2", float64(seriesT0)+0.5, 2)
	put("ex", "FR2", float64(seriesT0+60_000), 3)
	for name, r := range map[string]*runtime.Repo[candleKey, candle]{"writer": w, "fresh": newRepo[candleKey, candle](t, env.Open(t), seriesSchema())} {
		for range 2 { // from MongoDB, then from the tier
			check(name+": empty before 1970", r, "ex", "NONE", -60_000, 1, want{ok: false})
			check(name+": before 1970", r, "ex", "NEG", -60_000, 1, want{true, []float64{41}})
			check(name+": across 1970", r, "ex", "NEG", -60_000, 2, want{true, []float64{41, 42}})
			check(name+": a / in a part", r, "binance/BTC", "USDT", seriesT0, 1, want{ok: false})
			check(name+": the series itself", r, "binance", "BTC/USDT", seriesT0, 1, want{true, []float64{7}})
			check(name+": only an off-grid element", r, "ex", "FR1", seriesT0, 1, want{ok: false})
			check(name+": an off-grid element between two", r, "ex", "FR2", seriesT0, 2, want{true, []float64{1, 3}})
		}
	}
	for what, err := range map[string]error{
		"an axis beyond a Date": func() error {
			_, err := runtime.PutSeries(ctx, w, "1m", []runtime.Item[candleKey, candle]{{Key: candleKey{"ex", "FAR", "1m", 1e19}}})
			return err
		}(),
		"InsertMany of an axis beyond a Date": func() error {
			_, err := w.InsertMany(ctx, []runtime.Item[candleKey, candle]{{Key: candleKey{"ex", "FAR", "1m", 8.64e15 + 86_400_000}}})
			return err
		}(),
		"a window too long to hold": func() error {
			_, _, err := runtime.SeriesWindow(ctx, w, []any{"ex", "NEG", "1m"}, "1m", 0, 1<<62)
			return err
		}(),
	} {
		if !errors.Is(err, runtime.ErrInvalidKey) && !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Errorf("%s: %v; want ErrInvalidKey or ErrInvalidArgument", what, err)
		}
	}
}

// TestSeriesCollectionRefusesAnotherModeInAnotherProcess: a Conn whose Repo
// of the collection is in identity mode could overwrite elements series
// processes keep, so the collection's marker refuses it.
func TestSeriesCollectionRefusesAnotherModeInAnotherProcess(t *testing.T) {
	env := setup(t, seriesSchema())
	ctx := ctxT(t)
	w := newRepo[candleKey, candle](t, env.Conn, seriesSchema())
	k := candleKey{"ex", "M", "1m", float64(seriesT0)}
	_, err := runtime.PutSeries(ctx, w, "1m", []runtime.Item[candleKey, candle]{{Key: k, Payload: seriesCandle(0, float64(seriesT0))}})
	must(t, err)
	other := newRepo[candleKey, candle](t, env.Open(t), candleSchema())
	if err := other.Put(ctx, k, seriesCandle(99, float64(seriesT0)), time.Time{}); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("an identity-mode Put in another Conn on a series collection: %v; want ErrInvalidArgument (the marker)", err)
	}
	got, ok, err := runtime.SeriesWindow(ctx, newRepo[candleKey, candle](t, env.Open(t), seriesSchema()), []any{"ex", "M", "1m"}, "1m", seriesT0, 1)
	if err != nil || !ok || got[0] != seriesCandle(0, float64(seriesT0)) {
		t.Fatalf("after the refused Put: %+v %v %v", got, ok, err)
	}
}

// TestSeriesDomainsOfOneCollectionNeverShareElements: two series domains
// on one collection that order their key fields differently name other
// rows with the same prefix values; the tier keeps them apart.
func TestSeriesDomainsOfOneCollectionNeverShareElements(t *testing.T) {
	env := setup(t, seriesSchema())
	ctx := ctxT(t)
	a := newRepo[candleKey, candle](t, env.Conn, seriesSchema())
	bs := seriesSchema()
	bs.Domain = "candle2"
	bs.Key[0], bs.Key[1] = bs.Key[1], bs.Key[0] // symbol, exchangeName, interval, timestamp
	b := newRepo[candleKey, candle](t, env.Conn, bs)
	_, err := runtime.PutSeries(ctx, a, "1m", []runtime.Item[candleKey, candle]{{Key: candleKey{"binance", "BTC", "1m", float64(seriesT0)}, Payload: seriesCandle(7, float64(seriesT0))}})
	must(t, err)
	// b's prefix {"binance", "BTC"} is symbol binance on exchange BTC: no row.
	if got, ok, err := runtime.SeriesWindow(ctx, b, []any{"binance", "BTC", "1m"}, "1m", seriesT0, 1); err != nil || ok {
		t.Fatalf("the other domain's window: %+v ok=%v %v; want none (MongoDB holds none)", got, ok, err)
	}
}
