package cache

import (
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The series tier's bookkeeping, without servers: what a window finds held,
// what it asks MongoDB for, what a fill keeps and what the bound evicts.

type bar struct{ T, Close float64 }

var sid = SeriesID{Collection: "c", Prefix: "ex:S:1m", Step: 60_000}

func fill(t *SeriesTier, id SeriesID, from, to int64) {
	var pos []int64
	var vals []bar
	for p := from; p < to; p++ {
		pos = append(pos, p)
		vals = append(vals, bar{float64(p), float64(p) / 2})
	}
	SeriesFill(t, id, pos, vals, nil)
}

func TestSeriesReadAsksForWhatIsMissingAndTheReadAhead(t *testing.T) {
	tier := NewSeriesTier(0)
	w := SeriesRead[bar](tier, sid, 10, 15, 100, nil)
	if w.Complete() || w.Missing != (Span{10, 115}) {
		t.Fatalf("empty tier: missing %+v; want the window and 100 past it", w.Missing)
	}
	fill(tier, sid, 10, 115)
	w = SeriesRead[bar](tier, sid, 110, 115, 100, nil)
	if !w.Complete() || w.Vals[4] != (bar{114, 57}) {
		t.Fatalf("held window: %+v complete=%v", w.Vals, w.Complete())
	}
	// The tail is missing: ask from the first missing position through
	// the read-ahead, stopping at the first held one.
	fill(tier, sid, 150, 160)
	w = SeriesRead[bar](tier, sid, 110, 120, 100, nil)
	if w.Missing != (Span{115, 150}) {
		t.Fatalf("tail missing: %+v; want 115..150 (150 is held)", w.Missing)
	}
	for i := range 10 {
		if w.Held(i) != (i < 5) {
			t.Fatalf("held(%d) = %v", i, w.Held(i))
		}
	}
	// A gap inside a window: only the gap, no read-ahead.
	SeriesFill(tier, sid, []int64{200, 201, 203, 204}, []bar{{200, 0}, {201, 0}, {203, 0}, {204, 0}}, nil)
	w = SeriesRead[bar](tier, sid, 200, 205, 100, nil)
	if w.Missing != (Span{202, 203}) {
		t.Fatalf("gap: %+v; want 202..203 only", w.Missing)
	}
	// No read-ahead: only the window.
	w = SeriesRead[bar](tier, sid, 300, 305, 0, nil)
	if w.Missing != (Span{300, 305}) {
		t.Fatalf("no read-ahead: %+v", w.Missing)
	}
	s := tier.Stats()
	if s.Hits != 1 || s.Misses != 4 {
		t.Fatalf("stats %+v; want 1 hit, 4 misses", s)
	}
}

// Positions before the epoch's are negative: a window there that the tier
// does not hold is missing, never complete.
func TestSeriesReadBeforeTheEpoch(t *testing.T) {
	tier := NewSeriesTier(0)
	w := SeriesRead[bar](tier, sid, -1, 0, 0, nil)
	if w.Complete() || w.Missing != (Span{-1, 0}) {
		t.Fatalf("empty tier, position -1: complete=%v missing %+v; want -1..0 missing", w.Complete(), w.Missing)
	}
	fill(tier, sid, -3, -1)
	w = SeriesRead[bar](tier, sid, -3, 0, 5, nil)
	if w.Missing != (Span{-1, 5}) || !w.Held(0) || !w.Held(1) || w.Held(2) {
		t.Fatalf("positions -3..-1 held, -1 not: missing %+v", w.Missing)
	}
}

func TestSeriesTierKeepsSeriesAndGridsApart(t *testing.T) {
	tier := NewSeriesTier(0)
	fill(tier, sid, -2000, 2000) // negative positions: before the epoch
	for _, other := range []SeriesID{
		{Collection: "c", Prefix: "ex:T:1m", Step: 60_000},
		{Collection: "d", Prefix: "ex:S:1m", Step: 60_000},
		{Collection: "c", Prefix: "ex:S:1m", Step: 300_000},
		{Collection: "c", Prefix: "ex:S:1m", Step: 60_000, Phase: 30_000},
	} {
		if w := SeriesRead[bar](tier, other, 0, 5, 0, nil); w.Held(0) {
			t.Fatalf("%+v answered from %+v's elements", other, sid)
		}
	}
	if w := SeriesRead[float64](tier, sid, 0, 5, 0, nil); w.Held(0) {
		t.Fatal("another element type answered from bars")
	}
	w := SeriesRead[bar](tier, sid, -1030, -1020, 0, nil)
	if !w.Complete() || w.Vals[0].T != -1030 || w.Vals[9].T != -1021 {
		t.Fatalf("negative positions: %+v", w.Vals)
	}
}

func TestSeriesFillNeverChangesAHeldElement(t *testing.T) {
	tier := NewSeriesTier(0)
	SeriesFill(tier, sid, []int64{5}, []bar{{5, 1}}, nil)
	SeriesFill(tier, sid, []int64{5}, []bar{{5, 2}}, nil)
	if w := SeriesRead[bar](tier, sid, 5, 6, 0, nil); w.Vals[0].Close != 1 {
		t.Fatalf("held %v; want the first", w.Vals[0])
	}
}

func TestSeriesReadHandsOutCopies(t *testing.T) {
	type row struct{ Tags []string }
	tier := NewSeriesTier(0)
	SeriesFill(tier, sid, []int64{0}, []row{{Tags: []string{"a"}}}, ElementExtra[row]())
	w := SeriesRead(tier, sid, 0, 1, 0, NewCloner[row]())
	w.Vals[0].Tags[0] = "changed by a caller"
	if w := SeriesRead(tier, sid, 0, 1, 0, NewCloner[row]()); w.Vals[0].Tags[0] != "a" {
		t.Fatalf("the tier's element changed through a copy: %v", w.Vals[0])
	}
	if ElementExtra[bar]() != nil {
		t.Fatal("a pointer-free element has extra bytes to weigh")
	}
	if n := ElementExtra[row]()(&row{Tags: []string{"abc"}}); n != 16+3 {
		t.Fatalf("extra bytes of one 3-byte string in a slice: %d; want 19", n)
	}
}

func TestSeriesTierEvictsLeastRecentlyUsedBlocks(t *testing.T) {
	one := int64(blockOverhead + SeriesBlockLen*16) // a block of bars
	tier := NewSeriesTier(3 * one)
	fill(tier, sid, 0, 3*SeriesBlockLen) // blocks 0, 1, 2
	SeriesRead[bar](tier, sid, 0, 1, 0, nil)
	fill(tier, sid, 3*SeriesBlockLen, 3*SeriesBlockLen+1) // block 3: evicts block 1
	s := tier.Stats()
	if s.Blocks != 3 || s.Bytes != 3*one || s.Evictions != 1 {
		t.Fatalf("stats %+v; want 3 blocks, %d bytes, 1 eviction", s, 3*one)
	}
	held := func(p int64) bool { return SeriesRead[bar](tier, sid, p, p+1, 0, nil).Complete() }
	if !held(0) || held(SeriesBlockLen) || !held(2*SeriesBlockLen) || !held(3*SeriesBlockLen) {
		t.Fatal("evicted a block other than the least recently used")
	}
	off := NewSeriesTier(-1)
	fill(off, sid, 0, 10)
	if s := off.Stats(); s.Blocks != 0 || s.Bytes != 0 {
		t.Fatalf("a disabled tier holds %+v", s)
	}
}

// BenchmarkSeriesTierMemory measures the heap a million candles take in
// the tier (six float64 fields, as candles are stored), against what the
// tier counts for them, and the cost of a 5-element hit.
func BenchmarkSeriesTierMemory(b *testing.B) {
	type candle struct{ Timestamp, Open, High, Low, Close, Volume float64 }
	const n = 1_000_000
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		tier := NewSeriesTier(1 << 30)
		pos := make([]int64, SeriesBlockLen)
		vals := make([]candle, SeriesBlockLen)
		for p := int64(0); p < n; p += SeriesBlockLen {
			for i := range pos {
				pos[i], vals[i] = p+int64(i), candle{Timestamp: float64(p + int64(i))}
			}
			SeriesFill(tier, sid, pos, vals, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/candle")
		b.ReportMetric(float64(tier.Stats().Bytes)/n, "counted-B/candle")
		runtime.KeepAlive(tier)
	}
}

func BenchmarkSeriesTierHit(b *testing.B) {
	tier := NewSeriesTier(0)
	fill(tier, sid, 0, 2000)
	b.ReportAllocs()
	var sink bar
	for i := range b.N {
		p := int64(i % 1990)
		w := SeriesRead[bar](tier, sid, p, p+5, 1000, nil)
		sink = w.Vals[4]
	}
	if diff := cmp.Diff(bar{}, sink); diff == "" && b.N > 0 {
		b.Fatal("the hits returned nothing")
	}
}
