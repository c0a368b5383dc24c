package cache

import (
	"container/list"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/persistgen/persistgen/schema"
)

// The series mode (schema.CacheSeries) serves insert-only time series,
// such as candles, from the process's memory.
//
// Two facts make it safe without any invalidation: a stored element never
// changes (the repository refuses every write but an insert, and an
// insert never overwrites), and an element once stored stays stored. So
// any element a process has read from MongoDB may be handed out again,
// forever. What it has not seen is never taken as absent: a window with a
// missing element asks MongoDB again, for the missing part only.
//
// Elements live in blocks of SeriesBlockLen consecutive grid positions of
// one series (one collection, one key prefix, one step and one phase: the
// grid since + i*step of the windows that read it). A Conn has one
// SeriesTier, bounded in bytes and shared by all its Repos; it evicts
// whole blocks, the least recently used first.

// SeriesBlockLen is how many grid positions one block holds.
const SeriesBlockLen = 1024

// DefaultSeriesBytes bounds a Conn's series tier when its configuration
// gives no bound.
const DefaultSeriesBytes = 64 << 20

// blockOverhead is a block's bookkeeping, beside its elements: the struct,
// its bitmap, its list and map entries.
const blockOverhead = 320

// SeriesID names one series in the tier: a collection, the key values
// before the axis (encoded: Prefix), the step between elements and the
// phase of the grid (the axis modulo the step), all in milliseconds.
type SeriesID struct {
	Collection string
	Prefix     string
	Step       int64
	Phase      int64
}

type blockID struct {
	SeriesID
	elem reflect.Type // two domains of one collection may decode differently
	n    int64        // the block's first grid position is n*SeriesBlockLen
}

type seriesBlock struct {
	id    blockID
	vals  any // []P of SeriesBlockLen: the element type is the Repo's
	have  [SeriesBlockLen / 64]uint64
	extra int64 // bytes the present elements hold beyond their slots
	bytes int64
	el    *list.Element
}

func (b *seriesBlock) has(i int64) bool { return b.have[i/64]&(1<<(i%64)) != 0 }

// SeriesTier is a Conn's in-process store of series elements.
type SeriesTier struct {
	max int64

	mu     sync.Mutex
	bytes  int64
	blocks map[blockID]*seriesBlock
	lru    list.List // of *seriesBlock, most recently used first

	hits, misses, evictions atomic.Int64
}

// NewSeriesTier returns a tier that holds at most maxBytes of elements and
// bookkeeping (DefaultSeriesBytes when maxBytes is zero; nothing at all,
// so every window reads MongoDB, when it is negative).
func NewSeriesTier(maxBytes int64) *SeriesTier {
	if maxBytes == 0 {
		maxBytes = DefaultSeriesBytes
	}
	return &SeriesTier{max: maxBytes, blocks: make(map[blockID]*seriesBlock)}
}

// On reports whether the tier keeps anything (its bound is not negative).
func (t *SeriesTier) On() bool { return t.max >= 0 }

// Miss counts a window that asked MongoDB without asking the tier (the
// tier is off).
func (t *SeriesTier) Miss() { t.misses.Add(1) }

// SeriesStats describes a tier.
type SeriesStats struct {
	// Hits counts windows answered from memory, with no round trip;
	// Misses those that asked MongoDB (for their missing part).
	Hits, Misses int64
	// Blocks and Bytes are what the tier holds now.
	Blocks int
	Bytes  int64
	// Evictions counts blocks dropped to stay within the bound.
	Evictions int64
}

// Stats returns the tier's counters.
func (t *SeriesTier) Stats() SeriesStats {
	t.mu.Lock()
	n, b := len(t.blocks), t.bytes
	t.mu.Unlock()
	return SeriesStats{Hits: t.hits.Load(), Misses: t.misses.Load(), Blocks: n, Bytes: b, Evictions: t.evictions.Load()}
}

// Span is a range of grid positions [From, To).
type Span struct{ From, To int64 }

// Window is what the tier holds of the grid positions [from, from+len(Vals)):
// Vals[i] is valid where Held(i). Missing, when not empty, is the span to
// ask MongoDB for: from the first position not held to the last, and, when
// the window's last position is missing, on up to readAhead positions past
// the window's end, stopping at the first one held.
type Window[P any] struct {
	Vals    []P
	held    []uint64
	Missing Span
}

// Held reports whether Vals[i] came from the tier (or a Fill).
func (w Window[P]) Held(i int) bool { return w.held[i/64]&(1<<(i%64)) != 0 }

func (w *Window[P]) hold(i int) { w.held[i/64] |= 1 << (i % 64) }

// Complete reports whether every position of the window is held.
func (w Window[P]) Complete() bool { return w.Missing.From == w.Missing.To }

// SeriesRead copies what t holds of positions [from, to) of series id into
// a Window, through clone when it is not nil (so that the caller may
// change what it gets). A complete window counts as a hit, any other as a
// miss.
func SeriesRead[P any](t *SeriesTier, id SeriesID, from, to int64, readAhead int, clone func(P) P) Window[P] {
	n := int(to - from)
	w := Window[P]{Vals: make([]P, n), held: make([]uint64, (n+63)/64)}
	var first, last int64
	missing := false
	elem := reflect.TypeFor[P]()
	t.mu.Lock()
	var b *seriesBlock
	var vs []P
	bn := int64(math.MinInt64)
	for p := from; p < to; p++ {
		n, off := divFloor(p)
		if n != bn {
			bn = n
			if b = t.blocks[blockID{id, elem, bn}]; b != nil {
				t.lru.MoveToFront(b.el)
				vs = b.vals.([]P)
			}
		}
		if b != nil && b.has(off) {
			v := vs[off]
			if clone != nil {
				v = clone(v)
			}
			w.Vals[p-from] = v
			w.hold(int(p - from))
			continue
		}
		if !missing {
			first, missing = p, true
		}
		last = p
	}
	if missing {
		end := last + 1
		if last == to-1 {
			for ; end < to+int64(readAhead); end++ {
				if t.heldLocked(id, elem, end) {
					break
				}
			}
		}
		w.Missing = Span{first, end}
	}
	t.mu.Unlock()
	if missing {
		t.misses.Add(1)
	} else {
		t.hits.Add(1)
	}
	return w
}

func (t *SeriesTier) heldLocked(id SeriesID, elem reflect.Type, p int64) bool {
	bn, off := divFloor(p)
	b := t.blocks[blockID{id, elem, bn}]
	return b != nil && b.has(off)
}

// divFloor splits a grid position into its block and its offset there
// (positions before the epoch's are negative).
func divFloor(p int64) (int64, int64) {
	bn := p / SeriesBlockLen
	if p%SeriesBlockLen < 0 {
		bn--
	}
	return bn, p - bn*SeriesBlockLen
}

// SeriesFill stores elements MongoDB returned: vals[i] at grid position
// pos[i]. extra, when not nil, gives the bytes an element holds beyond its
// slot (its strings, slices and maps: ElementExtra). Positions already
// held are left as they are (an element never changes). Filling may evict
// other blocks, least recently used first, to stay within the bound.
func SeriesFill[P any](t *SeriesTier, id SeriesID, pos []int64, vals []P, extra func(*P) int64) {
	if t.max < 0 || len(pos) == 0 {
		return
	}
	slot := int64(unsafe.Sizeof(*new(P)))
	elem := reflect.TypeFor[P]()
	t.mu.Lock()
	defer t.mu.Unlock()
	var b *seriesBlock
	var vs []P
	for i, p := range pos {
		bn, off := divFloor(p)
		if b == nil || b.id.n != bn {
			bid := blockID{id, elem, bn}
			if b = t.blocks[bid]; b == nil {
				b = &seriesBlock{id: bid, vals: make([]P, SeriesBlockLen), bytes: blockOverhead + slot*SeriesBlockLen}
				b.el = t.lru.PushFront(b)
				t.blocks[bid] = b
				t.bytes += b.bytes
			} else {
				t.lru.MoveToFront(b.el)
			}
			vs = b.vals.([]P)
		}
		if b.has(off) {
			continue
		}
		vs[off] = vals[i]
		b.have[off/64] |= 1 << (off % 64)
		if extra != nil {
			e := extra(&vals[i])
			b.extra += e
			b.bytes += e
			t.bytes += e
		}
	}
	for t.bytes > t.max && t.lru.Len() > 0 {
		old := t.lru.Remove(t.lru.Back()).(*seriesBlock)
		delete(t.blocks, old.id)
		t.bytes -= old.bytes
		t.evictions.Add(1)
	}
}

// ElementExtra returns a function that estimates the bytes an element of
// type P holds beyond its own slot (strings, slices, maps, pointers), or
// nil when P holds none (then an element costs its slot alone).
func ElementExtra[P any]() func(*P) int64 {
	t := reflect.TypeFor[P]()
	if !hasPointers(t) {
		return nil
	}
	return func(p *P) int64 { return deepExtra(reflect.ValueOf(p).Elem()) }
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.String, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	}
	return false
}

// deepExtra estimates what v refers to, beyond v's own bytes.
func deepExtra(v reflect.Value) int64 {
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len())
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		n := int64(v.Cap()) * int64(v.Type().Elem().Size())
		for i := range v.Len() {
			n += deepExtra(v.Index(i))
		}
		return n
	case reflect.Array:
		var n int64
		for i := range v.Len() {
			n += deepExtra(v.Index(i))
		}
		return n
	case reflect.Struct:
		var n int64
		for i := range v.NumField() {
			n += deepExtra(v.Field(i))
		}
		return n
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		return int64(e.Type().Size()) + deepExtra(e)
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		n := int64(48) // the map header
		it := v.MapRange()
		for it.Next() {
			n += int64(it.Key().Type().Size()+it.Value().Type().Size()) + deepExtra(it.Key()) + deepExtra(it.Value())
		}
		return n
	}
	return 0
}

// Series is mode series: identities as Identity keeps them (or nothing,
// without Redis); the windows are the runtime's, answered by the Conn's
// SeriesTier.
type Series struct{ Mode }

var _ Mode = (*Series)(nil)

// Kind is schema.CacheSeries.
func (*Series) Kind() schema.CacheMode { return schema.CacheSeries }
