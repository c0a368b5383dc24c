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
	if s := PlainSchema(); s.Mode() != runtime.CacheIdentity {
		t.Fatalf("plain: %q", s.Mode())
	}
}
