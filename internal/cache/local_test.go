package cache

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The in-process tier's fences: a reply to a request sent before a write
// of this process began, or while it was in flight, never installs a copy;
// one sent after it ended does; the write's own row is kept at its end
// unless another write of the process is in flight on the stripe.
func TestLocalTierFences(t *testing.T) {
	l := newLocalTier(4)
	live := func(v string) localEntry {
		return localEntry{raw: bson.Raw(v), until: time.Now().Add(time.Minute)}
	}
	got := func(k string) string {
		e, ok := l.get(k)
		if !ok {
			return ""
		}
		return string(e.raw)
	}

	before := l.stamp()
	if !l.install("a", before, live("a0")) || got("a") != "a0" {
		t.Fatal("a copy with no write around was refused")
	}
	l.begin([]string{"a"})
	if got("a") != "" {
		t.Fatal("begin did not evict the key's copy")
	}
	during := l.stamp()
	if l.install("a", before, live("old")) || l.install("a", during, live("old")) {
		t.Fatal("a copy was installed while a write of the process was in flight")
	}
	l.end([]string{"a"}, nil)
	if l.install("a", during, live("old")) || got("a") != "" {
		t.Fatal("a reply to a request sent during the write installed a copy after it")
	}
	after := l.stamp()
	if !l.install("a", after, live("a1")) || got("a") != "a1" {
		t.Fatal("a copy read after the write was refused")
	}

	// Two writes of the process on one key: the first to end keeps no row
	// (the other may commit after it); the last keeps its own.
	l.begin([]string{"b"})
	l.begin([]string{"b"})
	own := live("b1")
	l.end([]string{"b"}, &own)
	if got("b") != "" {
		t.Fatal("a write kept its row while another write of the key was in flight")
	}
	own = live("b2")
	l.end([]string{"b"}, &own)
	if got("b") != "b2" {
		t.Fatalf("the last write did not keep its row: %q", got("b"))
	}

	// Expired copies are neither served nor installed.
	if l.install("c", l.stamp(), localEntry{raw: bson.Raw("c"), until: time.Now().Add(-time.Millisecond)}) {
		t.Fatal("an expired copy was installed")
	}
	l.lru.Add("d", localEntry{raw: bson.Raw("d"), until: time.Now().Add(-time.Millisecond)})
	if got("d") != "" {
		t.Fatal("an expired copy was served")
	}

	// Bounded: the least recently used goes first, and is counted.
	l2 := newLocalTier(2)
	for _, k := range []string{"x", "y", "z"} {
		l2.install(k, l2.stamp(), live(k))
	}
	if l2.lru.Len() != 2 || l2.evicted.Load() != 1 {
		t.Fatalf("size %d, evicted %d; want 2 and 1", l2.lru.Len(), l2.evicted.Load())
	}
	if _, ok := l2.get("x"); ok {
		t.Fatal("the least recently used copy survived")
	}
	if newLocalTier(-1) != nil {
		t.Fatal("a negative size should mean no tier")
	}
}

// A copy's life is the grant less 1% (the clock-rate allowance), counted
// from the send time of the request that got it.
func TestLocalLife(t *testing.T) {
	send := time.Unix(100, 0)
	if got, want := localLife(send, 100), send.Add(99*time.Millisecond); !got.Equal(want) {
		t.Fatalf("localLife(100 ms) = %v, want %v", got.Sub(send), want.Sub(send))
	}
}
