package runtime

import (
	"context"
	"strings"
	"time"

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

// axisMillis reads the last key value of a series key as epoch milliseconds.
func axisMillis(vals []any) (int64, bool) {
	switch v := vals[len(vals)-1].(type) {
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// PutSeries stores the elements of a time series, first write wins (an
// element is immutable once stored), skipping every element that is not
// closed yet: axis + interval >= now (Config.Now), so a candle still forming
// is never frozen. It returns how many were newly stored. Round trips: those
// of InsertMany (2), however many elements.
func PutSeries[K Key, P any](ctx context.Context, r *Repo[K, P], interval string, items []Item[K, P]) (int, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return 0, r.opErr(ctx, opInsertMany, nil, err)
	}
	now := r.conn.cfg.Now().UnixMilli()
	closed := make([]Item[K, P], 0, len(items))
	for _, it := range items {
		ts, ok := axisMillis(it.Key.KeyValues())
		if !ok {
			return 0, r.opErr(ctx, opInsertMany, it.Key.KeyValues(), errorf(ErrInvalidKey, "the series axis (last key field) must be a number of epoch milliseconds"))
		}
		if ts+step.Milliseconds() < now {
			closed = append(closed, it)
		}
	}
	if len(closed) == 0 {
		return 0, nil
	}
	return r.InsertMany(ctx, closed)
}

// SeriesWindow reads limit elements of the series prefix (the key without
// its axis) starting at since: exactly limit elements at since + i*interval,
// in order, or ok=false when any one of them is missing. One round trip.
func SeriesWindow[K Key, P any](ctx context.Context, r *Repo[K, P], prefix []any, interval string, since int64, limit int) ([]P, bool, error) {
	step, err := IntervalStep(interval)
	if err != nil {
		return nil, false, r.opErr(ctx, opList, prefix, err)
	}
	if limit <= 0 {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidArgument, "limit %d: ask for at least one element", limit))
	}
	if len(prefix) != len(r.s.Key)-1 {
		return nil, false, r.opErr(ctx, opList, prefix, errorf(ErrInvalidKey, "a window needs every key field but the axis (%d values), got %d", len(r.s.Key)-1, len(prefix)))
	}
	axis := r.s.Key[len(r.s.Key)-1].Name
	stepMs := step.Milliseconds()
	end := since + int64(limit)*stepMs
	out := make([]P, 0, limit)
	i := int64(0)
	for rec, err := range r.List(ctx, ListOptions{Prefix: prefix, Range: &Range{Field: axis, From: float64(since), To: float64(end)}, Limit: limit}) {
		if err != nil {
			return nil, false, err
		}
		ts, _ := axisMillis(rec.Key.KeyValues())
		if ts != since+i*stepMs {
			return nil, false, nil // a gap (or an element off the grid)
		}
		out = append(out, rec.Payload)
		i++
	}
	if len(out) != limit {
		return nil, false, nil
	}
	return out, true, nil
}
