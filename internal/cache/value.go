package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// Shared is a Conn's part of the value and local modes: the Redis client
// and breaker, the scripts, the in-process tier, and the process's name
// in grants and tokens. Each domain of those modes gets its Mode from
// Shared.Value.
type Shared struct {
	rdb     Client
	breaker *Breaker
	scripts scripts
	local   *localTier    // nil: the Conn keeps no in-process copies
	tokens  atomic.Uint64 // per grant
	loaded  atomic.Bool   // LoadScripts ran
	// proc names this Conn (random): in the local tier's grants
	// (g:<proc>) and as the prefix of its lease and write tokens.
	proc string
	// markMs bounds how long a write may still land after its writer
	// stopped waiting for it (2 OpTimeouts and a second).
	markMs  int64
	leaseMs int64
	waitMs  int64
}

// SharedConfig configures a Conn's Shared.
type SharedConfig struct {
	// OpTimeout bounds one MongoDB call: a lease lives as long as the
	// holder's read may take (within 1 s to 30 s), so that a slow read
	// still fills; a mark lives two of them and a second.
	OpTimeout time.Duration
	// LocalEntries bounds the in-process tier (DefaultLocalEntries when
	// 0; a negative number keeps no copies: local mode acts as value mode).
	LocalEntries int
	// LeaseWait is the longest a reader waits for another reader's fill
	// (defaultLeaseWait when 0): a lease older than that is taken over by
	// the next reader, so that a holder that died, or never learnt it
	// held the lease, stalls nobody for longer.
	LeaseWait time.Duration
}

// defaultLeaseWait is SharedConfig.LeaseWait's default.
const defaultLeaseWait = time.Second

// NewShared returns a Conn's Shared.
func NewShared(rdb Client, b *Breaker, cfg SharedConfig) *Shared {
	lease := min(max(cfg.OpTimeout, time.Second), 30*time.Second)
	mark := 2*max(cfg.OpTimeout, time.Second) + time.Second
	wait := cfg.LeaseWait
	if wait <= 0 {
		wait = defaultLeaseWait
	}
	return &Shared{rdb: rdb, breaker: b, scripts: newScripts(), local: newLocalTier(cfg.LocalEntries),
		proc: randomHex(), markMs: mark.Milliseconds(), leaseMs: lease.Milliseconds(), waitMs: wait.Milliseconds()}
}

// LoadScripts loads the scripts into Redis once per Conn (later calls do
// nothing), so that the first call of each costs the round trips every
// later one does. The Conn calls it before the first operation on a
// collection of the value or local mode, outside the operation's
// accounting. A failure (an ACL without SCRIPT LOAD, Redis down) is
// returned, and harmless: a script Redis does not hold is sent whole
// (EVALSHA's fallback to EVAL).
func (s *Shared) LoadScripts(ctx context.Context) error {
	if !s.loaded.CompareAndSwap(false, true) {
		return nil
	}
	return s.scripts.load(ctx, s.rdb)
}

// LocalStats returns how many copies the in-process tier holds and how
// many it evicted to make room (zeros when it keeps none).
func (s *Shared) LocalStats() (entries int, evictions int64) {
	if s.local == nil {
		return 0, 0
	}
	return s.local.lru.Len(), s.local.evicted.Load()
}

// ValueDomain describes a domain of the value or local mode.
type ValueDomain struct {
	Mode schema.CacheMode // schema.CacheValue or schema.CacheLocal
	// KeyPrefix is the Conn's; RedisPrefix the domain's; Database and
	// Collection where its rows are: together they make its keys.
	KeyPrefix, RedisPrefix, Database, Collection string
	TTL                                          time.Duration // the value's life (schema.DefaultCacheTTL when 0)
	LocalTTL                                     time.Duration // a copy's life, local mode (schema.DefaultLocalTTL when 0)
	// Strict: a write that cannot mark its keys fails before it is sent
	// (schema.Schema.Strict: CacheStrict, and the local mode always).
	Strict   bool
	Counters *Counters
}

// Value returns the Mode of a domain of the value or local mode. In local
// mode on a Conn that keeps no copies, it acts as value mode.
func (s *Shared) Value(d ValueDomain) Mode {
	v := &valueMode{Shared: s, stats: d.Counters, ttl: d.TTL, kind: d.Mode, strict: d.Strict || d.Mode == schema.CacheLocal,
		guard: guard{s.breaker, string(d.Mode) + " cache"}, keyPrefix: valueKeyPrefix(d.KeyPrefix, d.RedisPrefix, d.Database, d.Collection)}
	if v.ttl <= 0 {
		v.ttl = schema.DefaultCacheTTL
	}
	if v.stats == nil {
		v.stats = new(Counters)
	}
	if d.Mode == schema.CacheLocal && s.local != nil {
		lt := d.LocalTTL
		if lt <= 0 {
			lt = schema.DefaultLocalTTL
		}
		v.localMs = lt.Milliseconds()
	}
	return v
}

// valueMode is a domain's view of Shared: its counters, TTL, keys, and in
// local mode the copy life it asks for.
type valueMode struct {
	*Shared
	guard     guard
	kind      schema.CacheMode
	stats     *Counters
	ttl       time.Duration
	localMs   int64 // 0: no copies (value mode, or the Conn keeps none)
	keyPrefix string
	strict    bool // no mark, no write
}

const (
	replyHit   = 1
	replyWait  = 2
	replyLease = 3
	replyDirty = 4

	// negativeTTL bounds a cached "absent".
	negativeTTL = 2 * time.Second
	// rhoPercent is the clock-rate allowance (1%) and waitMargin a fixed
	// margin, added to a wait so that it covers a Redis clock running
	// slower.
	rhoPercent = 1
	waitMargin = 10 * time.Millisecond
	// maxCopyMs is the longest copy life any process may have been
	// granted (schema.MaxLocalTTL): what a writer waits for after a Redis
	// restart, whatever its own domain's copy life.
	maxCopyMs = int64(schema.MaxLocalTTL / time.Millisecond)
)

func (v *valueMode) Kind() schema.CacheMode { return v.kind }
func (v *valueMode) KeepsRows() bool        { return true }

func (v *valueMode) common() common {
	return common{Proc: v.proc, MarkMs: v.markMs, CopyMs: maxCopyMs}
}

// Key is the value key of a row: the Conn's KeyPrefix, "pgv:{", the
// domain's Redis prefix (for ACL patterns), the database and collection,
// and the key's canonical form (schema.Canon: the string "1" and the
// number 1 differ), escaped, then "}": the braces make the whole key one
// cluster hash tag, and no two rows of any database share an entry.
func (v *valueMode) Key(vals []any) string {
	var b strings.Builder
	b.WriteString(v.keyPrefix)
	escapeValueKeyPart(&b, schema.Canon(vals))
	b.WriteByte('}')
	return b.String()
}

// valueKeyPrefix is the part of a domain's value keys that does not depend
// on the key, built once per domain.
func valueKeyPrefix(ns, redisPrefix, db, collection string) string {
	var b strings.Builder
	b.WriteString(ns + "pgv:{" + redisPrefix + ":")
	escapeValueKeyPart(&b, db+"."+collection)
	b.WriteByte(':')
	return b.String()
}

// escapeValueKeyPart escapes a part as key parts are escaped, and the
// braces too: the key's hash tag must end where the key does.
func escapeValueKeyPart(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, "{}") {
		schema.EscapeKeyPart(b, s)
		return
	}
	var part strings.Builder
	schema.EscapeKeyPart(&part, s)
	b.WriteString(strings.NewReplacer("{", "%7B", "}", "%7D").Replace(part.String()))
}

// Read answers from the in-process tier (local mode), else runs READ
// until it answers a hit or a lease; waits for another reader's fill count
// as lease waits, and last at most LeaseWait (READ then hands this reader
// the lease). Any Redis failure is a bypass (read MongoDB, fill nothing),
// and so is, as a safety net, a wait that outlasts two LeaseWaits. A hit
// that carries a grant leaves a copy in the process. When the caller's
// context ends inside Read, the Lookup carries a *WaitError.
func (v *valueMode) Read(ctx context.Context, key string) Lookup {
	if v.localMs > 0 {
		if e, ok := v.local.get(key); ok {
			v.stats.LocalHits.Add(1)
			return Lookup{Hit: true, Absent: e.absent, Raw: e.raw, Decoded: e.dec}
		}
	}
	if !v.guard.Usable() {
		return Lookup{}
	}
	args := readArgs{common: v.common(), Token: v.newToken(), LeaseMs: v.leaseMs, GrantMs: v.localMs, WaitMs: v.waitMs}
	deadline := time.Now().Add(2*time.Duration(v.waitMs)*time.Millisecond + 100*time.Millisecond)
	for wait := time.Millisecond; ; wait = min(2*wait, 32*time.Millisecond) {
		var stamp uint64
		if v.localMs > 0 {
			stamp = v.local.stamp()
		}
		send := time.Now()
		res, err := v.scripts.read.Run(ctx, v.rdb, []string{key}, args.argv()...).Slice()
		if err != nil || len(res) == 0 {
			if err == nil {
				err = errors.New("READ answered nothing")
			}
			if mayHaveRun(err) {
				// READ may have run and granted this reader the lease
				// after the client stopped waiting for its reply: give
				// it back, so that nobody waits for a fill that will not
				// come (in the background, quietly: this read goes to
				// MongoDB now, and its failure is counted once).
				go v.release(key, args.Token, false)
			}
			if ctx.Err() != nil {
				return Lookup{Err: &WaitError{Stage: "the value cache's READ had not answered", Err: ctx.Err()}}
			}
			v.guard.fail(ctx, "value read", err)
			return Lookup{}
		}
		v.guard.ok()
		switch code, _ := res[0].(int64); code {
		case replyHit:
			s, _ := res[1].(string)
			out := Lookup{Hit: true}
			switch {
			case s == "A":
				out.Absent = true
			case len(s) > 1 && s[0] == 'D':
				out.Raw = bson.Raw(s[1:])
			default:
				return Lookup{} // not ours: read MongoDB
			}
			v.stats.Hits.Add(1)
			if len(res) > 2 {
				if ms, _ := res[2].(int64); ms > 0 {
					v.local.install(key, stamp, newLocalEntry(out.Raw, localLife(send, ms)))
				}
			}
			return out
		case replyLease:
			v.stats.Misses.Add(1)
			return Lookup{token: args.Token, stamp: stamp}
		case replyDirty:
			v.stats.Misses.Add(1)
			return Lookup{} // a write is in flight: MongoDB, no fill
		}
		v.stats.LeaseWaits.Add(1)
		if time.Now().After(deadline) {
			return Lookup{}
		}
		select {
		case <-ctx.Done():
			return Lookup{Err: &WaitError{Stage: "another reader was filling the value cache from MongoDB", Err: ctx.Err()}}
		case <-time.After(wait):
		}
	}
}

// WaitError is the error of a read whose caller's context ended while it
// waited for Redis (not MongoDB, which was not asked yet).
type WaitError struct {
	Addr  string // Redis's address, for the message (set by the Conn)
	Stage string // what the reader was waiting for
	Err   error  // the context's error
}

func (e *WaitError) Error() string {
	addr := ""
	if e.Addr != "" {
		addr = " at " + e.Addr
	}
	return "the caller's context ended (" + e.Err.Error() + ") while waiting for redis" + addr + ": " + e.Stage
}

func (e *WaitError) Unwrap() error { return e.Err }

// Found runs FILL with what the lease holder read: raw, or absent when
// nil. A fill that carries a grant leaves a copy in the process.
func (v *valueMode) Found(ctx context.Context, key string, l Lookup, raw bson.Raw) {
	if l.token == "" {
		return
	}
	args := fillArgs{common: v.common(), Token: l.token, Value: "A", LifeMs: min(v.ttl, negativeTTL).Milliseconds(), GrantMs: v.localMs}
	if raw != nil {
		args.Value, args.LifeMs = "D"+string(raw), v.ttl.Milliseconds()
	}
	send := time.Now()
	n, err := v.scripts.fill.Run(ctx, v.rdb, []string{key}, args.argv()...).Int64()
	if err != nil {
		v.guard.fail(ctx, "value fill", err)
		return
	}
	v.guard.ok()
	switch {
	case n < 0:
		v.stats.FillsRejected.Add(1)
	case n > 0: // granted: local mode only
		v.local.install(key, l.stamp, newLocalEntry(raw, localLife(send, n)))
	}
}

// Failed gives back a lease its holder will not fill (its read failed).
func (v *valueMode) Failed(key string, l Lookup) {
	if l.token != "" {
		v.release(key, l.token, true)
	}
}

// release runs RELEASE for token, bounded by a second whatever the
// caller's context; a failure is the breaker's when counted.
func (v *valueMode) release(key, token string, counted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := v.scripts.release.Run(ctx, v.rdb, []string{key}, releaseArgs{Token: token}.argv()...).Err(); err != nil && counted {
		v.guard.fail(ctx, "value release", err)
	}
}

// mayHaveRun reports a failure after which the command may still have
// run: no reply in time (a timeout, or the caller's deadline), as opposed
// to a refusal, a connection that could not be made, or a cancellation.
func mayHaveRun(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// Identities: value and local modes keep no identities.
func (v *valueMode) Identities(_ context.Context, keys []string) ([]bson.ObjectID, []bool) {
	return make([]bson.ObjectID, len(keys)), make([]bool, len(keys))
}

// Remember: value and local modes keep no identities.
func (v *valueMode) Remember(context.Context, []Identity, []string) {}

// Begin runs BEGIN on keys before a write: it marks them (see begin.lua)
// and, in local mode, evicts and fences this process's copies and then
// waits until other processes' copies have expired. Redis out of reach
// leaves the write not begun: a strict mode refuses it then (a
// *MarkError: it must not be sent); otherwise it goes ahead and waits out
// the TTL if it cannot invalidate afterwards. A ctx that ends during the
// wait ends it: the write must then not be sent (Write.Unsent), and its
// marks stay until their deadline.
func (v *valueMode) Begin(ctx context.Context, keys []string) (Write, error) {
	if len(keys) == 0 {
		return Write{}, nil
	}
	w := Write{keys: keys, token: v.newToken()}
	if v.local != nil {
		// Every write through the Conn fences its tier, whatever the
		// domain's mode: another domain of this Conn may hold copies of
		// the same rows in local mode.
		v.local.begin(keys)
	}
	refuse := func(cause error) (Write, error) {
		if v.local != nil {
			v.local.end(keys, nil)
		}
		return Write{}, &MarkError{Err: cause}
	}
	if !v.guard.Usable() {
		if v.strict {
			return refuse(fmt.Errorf("redis is out of use since a failure, until %s", v.breaker.DownUntil().Format(time.RFC3339Nano)))
		}
		return w, nil
	}
	send := time.Now()
	res, err := run(ctx, v.rdb, v.scripts.begin, keys, beginArgs{common: v.common(), Token: w.token}.argv())
	if err != nil {
		v.guard.fail(ctx, "value begin", err)
		if !v.strict {
			return w, nil
		}
		if ctx.Err() != nil {
			// The caller gave up, not Redis: its context's error.
			if v.local != nil {
				v.local.end(keys, nil)
			}
			return Write{}, &WaitError{Stage: "the value cache's BEGIN had not answered; nothing was written", Err: ctx.Err()}
		}
		return refuse(err)
	}
	v.guard.ok()
	w.began = true
	// Redis set the deadline at or after send: the same life less the
	// clock-rate allowance, from send, ends before it.
	life := time.Duration(v.markMs) * time.Millisecond
	w.until = send.Add(life - life*rhoPercent/100 - waitMargin)
	var wait int64
	for i, r := range res {
		f := ints(r, 4)
		if i == 0 {
			w.epoch, w.alone, w.t0 = f[0], f[1] == 1, f[2]
		}
		wait = max(wait, f[3])
	}
	// A ctx that ended during the wait, or before it, means the write
	// that follows is not sent (the driver checks ctx first).
	w.unsent = !v.waitCopies(ctx, wait) || ctx.Err() != nil
	return w, nil
}

// MarkError is a strict mode's refusal of a write whose keys it could not
// mark in Redis: nothing was sent to MongoDB. It wraps ErrUnavailable and
// the cause.
type MarkError struct {
	Addr string // Redis's address, for the message (set by the Conn)
	Err  error
}

func (e *MarkError) Error() string {
	addr := ""
	if e.Addr != "" {
		addr = " at " + e.Addr
	}
	return schema.ErrUnavailable.Error() + ": redis" + addr + " could not mark the keys before the write, and the cache mode is strict: nothing was written (" + e.Err.Error() + ")"
}

func (e *MarkError) Unwrap() []error { return []error{schema.ErrUnavailable, e.Err} }

// waitCopies sleeps until copies Redis said live ms more have expired,
// allowing for the clock-rate difference; false when ctx ended first.
func (v *valueMode) waitCopies(ctx context.Context, ms int64) bool {
	if ms <= 0 {
		return true
	}
	v.stats.WriterWaits.Add(1)
	d := time.Duration(ms) * time.Millisecond
	t := time.NewTimer(d + d*rhoPercent/100 + waitMargin)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// End ends a write after MongoDB answered it (werr is its error, which
// wins). Began: END lifts the mark and deletes the value, or, for a single
// key whose write returned its row, keeps that row when the write was the
// key's last (see end.lua); when the outcome is unknown (werr) the mark
// stays until its deadline. Not begun: CLEAR deletes the value. Either
// returns only once Redis acknowledged and other processes' copies have
// expired or, when Redis cannot be reached, once the TTL has passed since
// the commit (every value and copy made from before the write has expired
// by then); retries meanwhile end the wait early. It fails
// (ErrNotInvalidated) only when ctx ends first.
func (v *valueMode) End(ctx context.Context, w Write, werr error, row bson.Raw) error {
	if len(w.keys) == 0 {
		return werr
	}
	var own *localEntry
	if v.local != nil {
		defer func() { v.local.end(w.keys, own) }()
	}
	if w.began && werr != nil && !w.unsent {
		// The write may still land: the mark keeps readers on MongoDB
		// until its deadline, so it stays; the value went at BEGIN.
		return werr
	}
	if w.unsent && werr != nil {
		// Nothing was sent: one try at lifting the mark (bounded by run's
		// second), past the caller's ctx; failing that, the mark expires
		// at its deadline. No wait: nothing changed.
		if _, err := run(context.WithoutCancel(ctx), v.rdb, v.scripts.end, w.keys, v.endArgs(w, "", false).argv()); err != nil {
			v.guard.fail(ctx, "value end", err)
		}
		return werr
	}
	commit := time.Now()
	until := commit.Add(v.ttl + v.ttl*rhoPercent/100 + waitMargin)
	kept := "" // the row to keep, encoded as FILL stores it
	if w.began && row != nil && len(w.keys) == 1 {
		kept = "D" + string(row)
	}
	for attempt := 0; ; attempt++ {
		var res []any
		var err error
		send := time.Now()
		if w.began {
			res, err = run(ctx, v.rdb, v.scripts.end, w.keys, v.endArgs(w, kept, w.alone).argv())
		} else {
			res, err = run(ctx, v.rdb, v.scripts.clear, w.keys, clearArgs{common: v.common()}.argv())
		}
		if err == nil {
			v.guard.ok()
			v.stats.Invalidations.Add(int64(len(w.keys)))
			var wait int64
			for i, r := range res {
				if !w.began {
					n, _ := r.(int64)
					wait = max(wait, n)
					continue
				}
				f := ints(r, 3)
				if i == 0 && f[0] == 1 {
					v.stats.Installs.Add(1)
					if f[1] > 0 {
						e := newLocalEntry(row, localLife(send, f[1]))
						own = &e
					}
				}
				wait = max(wait, f[2])
			}
			if !v.waitCopies(ctx, wait) && werr == nil {
				own = nil
				return fmt.Errorf("%w: the write is stored, but the caller's context ended while other processes' in-process copies of the previous value were still live: they may read it until %s (%w)",
					schema.ErrNotInvalidated, time.Now().Add(time.Duration(wait)*time.Millisecond).Format(time.RFC3339Nano), ctx.Err())
			}
			return werr
		}
		if ctx.Err() != nil {
			if werr != nil {
				return werr
			}
			return fmt.Errorf("%w: the write is stored, but Redis could not be reached to invalidate the value cache before the caller's context ended: other processes may read the previous value until %s (%w)",
				schema.ErrNotInvalidated, until.Format(time.RFC3339Nano), ctx.Err())
		}
		v.guard.fail(ctx, "value invalidate", err)
		left := time.Until(until)
		if left <= 0 {
			v.stats.WaitOuts.Add(1)
			return werr
		}
		// The next try waits for the breaker's retry time (Redis is known
		// to be down until then: no dial every few milliseconds), and at
		// least a growing backoff; never past the wait-out.
		pause := time.Duration(1<<min(attempt, 8)) * time.Millisecond
		if down := v.breaker.DownUntil(); !down.IsZero() {
			pause = max(pause, time.Until(down))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(left, pause)):
		}
	}
}

// endArgs are END's arguments for w, keeping row (or nothing when "") if
// alone.
func (v *valueMode) endArgs(w Write, row string, alone bool) endArgs {
	return endArgs{common: v.common(), Token: w.token, Epoch: w.epoch, Alone: alone, BeganAt: w.t0,
		Row: row, TTLMs: v.ttl.Milliseconds(), GrantMs: v.localMs}
}

// newToken returns a lease or write token no other grant has: the
// process's random name and a counter (no system call on the read path).
func (s *Shared) newToken() string {
	return s.proc + "." + strconv.FormatUint(s.tokens.Add(1), 36)
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
