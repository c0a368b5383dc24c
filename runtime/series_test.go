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

func TestAxisMillis(t *testing.T) {
	for _, tc := range []struct {
		vals []any
		want int64
		ok   bool
	}{
		{[]any{"BTC", 1700000040000.0}, 1700000040000, true},
		{[]any{"BTC", 1.9}, 1, true},
		{[]any{int64(9), int64(-60000)}, -60000, true},
		{[]any{42}, 42, true},
		{[]any{int64(5), "5"}, 0, false},
		{[]any{1.0, true}, 0, false},
		{[]any{int32(5)}, 0, false},
	} {
		got, ok := axisMillis(tc.vals)
		if got != tc.want || ok != tc.ok {
			t.Errorf("axisMillis(%#v) = %d, %v; want %d, %v", tc.vals, got, ok, tc.want, tc.ok)
		}
	}
}
