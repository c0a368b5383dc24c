package runtime

// Whens: a time's stored value, as-of bounds, and times read back.

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestWhenConversions(t *testing.T) {
	base := time.UnixMilli(1500)
	for _, tc := range []struct {
		name             string
		t                time.Time
		value, asOf, bnd float64
	}{
		{"whole millisecond", base, 1500, 1500, 1500},
		{"a nanosecond later", base.Add(time.Nanosecond), 1501, 1500, 1501},
		{"just before the next", base.Add(999_999), 1501, 1500, 1501},
		{"before 1970", time.UnixMilli(-1500).Add(-time.Nanosecond), -1500, -1501, -1500},
		{"epoch", time.Unix(0, 0), 0, 0, 0},
		{"latest JavaScript date", time.UnixMilli(maxWhenMs), maxWhenMs, maxWhenMs, maxWhenMs},
		{"earliest JavaScript date", time.UnixMilli(-maxWhenMs), -maxWhenMs, -maxWhenMs, -maxWhenMs},
	} {
		v, err := whenValue(tc.t)
		if err != nil || v != tc.value {
			t.Errorf("%s: whenValue = %v, %v; want %v", tc.name, v, err, tc.value)
		}
		if got := asOfValue(tc.t); got != tc.asOf {
			t.Errorf("%s: asOfValue = %v, want %v", tc.name, got, tc.asOf)
		}
		if got := whenBound(tc.t); got != tc.bnd {
			t.Errorf("%s: whenBound = %v, want %v", tc.name, got, tc.bnd)
		}
	}
	for _, tc := range []struct {
		name      string
		t         time.Time
		asOf, bnd float64
	}{
		{"after the latest", time.UnixMilli(maxWhenMs).Add(time.Nanosecond), maxWhenMs, maxWhenMs},
		{"far future", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), maxWhenMs, maxWhenMs},
		{"before the earliest", time.UnixMilli(-maxWhenMs).Add(-time.Nanosecond), -maxWhenMs - 1, -maxWhenMs - 1},
	} {
		_, err := whenValue(tc.t)
		pureWantErr(t, tc.name, err, ErrInvalidArgument, "outside what a JavaScript Date can hold")
		if got := asOfValue(tc.t); got != tc.asOf {
			t.Errorf("%s: asOfValue = %v, want %v", tc.name, got, tc.asOf)
		}
		if got := whenBound(tc.t); got != tc.bnd {
			t.Errorf("%s: whenBound = %v, want %v", tc.name, got, tc.bnd)
		}
	}
}

func TestTimeOf(t *testing.T) {
	at := time.UnixMilli(1700000040123).UTC()
	for _, tc := range []struct {
		name string
		v    any
		want time.Time
	}{
		{"date", at.In(time.FixedZone("Z", 3600)), at},
		{"double", 1700000040123.0, at},
		{"int64", int64(1700000040123), at},
		{"int32", int32(-5), time.UnixMilli(-5).UTC()},
		{"string", "2024", time.Time{}},
		{"bool", true, time.Time{}},
	} {
		got := timeOf(pureRaw(t, tc.v))
		if !got.Equal(tc.want) || got.Location() != tc.want.Location() {
			t.Errorf("%s: timeOf = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := timeOf(bson.RawValue{Type: bson.TypeNull}); !got.IsZero() {
		t.Errorf("timeOf(null) = %v", got)
	}
}
