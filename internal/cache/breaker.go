package cache

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/schema"
)

// Client is the part of go-redis the cache uses. *redis.Client,
// *redis.ClusterClient and *redis.Ring all satisfy it; batches are
// pipelines of single-key commands so that they work on a cluster too.
type Client interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
	Pipeline() redis.Pipeliner
	redis.Scripter
}

// Breaker absorbs a Conn's Redis failures, for every mode: a failure is
// counted and logged, and Redis is bypassed for a while (RetryAfter), so
// that a dead Redis costs one timeout, not one per call. Each mode holds a
// guard, which logs in the words of that mode.
//
// What is not a Redis failure, and never turns the cache off: the caller's
// own cancelled or expired context (the caller gave up, Redis did not),
// and a key of another type (WRONGTYPE), which reads as a miss. The
// breaker runs on the wall clock, never on a backtest's simulated clock.
type Breaker struct {
	rdb        Client
	retryAfter time.Duration
	log        *slog.Logger
	onFailure  func(context.Context)
	explain    func(error) error
	downUntil  atomic.Int64 // wall-clock unix nanoseconds; 0 when healthy
	loggedKind atomic.Int32 // the failure last logged: 1 unavailable, 2 refused; 0 none
}

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// RetryAfter is how long Redis is bypassed after a failure.
	RetryAfter time.Duration
	// Log receives one line per outage, and one when Redis answers again.
	Log *slog.Logger
	// OnFailure, if set, is called for every absorbed failure (the Conn's
	// counters, and the operation's under ctx).
	OnFailure func(ctx context.Context)
	// Explain, if set, says what a failure means (a refused password, a
	// command the ACL denies, an untrusted certificate) without any secret.
	Explain func(error) error
}

// NewBreaker returns the breaker of the Conn whose Redis client is rdb.
func NewBreaker(rdb Client, cfg BreakerConfig) *Breaker {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Breaker{rdb: rdb, retryAfter: cfg.RetryAfter, log: log, onFailure: cfg.OnFailure, explain: cfg.Explain}
}

// Usable reports whether Redis is to be asked now.
func (b *Breaker) Usable() bool {
	until := b.downUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// DownUntil is when Redis will be asked again (zero when it is in use).
func (b *Breaker) DownUntil() time.Time {
	if until := b.downUntil.Load(); until != 0 {
		return time.Unix(0, until)
	}
	return time.Time{}
}

// Ok records a round trip Redis answered; what names the cache that made
// it, for the log line that ends an outage.
func (b *Breaker) Ok(what string) {
	if b.downUntil.Load() != 0 {
		b.downUntil.Store(0)
		b.loggedKind.Store(0)
		b.log.Info("persistgen: redis answers again; the " + what + " is back in use")
	}
}

// Fail handles an error of a Redis round trip made by the cache named
// what, in operation op: a failure of Redis turns the cache off for
// RetryAfter; the caller's own context ending does not. It reports whether
// err was a Redis failure.
func (b *Breaker) Fail(ctx context.Context, what, op string, err error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up; Redis may be fine
	}
	if b.onFailure != nil {
		b.onFailure(ctx)
	}
	wasDown := b.downUntil.Load() != 0
	b.downUntil.Store(time.Now().Add(b.retryAfter).UnixNano())
	// A cluster client learns a new slot map from MOVED and ASK replies,
	// otherwise once a minute: a dead master's slots would go on failing
	// (and be read from MongoDB) for that long after its replica took
	// over. A failure that a new map may mend (no reply at all, or
	// CLUSTERDOWN) asks for a reload; go-redis runs one at a time, in the
	// background, at most one per 200 ms. Any client with ReloadState is
	// asked (a caller's own wrapper of a cluster client, say).
	if rs, ok := b.rdb.(interface{ ReloadState(context.Context) }); ok && topologyFailure(err) {
		rs.ReloadState(ctx)
	}
	if b.explain != nil {
		err = b.explain(err)
	}
	kind := int32(1)
	if errors.Is(err, schema.ErrUnauthorized) {
		kind = 2
	}
	// Logged once per outage, and again when its kind changes (a Redis
	// that was down comes back refusing a rotated password).
	if prev := b.loggedKind.Swap(kind); !wasDown || prev != kind {
		if kind == 2 {
			b.log.Error("persistgen: redis refused the runtime; continuing against MongoDB alone: the "+what+" is bypassed", "op", op, "err", err, "retry_after", b.retryAfter)
		} else {
			b.log.Warn("persistgen: redis failed; continuing against MongoDB alone: the "+what+" is bypassed", "op", op, "err", err, "retry_after", b.retryAfter)
		}
	}
	return true
}

// guard is a mode's view of the breaker: the same breaker, its own words.
type guard struct {
	*Breaker
	what string
}

func (g guard) ok()                                            { g.Ok(g.what) }
func (g guard) fail(ctx context.Context, op string, err error) { g.Fail(ctx, g.what, op, err) }

// topologyFailure reports an error a cluster's new slot map may mend: no
// reply (a connection refused or cut, a timeout) or CLUSTERDOWN; not a
// reply refusing the command (NOPERM, WRONGTYPE, a script's error).
func topologyFailure(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		return strings.HasPrefix(re.Error(), "CLUSTERDOWN")
	}
	return true
}

// wrongType reports a reply to a command on a key holding another type.
func wrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}
