package schema

import "time"

// Intervals lists the interval names a series step may hold, shortest
// first: upstream's candle intervals.
func Intervals() []string {
	return []string{"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "1d"}
}

// IntervalStep returns the duration of an interval name (see Intervals);
// ok is false for any other name.
func IntervalStep(interval string) (step time.Duration, ok bool) {
	switch interval {
	case "1m":
		return time.Minute, true
	case "3m":
		return 3 * time.Minute, true
	case "5m":
		return 5 * time.Minute, true
	case "15m":
		return 15 * time.Minute, true
	case "30m":
		return 30 * time.Minute, true
	case "1h":
		return time.Hour, true
	case "2h":
		return 2 * time.Hour, true
	case "4h":
		return 4 * time.Hour, true
	case "6h":
		return 6 * time.Hour, true
	case "8h":
		return 8 * time.Hour, true
	case "1d":
		return 24 * time.Hour, true
	}
	return 0, false
}
