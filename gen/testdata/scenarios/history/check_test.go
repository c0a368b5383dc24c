package hist

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/persistgen/persistgen/runtime"
)

// The methods a domain with history gets, with their exact signatures.
var (
	_ func(*PositionRepo, context.Context, PositionKey, time.Time, time.Time) ([]float64, bool, error)                                    = (*PositionRepo).GetAt
	_ func(*PositionRepo, context.Context, PositionKey, runtime.HistoryOptions) iter.Seq2[runtime.Version[PositionKey, []float64], error] = (*PositionRepo).History
	_ func(*SettingRepo, context.Context, SettingKey, time.Time) (*string, bool, error)                                                   = (*SettingRepo).GetAt
	_ func(*MemoRepo, context.Context, MemoKey, time.Time, time.Time) (Note, bool, error)                                                 = (*MemoRepo).GetAt
	_ func(*MemoRepo, context.Context, string, string, time.Time) iter.Seq2[runtime.Record[MemoKey, Note], error]                         = (*MemoRepo).ListAt
	_ func(*TagRepo, context.Context, TagKey, time.Time) (bool, bool, error)                                                              = (*TagRepo).GetAt
	_ func(*TagRepo, context.Context, time.Time) iter.Seq2[runtime.Record[TagKey, bool], error]                                           = (*TagRepo).ListAt
	_ func(*FeedRepo, context.Context, string, time.Time) ([]Note, error)                                                                 = (*FeedRepo).GetAllAt
	_ func(*BarRepo, context.Context, BarKey, time.Time) (Bar, bool, error)                                                               = (*BarRepo).GetAt
	_ func(*BarRepo, context.Context, BarKey, runtime.HistoryOptions) iter.Seq2[runtime.Version[BarKey, Bar], error]                      = (*BarRepo).History
)

func TestHistoryReachesTheSchema(t *testing.T) {
	for _, tc := range []struct {
		s    *runtime.Schema
		keep time.Duration
	}{
		{PositionSchema(), 0},
		{SettingSchema(), 36 * time.Hour},
		{MemoSchema(), 90 * 24 * time.Hour},
		{TagSchema(), 90 * time.Minute},
		{FeedSchema(), 24 * time.Hour},
		{BarSchema(), 90 * time.Minute},
	} {
		if tc.s.History == nil || tc.s.History.Keep != tc.keep {
			t.Errorf("%s: History = %+v, want keep %s", tc.s.Domain, tc.s.History, tc.keep)
		}
		if err := tc.s.Validate(); err != nil {
			t.Errorf("%s: %v", tc.s.Domain, err)
		}
		if got, want := tc.s.HistoryCollection(), tc.s.Collection+"-history"; got != want {
			t.Errorf("%s: history collection %q, want %q", tc.s.Domain, got, want)
		}
	}
	if s := PlainSchema(); s.History != nil || s.HistoryCollection() != "" {
		t.Errorf("plain keeps history: %+v", s.History)
	}
}
