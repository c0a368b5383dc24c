package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// localTier is a Conn's in-process copies of rows of the local cache mode
// (schema.CacheLocal), keyed by value key: at most a configured number of
// them (Config.LocalEntries), the least recently used evicted first.
//
// A copy is only ever made from a Redis reply that granted one (READ's hit,
// FILL, a write's END), and lives until the request's send time plus the
// granted time less 1% (the clock-rate allowance): Redis recorded the grant
// at or after the send, so the copy dies before Redis's record of it does,
// and a writer in another process waits for that record to pass before it
// commits.
//
// A write in this process does not wait for this process's copies: it
// evicts them instead, and fences its keys, so that no reply to a request
// sent before the write ended can install what the write replaced. The
// fences are striped (a fixed array, no per-key state): a fence on another
// key of the stripe only refuses an install, which costs the next read a
// Redis round trip.
//
// The LRU is hashicorp/golang-lru/v2: a plain, thread-safe, count-bounded
// LRU with no dependencies and a small, stable API, maintained for years
// by HashiCorp. The admission policies of the faster caches (ristretto,
// otter) may drop or delay an insert, which is harmless for a cache but
// makes the fences' ordering harder to reason about; an entry here is a
// few hundred bytes and a hit is a map lookup under a mutex, far below a
// round trip.
type localTier struct {
	lru     *lru.Cache[string, localEntry]
	seed    maphash.Seed
	seq     atomic.Uint64
	stripes [localStripes]localStripe
	evicted atomic.Int64
}

const localStripes = 256

type localStripe struct {
	mu       sync.Mutex
	inflight int    // writes of this process in flight on the stripe's keys
	fence    uint64 // seq when the last of them began or ended
}

// localEntry is a copy: the document (raw), or a row known to be absent,
// and the record decoded from raw by the first hit (see Lookup.Decoded).
type localEntry struct {
	raw    bson.Raw
	absent bool
	until  time.Time // monotonic
	dec    *atomic.Pointer[any]
}

// newLocalEntry makes a copy of raw (nil: absent) that lives until until.
func newLocalEntry(raw bson.Raw, until time.Time) localEntry {
	return localEntry{raw: raw, absent: raw == nil, until: until, dec: new(atomic.Pointer[any])}
}

// DefaultLocalEntries is the in-process tier's size when
// Config.LocalEntries is zero.
const DefaultLocalEntries = 10_000

func newLocalTier(entries int) *localTier {
	if entries < 0 {
		return nil
	}
	if entries == 0 {
		entries = DefaultLocalEntries
	}
	l := &localTier{seed: maphash.MakeSeed()}
	l.lru, _ = lru.New[string, localEntry](entries) // only a size <= 0 is refused
	return l
}

func (l *localTier) stripe(key string) *localStripe {
	return &l.stripes[maphash.String(l.seed, key)%localStripes]
}

// get returns a live copy of key.
func (l *localTier) get(key string) (localEntry, bool) {
	e, ok := l.lru.Get(key)
	if !ok || !time.Now().Before(e.until) {
		return localEntry{}, false
	}
	return e, true
}

// stamp is taken before a request whose reply may install a copy.
func (l *localTier) stamp() uint64 { return l.seq.Load() }

// install keeps e under key unless a write of this process on the key's
// stripe is in flight or began or ended since stamp was taken.
func (l *localTier) install(key string, stamp uint64, e localEntry) bool {
	st := l.stripe(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.inflight > 0 || st.fence > stamp || !time.Now().Before(e.until) {
		return false
	}
	l.add(key, e)
	return true
}

// add keeps e under key, counting the copy evicted to make room.
func (l *localTier) add(key string, e localEntry) {
	if l.lru.Add(key, e) {
		l.evicted.Add(1)
	}
}

// begin fences keys and evicts their copies, before a write.
func (l *localTier) begin(keys []string) {
	for _, k := range keys {
		st := l.stripe(k)
		st.mu.Lock()
		st.inflight++
		st.fence = l.seq.Add(1)
		l.lru.Remove(k)
		st.mu.Unlock()
	}
}

// end lifts begin's fences, evicting the keys' copies again, and keeps
// own as the first key's copy when the write left it in Redis with a grant
// and no other write of this process is in flight on its stripe.
func (l *localTier) end(keys []string, own *localEntry) {
	for i, k := range keys {
		st := l.stripe(k)
		st.mu.Lock()
		st.inflight--
		st.fence = l.seq.Add(1)
		l.lru.Remove(k)
		if i == 0 && own != nil && st.inflight == 0 && time.Now().Before(own.until) {
			l.add(k, *own)
		}
		st.mu.Unlock()
	}
}

// localLife is how long a copy may be served, from the send time of the
// request whose reply granted it for grantMs (Redis's clock): the grant
// less the clock-rate allowance.
func localLife(send time.Time, grantMs int64) time.Time {
	g := time.Duration(grantMs) * time.Millisecond
	return send.Add(g - g*rhoPercent/100)
}
