package runtime

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// IntervalStep returns the duration of a series interval, one of
// schema.Intervals (1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 1d); ErrInvalidArgument
// for any other.
func IntervalStep(interval string) (time.Duration, error) {
	if step, ok := schema.IntervalStep(interval); ok {
		return step, nil
	}
	return 0, errorf(ErrInvalidArgument, "interval %q is not one of %s", interval, strings.Join(schema.Intervals(), " "))
}

// axisValue reads the last key value of a series key as epoch
// milliseconds.
func axisValue(vals []any) (float64, bool) {
	switch v := vals[len(vals)-1].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

// gridMillis is an axis value as whole milliseconds, when it is one within
// what a JavaScript Date holds: only such a value can be on a window's
// grid (since + i*step); a fractional one lies between two grid points.
func gridMillis(v float64) (int64, bool) {
	if v != math.Trunc(v) || math.Abs(v) > maxWhenMs {
		return 0, false
	}
	return int64(v), true
}

// seriesAxis refuses, in the series mode, a key whose axis no window
// could hold (checkAxis; nil vals: no key to check).
func (r *Repo[K, P]) seriesAxis(vals []any) error {
	if r.series == nil || len(vals) == 0 {
		return nil
	}
	return checkAxis(vals)
}

// checkAxis refuses a series key whose axis is no number of epoch
// milliseconds within what a JavaScript Date holds.
func checkAxis(vals []any) error {
	switch v, ok := axisValue(vals); {
	case !ok || math.IsNaN(v):
		return errorf(ErrInvalidKey, "the series axis (last key field) must be a number of epoch milliseconds")
	case math.Abs(v) > maxWhenMs:
		return errorf(ErrInvalidKey, "the series axis %g is outside what a JavaScript Date holds (±8.64e15 ms around 1970)", v)
	}
	return nil
}

// gridPos places ts on the grid of its phase (ts modulo step, in [0,
// step)): ts = phase + pos*step. The tier names a grid by its phase.
func gridPos(ts, step int64) (phase, pos int64) {
	phase = ((ts % step) + step) % step
	return phase, (ts - phase) / step
}

// maxWindow bounds a window's length: a window is read into memory whole.
const maxWindow = 1_000_000

// seriesPrefix checks the key values before the axis and normalises them
// as the key's fields take them (an int for an int64 field, say), and
// spells them so that two different prefixes never share a spelling: the
// tier's name for the series.
func (r *Repo[K, P]) seriesPrefix(prefix []any) ([]any, string, error) {
	if len(prefix) != len(r.s.Key)-1 {
		return nil, "", errorf(ErrInvalidKey, "a window needs every key field but the axis (%d values, of %s), got %d", len(r.s.Key)-1, r.s.KeyNames(), len(prefix))
	}
	norm := make([]any, len(prefix))
	var b strings.Builder
	// The key's layout first: two series domains of one collection may
	// order their fields differently, and one prefix names other rows.
	b.WriteString(strconv.Quote(r.s.KeyNames()))
	for i, v := range prefix {
		nv, err := r.s.Part(i, v)
		if err != nil {
			return nil, "", errorf(ErrInvalidKey, "prefix: %s", schema.Message(err))
		}
		norm[i] = nv
		b.WriteByte(0) // quoted strings hold no raw NUL: a part ends here
		switch x := nv.(type) {
		case string:
			b.WriteString(strconv.Quote(x))
		case float64:
			b.WriteString("f" + strconv.FormatFloat(x, 'g', -1, 64))
		case int64:
			b.WriteString("i" + strconv.FormatInt(x, 10))
		case bool:
			b.WriteString("b" + strconv.FormatBool(x))
		default:
			fmt.Fprintf(&b, "%T:%v", x, x)
		}
	}
	return norm, b.String(), nil
}

// PutSeries stores the elements of a time series, first write wins (an
// element is immutable once stored), skipping every element that is not
// closed yet: axis + interval >= now (Config.Now), so a candle still forming
// is never frozen. It returns how many were newly stored. Round trips: those
// of InsertMany (2, however many elements; on a domain with history, one
// per element plus one).
func PutSeries[K Key, P any](ctx context.Context, r *Repo[K, P], interval string, items []Item[K, P]) (int, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return 0, r.opErr(ctx, opInsertMany, nil, err)
	}
	now := float64(r.conn.cfg.Now().UnixMilli())
	closed := make([]Item[K, P], 0, len(items))
	for _, it := range items {
		vals := it.Key.KeyValues()
		if err := checkAxis(vals); err != nil {
			return 0, r.opErr(ctx, opInsertMany, vals, err)
		}
		if ts, _ := axisValue(vals); ts+float64(step.Milliseconds()) < now {
			closed = append(closed, it)
		}
	}
	if len(closed) == 0 {
		return 0, nil
	}
	if r.series == nil || !r.series.tier.On() {
		return r.InsertMany(ctx, closed)
	}
	// The tier learns what this call inserted: MongoDB holds exactly the
	// documents sent (decoded as a read decodes them), and a stored element
	// never changes. Items another writer stored first are left alone: the
	// stored element may differ from this one.
	stepMs := step.Milliseconds()
	s := r.series
	fills := map[cache.SeriesID]*seriesFill[P]{}
	n, err := r.insertMany(ctx, closed, func(i int, doc bson.D) {
		raw, err := bson.Marshal(doc)
		if err != nil {
			return
		}
		rec, err := r.decode(raw)
		if err != nil {
			return
		}
		vals := closed[i].Key.KeyValues()
		axis, _ := axisValue(vals)
		ts, onGrid := gridMillis(axis)
		_, prefix, err := r.seriesPrefix(vals[:len(vals)-1])
		if !onGrid || err != nil {
			return // between grid points: no window holds it
		}
		phase, pos := gridPos(ts, stepMs)
		id := cache.SeriesID{Collection: s.collection, Prefix: prefix, Step: stepMs, Phase: phase}
		f := fills[id]
		if f == nil {
			f = &seriesFill[P]{}
			fills[id] = f
		}
		f.pos = append(f.pos, pos)
		f.vals = append(f.vals, rec.Payload)
	})
	for id, f := range fills {
		cache.SeriesFill(s.tier, id, f.pos, f.vals, s.extra)
	}
	return n, err
}

type seriesFill[P any] struct {
	pos  []int64
	vals []P
}

// SeriesWindow reads limit elements of the series prefix (the key without
// its axis) starting at since: exactly limit elements at since + i*interval,
// in order, or ok=false when any one of them is missing. Elements off that
// grid (an axis value between two of its points) are no part of any window.
// One round trip; none in the series cache mode when the Conn's tier holds
// every element already (a window that goes to MongoDB there fetches up to
// the read-ahead past its end too, stopping at the first element held).
// A window never returns an element at or after since + limit*interval.
func SeriesWindow[K Key, P any](ctx context.Context, r *Repo[K, P], prefix []any, interval string, since int64, limit int) ([]P, bool, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return nil, false, r.opErr(ctx, opList, prefix, err)
	}
	if limit <= 0 || limit > maxWindow {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidArgument, "limit %d: ask for 1 to %d elements (read a longer span in several windows)", limit, maxWindow))
	}
	if since < -maxWhenMs || since > maxWhenMs {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidArgument, "since %d is outside what a JavaScript Date holds (±8.64e15 ms around 1970)", since))
	}
	norm, name, err := r.seriesPrefix(prefix)
	if err != nil {
		return nil, false, r.opErr(ctx, opList, prefix, err)
	}
	stepMs := step.Milliseconds()
	if r.series == nil || !r.series.tier.On() {
		if r.series != nil {
			r.series.tier.Miss()
		}
		out := make([]P, limit)
		got, err := r.fetchGrid(ctx, norm, stepMs, since, 0, int64(limit), func(i int64, p P) { out[i] = p })
		if err != nil || got != limit {
			return nil, false, err
		}
		return out, true, nil
	}
	return seriesWindow(ctx, r, norm, name, stepMs, since, limit)
}

// fetchGrid reads the elements of the series prefix at the grid positions
// [from, to) of the grid since + i*step, in one round trip, and hands each
// one found to put with its position (relative to since). It returns how
// many it found.
func (r *Repo[K, P]) fetchGrid(ctx context.Context, prefix []any, step, since, from, to int64, put func(int64, P)) (int, error) {
	axis := r.s.Key[len(r.s.Key)-1].Name
	lo, hi := since+from*step, since+to*step
	n := 0
	o := ListOptions{Prefix: prefix, Range: &Range{Field: axis, From: float64(lo), To: float64(hi)}, batch: int(to - from)}
	for rec, err := range r.List(ctx, o) {
		if err != nil {
			return 0, err
		}
		axis, _ := axisValue(rec.Key.KeyValues())
		ts, whole := gridMillis(axis)
		if !whole || ts < lo || ts >= hi || (ts-since)%step != 0 {
			continue // off the grid: no part of a window
		}
		put((ts-since)/step, rec.Payload)
		n++
	}
	return n, nil
}

// seriesSide is a series-mode Repo's part of the Conn's series tier.
type seriesSide[P any] struct {
	tier       *cache.SeriesTier
	collection string
	readAhead  int
	clone      func(P) P      // nil: a plain copy is a complete copy
	extra      func(*P) int64 // nil: an element holds nothing beyond its slot
}

func newSeriesSide[P any](c *Conn, s *Schema) (*seriesSide[P], error) {
	side := &seriesSide[P]{tier: c.series, collection: s.Collection, readAhead: s.SeriesReadAhead, extra: cache.ElementExtra[P]()}
	if side.readAhead == 0 {
		side.readAhead = schema.DefaultSeriesReadAhead
	}
	switch ra := c.cfg.SeriesReadAhead; {
	case ra > 0:
		side.readAhead = ra
	case ra < 0:
		side.readAhead = 0
	}
	if side.extra != nil { // P refers to memory of its own: hand out copies
		if !cache.Clonable(reflect.TypeFor[P]()) {
			return nil, errorf(ErrInvalidArgument, "the series cache mode hands out copies of the elements it keeps, and payload type %s cannot be copied (a channel, function or unexported field): use a plain struct, or the identity mode", reflect.TypeFor[P]())
		}
		side.clone = cache.NewCloner[P]()
	}
	return side, nil
}

// window answers a window from the tier where it holds every element, and
// otherwise asks MongoDB for what it misses (and the read-ahead), keeps
// what came back and answers from both: elements never change, so what
// the tier held before the read is as good as what the read returned.
func seriesWindow[K Key, P any](ctx context.Context, r *Repo[K, P], prefix []any, name string, step, since int64, limit int) ([]P, bool, error) {
	s := r.series
	phase, a := gridPos(since, step)
	id := cache.SeriesID{Collection: s.collection, Prefix: name, Step: step, Phase: phase}
	w := cache.SeriesRead(s.tier, id, a, a+int64(limit), s.readAhead, s.clone)
	if w.Complete() {
		r.ops[opList].calls.Add(1)
		return w.Vals, true, nil
	}
	miss := w.Missing
	var pos []int64
	var vals []P
	_, err := r.fetchGrid(ctx, prefix, step, since, miss.From-a, miss.To-a, func(i int64, p P) {
		pos = append(pos, a+i)
		vals = append(vals, p)
	})
	if err != nil {
		return nil, false, err
	}
	cache.SeriesFill(s.tier, id, pos, vals, s.extra)
	have := limit
	for i := range limit {
		if !w.Held(i) {
			have--
		}
	}
	for j, p := range pos {
		if i := p - a; i < int64(limit) && !w.Held(int(i)) {
			v := vals[j]
			if s.clone != nil { // the tier keeps vals[j]
				v = s.clone(v)
			}
			w.Vals[i] = v
			have++
		}
	}
	if have != limit {
		return nil, false, nil
	}
	return w.Vals, true, nil
}

// maxSeriesReadAhead bounds Config.SeriesReadAhead as the manifest's
// read_ahead is bounded.
const maxSeriesReadAhead = schema.MaxSeriesReadAhead
