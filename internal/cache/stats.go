package cache

import "sync/atomic"

// Counters count a cache mode's work across a Conn (the Conn keeps one per
// mode and reports them in its Stats).
type Counters struct {
	// Hits counts reads Redis answered; LocalHits those the in-process
	// tier answered, with no round trip; Misses reads that went to MongoDB.
	Hits, LocalHits, Misses atomic.Int64
	// LeaseWaits counts READs that found another reader filling the key
	// and waited for it instead of reading MongoDB.
	LeaseWaits atomic.Int64
	// Invalidations counts keys a write's END or CLEAR reached.
	Invalidations atomic.Int64
	// FillsRejected counts fills refused because a write (or a newer
	// lease) came between the lease and the fill.
	FillsRejected atomic.Int64
	// WaitOuts counts writes that could not reach Redis to invalidate and
	// waited out the TTL before returning.
	WaitOuts atomic.Int64
	// Installs counts writes that left the row they wrote in Redis.
	Installs atomic.Int64
	// WriterWaits counts writes that waited for other processes' copies
	// of their keys to expire before committing.
	WriterWaits atomic.Int64
}
