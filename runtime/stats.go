package runtime

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// OpStats counts what one kind of operation (domain and method) cost.
type OpStats struct {
	Calls  int64 // operations started
	Errors int64 // operations that returned an error other than ErrNotFound
	Mongo  int64 // MongoDB commands sent (each getMore counts)
	Redis  int64 // Redis round trips (a pipeline counts once)
	// CacheHits counts keys whose Redis identity led to the document;
	// CacheMisses keys that had to be found by the compound filter.
	CacheHits   int64
	CacheMisses int64
	// RedisFailures counts Redis errors that were absorbed (the operation
	// went on against MongoDB).
	RedisFailures int64
}

// Add returns the field-wise sum.
func (s OpStats) Add(o OpStats) OpStats {
	return OpStats{s.Calls + o.Calls, s.Errors + o.Errors, s.Mongo + o.Mongo, s.Redis + o.Redis,
		s.CacheHits + o.CacheHits, s.CacheMisses + o.CacheMisses, s.RedisFailures + o.RedisFailures}
}

// Stats is a snapshot of a Conn's counters.
type Stats struct {
	// Ops maps "domain.Method" to its counters.
	Ops map[string]OpStats
	// Mongo and Redis count every command and round trip of the Conn,
	// including those outside repository operations (the readiness guard,
	// index creation).
	Mongo int64
	Redis int64
	// RedisFailures counts every absorbed Redis failure.
	RedisFailures int64
	// Cache has the value cache's counters by cache mode ("value",
	// "local").
	Cache map[string]CacheStats
	// Local describes the in-process tier of the local cache mode.
	Local LocalStats
	// Series describes the in-process tier of the series cache mode.
	Series SeriesStats
}

// SeriesStats describes the in-process tier of the series cache mode (see
// Config.SeriesCacheBytes): Hits counts windows answered from memory with
// no round trip, Misses those that asked MongoDB; Blocks and Bytes are
// what it holds now; Evictions counts blocks dropped to stay within its
// bound.
type SeriesStats = cache.SeriesStats

// LocalStats describes the in-process tier (see Config.LocalCacheEntries).
type LocalStats struct {
	// Entries is how many copies it holds now (live or expired, until
	// evicted or replaced).
	Entries int
	// Evictions counts copies evicted to make room (the tier was full).
	Evictions int64
}

// CacheStats counts a cache mode's work across the Conn.
type CacheStats struct {
	Hits, Misses int64
	// LeaseWaits counts READs that found another reader filling the key
	// and waited for it instead of reading MongoDB.
	LeaseWaits int64
	// Invalidations counts keys deleted after writes.
	Invalidations int64
	// FillsRejected counts fills refused because a write (or a newer lease)
	// came between the lease and the fill: the guard against stale values.
	FillsRejected int64
	// WaitOuts counts writes that could not reach Redis to invalidate and
	// waited out the cache TTL before returning.
	WaitOuts int64
	// LocalHits counts reads the in-process tier answered (local mode), with
	// no round trip; Hits counts the ones Redis answered.
	LocalHits int64
	// Installs counts writes that left the row they wrote in Redis (the
	// write-through of a single-key Put that was the key's only writer), so
	// that the next read is a hit.
	Installs int64
	// WriterWaits counts writes that waited for other processes' in-process
	// copies of their keys to expire before committing (local mode).
	WriterWaits int64
}

// cacheStats reads a mode's counters.
func cacheStats(c *cache.Counters) CacheStats {
	return CacheStats{Hits: c.Hits.Load(), Misses: c.Misses.Load(), LeaseWaits: c.LeaseWaits.Load(), Invalidations: c.Invalidations.Load(),
		FillsRejected: c.FillsRejected.Load(), WaitOuts: c.WaitOuts.Load(), LocalHits: c.LocalHits.Load(), Installs: c.Installs.Load(),
		WriterWaits: c.WriterWaits.Load()}
}

// Names returns the keys of Ops in sorted order.
func (s Stats) Names() []string {
	names := make([]string, 0, len(s.Ops))
	for n := range s.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type opCounters struct {
	calls, errors, mongo, redis, hits, misses, redisFailures atomic.Int64
}

func (c *opCounters) snapshot() OpStats {
	return OpStats{c.calls.Load(), c.errors.Load(), c.mongo.Load(), c.redis.Load(),
		c.hits.Load(), c.misses.Load(), c.redisFailures.Load()}
}

type counters struct {
	mu            sync.Mutex
	ops           map[string]*opCounters
	caches        map[schema.CacheMode]*cache.Counters
	mongo, redis  atomic.Int64
	redisFailures atomic.Int64
}

func (c *counters) op(name string) *opCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = make(map[string]*opCounters)
	}
	oc := c.ops[name]
	if oc == nil {
		oc = new(opCounters)
		c.ops[name] = oc
	}
	return oc
}

func (c *counters) cache(mode schema.CacheMode) *cache.Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caches == nil {
		c.caches = make(map[schema.CacheMode]*cache.Counters)
	}
	cc := c.caches[mode]
	if cc == nil {
		cc = new(cache.Counters)
		c.caches[mode] = cc
	}
	return cc
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Ops: make(map[string]OpStats, len(c.ops)), Mongo: c.mongo.Load(), Redis: c.redis.Load(), RedisFailures: c.redisFailures.Load()}
	for n, oc := range c.ops {
		s.Ops[n] = oc.snapshot()
	}
	if len(c.caches) > 0 {
		s.Cache = make(map[string]CacheStats, len(c.caches))
		for m, cc := range c.caches {
			s.Cache[string(m)] = cacheStats(cc)
		}
	}
	return s
}

// Trace counts the round trips made under one context. Tests and benchmarks
// use it to assert the cost of a single call independently of the machine.
type Trace struct {
	mongo, redis atomic.Int64
	mu           sync.Mutex
	commands     []string
}

// Mongo returns the number of MongoDB commands sent under the traced context.
func (t *Trace) Mongo() int64 { return t.mongo.Load() }

// Redis returns the number of Redis round trips (a pipeline counts once).
func (t *Trace) Redis() int64 { return t.redis.Load() }

// Total is Mongo plus Redis.
func (t *Trace) Total() int64 { return t.Mongo() + t.Redis() }

// Commands lists what was sent, in order: MongoDB command names and Redis
// commands ("redis:get", "redis:pipeline(3)").
func (t *Trace) Commands() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.commands...)
}

// Reset zeroes the trace.
func (t *Trace) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mongo.Store(0)
	t.redis.Store(0)
	t.commands = nil
}

func (t *Trace) record(mongo bool, name string) {
	if mongo {
		t.mongo.Add(1)
	} else {
		t.redis.Add(1)
	}
	t.mu.Lock()
	t.commands = append(t.commands, name)
	t.mu.Unlock()
}

// WithTrace returns a context under which every round trip is also counted
// in the returned Trace.
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := new(Trace)
	prev, _ := ctx.Value(trackKey{}).(*tracking)
	tr := &tracking{trace: t}
	if prev != nil {
		tr.op = prev.op
	}
	return context.WithValue(ctx, trackKey{}, tr), t
}

type trackKey struct{}

type tracking struct {
	op    *opCounters
	trace *Trace
}

// withOp attributes the round trips made under ctx to op, keeping a Trace
// the caller attached.
func withOp(ctx context.Context, op *opCounters) context.Context {
	tr := &tracking{op: op}
	if prev, _ := ctx.Value(trackKey{}).(*tracking); prev != nil {
		tr.trace = prev.trace
	}
	return context.WithValue(ctx, trackKey{}, tr)
}

// housekeeping is a context for the Conn's own round trips made on an
// operation's behalf (the first operation on a collection): it ends when
// ctx does, but carries none of ctx's values, so that neither the
// operation's counters and trace nor its span see them.
func housekeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancelCause(context.Background())
	if dl, ok := ctx.Deadline(); ok {
		var cancelDL context.CancelFunc
		out, cancelDL = context.WithDeadline(out, dl)
		stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
		return out, func() { stop(); cancelDL(); cancel(nil) }
	}
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	return out, func() { stop(); cancel(nil) }
}

// untracked hides ctx's op and trace (used by the readiness guard, whose
// round trips belong to the Conn and not to the operation that triggered it).
func untracked(ctx context.Context) context.Context {
	return context.WithValue(ctx, trackKey{}, (*tracking)(nil))
}

// redisFailure counts an absorbed Redis failure, on the Conn and on the
// operation under ctx (the caches' breaker calls it).
func (c *counters) redisFailure(ctx context.Context) {
	c.redisFailures.Add(1)
	if tr, _ := ctx.Value(trackKey{}).(*tracking); tr != nil && tr.op != nil {
		tr.op.redisFailures.Add(1)
	}
}

// count counts one round trip and returns the caller's Trace, if any, so that
// the caller names the command only when someone reads the names.
func (c *counters) count(ctx context.Context, mongo bool) *Trace {
	if mongo {
		c.mongo.Add(1)
	} else {
		c.redis.Add(1)
	}
	tr, _ := ctx.Value(trackKey{}).(*tracking)
	if tr == nil {
		return nil
	}
	if tr.op != nil {
		if mongo {
			tr.op.mongo.Add(1)
		} else {
			tr.op.redis.Add(1)
		}
	}
	return tr.trace
}

// commandMonitor counts MongoDB commands and, given an Observer, reports
// each from start to reply.
func (c *counters) commandMonitor(o Observer) *event.CommandMonitor {
	count := func(ctx context.Context, e *event.CommandStartedEvent) {
		if t := c.count(ctx, true); t != nil {
			t.record(true, e.CommandName)
		}
	}
	if o == nil {
		return &event.CommandMonitor{Started: count}
	}
	co := &commandObserver{o: o}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			count(ctx, e)
			co.started(ctx, e)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { co.finished(e.RequestID, nil) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { co.finished(e.RequestID, e.Failure) },
	}
}

// redisHook counts round trips: one per command, one per pipeline.
type redisHook struct{ c *counters }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if handshake(cmd.Name()) {
			// Sent while a new pooled connection is set up, as part of the
			// dial (MongoDB's handshakes are not reported either).
			return next(ctx, cmd)
		}
		if t := h.c.count(ctx, false); t != nil {
			t.record(false, "redis:"+cmd.Name())
		}
		return next(ctx, cmd)
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if t := h.c.count(ctx, false); t != nil {
			t.record(false, "redis:pipeline("+itoa(len(cmds))+")")
		}
		return next(ctx, cmds)
	}
}

var _ redis.Hook = redisHook{}

func handshake(name string) bool {
	switch name {
	case "hello", "auth", "select", "client":
		return true
	}
	return false
}
