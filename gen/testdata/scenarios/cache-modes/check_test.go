package repo

import (
	"testing"
	"time"

	"github.com/persistgen/persistgen/runtime"
)

func TestCacheModesReachTheSchema(t *testing.T) {
	if s := QuoteSchema(); s.Mode() != runtime.CacheValue || s.CacheTTL != 2*time.Second {
		t.Fatalf("quote: %q %s", s.Mode(), s.CacheTTL)
	}
	if s := TickSchema(); s.Mode() != runtime.CacheNone || s.CacheTTL != 0 {
		t.Fatalf("tick: %q %s", s.Mode(), s.CacheTTL)
	}
	if s := BookSchema(); s.Mode() != runtime.CacheLocal || s.CacheTTL != 5*time.Second || s.LocalTTL != 250*time.Millisecond || s.Validate() != nil {
		t.Fatalf("book: %q %s %s %v", s.Mode(), s.CacheTTL, s.LocalTTL, s.Validate())
	}
	if s := PlainSchema(); s.Mode() != runtime.CacheIdentity {
		t.Fatalf("plain: %q", s.Mode())
	}
}
