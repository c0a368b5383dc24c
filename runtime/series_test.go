package runtime

// Series: candle intervals and the time axis of a key.

import (
	"testing"
	"time"

	"github.com/persistgen/persistgen/schema"
)

func TestIntervalStep(t *testing.T) {
	for _, n := range schema.Intervals() {
		want, _ := schema.IntervalStep(n)
		if got, err := IntervalStep(n); err != nil || got != want || got <= 0 {
			t.Errorf("IntervalStep(%q) = %v, %v; want %v", n, got, err, want)
		}
	}
	if got, _ := IntervalStep("4h"); got != 4*time.Hour {
		t.Errorf("4h = %v", got)
	}
	for _, n := range []string{"", "2m", "1w", "1H"} {
		got, err := IntervalStep(n)
		if got != 0 {
			t.Errorf("IntervalStep(%q) = %v", n, got)
		}
		pureWantErr(t, n, err, ErrInvalidArgument, "is not one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 1d")
	}
}

func TestAxisValueAndGridMillis(t *testing.T) {
	for _, tc := range []struct {
		vals   []any
		want   int64
		onGrid bool // a whole millisecond within a JavaScript Date's range
		ok     bool // a number at all
	}{
		{[]any{"BTC", 1700000040000.0}, 1700000040000, true, true},
		{[]any{"BTC", 1.9}, 0, false, true}, // between two grid points, not at 1
		{[]any{"BTC", -60000.5}, 0, false, true},
		{[]any{int64(9), int64(-60000)}, -60000, true, true},
		{[]any{42}, 42, true, true},
		{[]any{1e19}, 0, false, true}, // beyond int64 and any Date
		{[]any{8.64e15 + 1}, 0, false, true},
		{[]any{int64(5), "5"}, 0, false, false},
		{[]any{1.0, true}, 0, false, false},
		{[]any{int32(5)}, 0, false, false},
	} {
		v, ok := axisValue(tc.vals)
		got, onGrid := gridMillis(v)
		if ok != tc.ok || ok && (onGrid != tc.onGrid || onGrid && got != tc.want) {
			t.Errorf("%#v: axis %g, %v; grid %d, %v; want %v, grid %d, %v", tc.vals, v, ok, got, onGrid, tc.ok, tc.want, tc.onGrid)
		}
	}
}
