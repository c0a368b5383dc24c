package schema

import "time"

// intervals is the table of series step names and their durations, shortest
// first: upstream's candle intervals.
func intervals() []struct {
	name string
	step time.Duration
} {
	return []struct {
		name string
		step time.Duration
	}{
		{"1m", time.Minute}, {"3m", 3 * time.Minute}, {"5m", 5 * time.Minute}, {"15m", 15 * time.Minute},
		{"30m", 30 * time.Minute}, {"1h", time.Hour}, {"2h", 2 * time.Hour}, {"4h", 4 * time.Hour},
		{"6h", 6 * time.Hour}, {"8h", 8 * time.Hour}, {"1d", 24 * time.Hour},
	}
}

// Intervals lists the interval names a series step may hold, shortest
// first: upstream's candle intervals.
func Intervals() []string {
	var out []string
	for _, iv := range intervals() {
		out = append(out, iv.name)
	}
	return out
}

// IntervalStep returns the duration of an interval name (see Intervals);
// ok is false for any other name.
func IntervalStep(interval string) (step time.Duration, ok bool) {
	for _, iv := range intervals() {
		if iv.name == interval {
			return iv.step, true
		}
	}
	return 0, false
}
