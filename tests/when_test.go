package tests

// Whens and as-of reads: what a read as of a time sees, and which whens
// are refused.

import (
	"errors"
	"testing"
	"time"

	"github.com/persistgen/persistgen/runtime"
)

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 5: as-of reads saw rows up to 1 ms in the future (when rounded
// down on both sides). A row is never visible before its when.
func TestAsOfNeverSeesARowFromLessThanAMillisecondAhead(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	when := ms(1_000_000).Add(600 * time.Microsecond)
	must(t, r.Put(ctx, k, memData{Value: 1}, when))
	for _, at := range []time.Time{ms(1_000_000), ms(1_000_000).Add(300 * time.Microsecond), when.Add(-time.Nanosecond)} {
		_, err := r.GetAsOf(ctx, k, at)
		wantNotFound(t, err)
		rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s"}, AsOf: at}))
		must(t, err)
		if len(rows) != 0 {
			t.Fatalf("List as of %v sees a row written at %v", at, when)
		}
	}
	if _, err := r.GetAsOf(ctx, k, ms(1_000_001)); err != nil {
		t.Fatalf("as of the next millisecond: %v", err)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 6: a when beyond the int64 millisecond range wrapped around to
// 1970 and became visible to every as-of read. Whens outside what a
// JavaScript Date holds are refused; as-of bounds beyond it clamp.
func TestFarWhensAreRefusedAndAsOfBoundsNeverWrap(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for _, far := range []time.Time{time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(300_000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-300_000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := r.Put(ctx, memKey{"s", "b", "far"}, memData{Value: 1}, far)
		if !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Fatalf("when %v: %v; want ErrInvalidArgument", far, err)
		}
	}
	if _, err := r.GetAsOf(ctx, memKey{"s", "b", "far"}, ms(5)); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("a refused far write is visible: %v", err)
	}
	must(t, r.Put(ctx, memKey{"s", "b", "near"}, memData{Value: 2}, ms(5)))
	if _, err := r.GetAsOf(ctx, memKey{"s", "b", "near"}, time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("as of the far future: %v", err)
	}
	_, err := r.GetAsOf(ctx, memKey{"s", "b", "near"}, time.Date(-300_000_000, 1, 1, 0, 0, 0, 0, time.UTC))
	wantNotFound(t, err)
}
