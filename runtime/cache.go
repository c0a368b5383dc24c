package runtime

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// RedisClient is the part of go-redis the runtime uses. *redis.Client,
// *redis.ClusterClient and *redis.Ring all satisfy it; batches are pipelines
// of single-key commands so that they work on a cluster too.
type RedisClient interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
	Ping(ctx context.Context) *redis.StatusCmd
	Pipeline() redis.Pipeliner
	AddHook(hook redis.Hook)
	Close() error
	// Scripter runs the value cache's Lua scripts (EVALSHA, EVAL).
	redis.Scripter
}

// identityCache is the Redis side: key -> 24-hex ObjectID. Every failure is
// absorbed: it is counted, logged, and the cache is bypassed for a while
// (retryAfter) so that a dead Redis costs one timeout, not one per call.
//
// What is not a Redis failure, and never turns the cache off: the caller's
// own cancelled or expired context (the caller gave up, Redis did not), and
// a key of another type (WRONGTYPE, say another program's hash under an
// identity key), which reads as a miss and is overwritten by the next
// backfill. The breaker runs on the wall clock, never on Config.Now (a
// backtest's simulated clock).
type identityCache struct {
	rdb        RedisClient
	ns         string
	retryAfter time.Duration
	log        *slog.Logger
	counters   *counters
	downUntil  atomic.Int64 // wall-clock unix nanoseconds; 0 when healthy
	loggedKind atomic.Int32 // the failure last logged: 1 unavailable, 2 refused; 0 none
	// explain says what a failure means (a refused password, a command
	// the ACL denies, an untrusted certificate) without any secret.
	explain func(error) error
}

func (c *identityCache) usable() bool {
	if c == nil {
		return false
	}
	until := c.downUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

func (c *identityCache) ok() {
	if c.downUntil.Load() != 0 {
		c.downUntil.Store(0)
		c.loggedKind.Store(0)
		c.log.Info("persistgen: redis answers again; identity cache back in use")
	}
}

// fail handles an error of a Redis round trip: a failure of Redis turns the
// cache off for retryAfter; the caller's own context ending does not. It
// reports whether err was a Redis failure.
func (c *identityCache) fail(ctx context.Context, op string, err error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up; Redis may be fine
	}
	c.counters.redisFailures.Add(1)
	if tr, _ := ctx.Value(trackKey{}).(*tracking); tr != nil && tr.op != nil {
		tr.op.redisFailures.Add(1)
	}
	wasDown := c.downUntil.Load() != 0
	c.downUntil.Store(time.Now().Add(c.retryAfter).UnixNano())
	// A cluster client learns a new slot map from MOVED and ASK replies,
	// otherwise once a minute: a dead master's slots would go on failing
	// (and be read from MongoDB) for that long after its replica took
	// over. A failure that a new map may mend (no reply at all, or
	// CLUSTERDOWN) asks for a reload; go-redis runs one at a time, in the
	// background, at most one per 200 ms. Any client with ReloadState is
	// asked (a caller's own wrapper of a cluster client, say).
	if rs, ok := c.rdb.(interface{ ReloadState(context.Context) }); ok && topologyFailure(err) {
		rs.ReloadState(ctx)
	}
	if c.explain != nil {
		err = c.explain(err)
	}
	kind := int32(1)
	if errors.Is(err, ErrUnauthorized) {
		kind = 2
	}
	// Logged once per outage, and again when its kind changes (a Redis
	// that was down comes back refusing a rotated password).
	if prev := c.loggedKind.Swap(kind); !wasDown || prev != kind {
		if kind == 2 {
			c.log.Error("persistgen: redis refused the runtime; continuing against MongoDB alone", "op", op, "err", err, "retry_after", c.retryAfter)
		} else {
			c.log.Warn("persistgen: redis failed; continuing against MongoDB alone", "op", op, "err", err, "retry_after", c.retryAfter)
		}
	}
	return true
}

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

// get returns the identity stored under key, if any and well formed.
func (c *identityCache) get(ctx context.Context, key string) (bson.ObjectID, bool) {
	if !c.usable() {
		return bson.ObjectID{}, false
	}
	s, err := c.rdb.Get(ctx, key).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || wrongType(err) {
			c.ok()
		} else {
			c.fail(ctx, "get", err)
		}
		return bson.ObjectID{}, false
	}
	c.ok()
	id, err := bson.ObjectIDFromHex(s)
	return id, err == nil
}

// set stores one identity (no expiry, as upstream).
func (c *identityCache) set(ctx context.Context, key string, id bson.ObjectID) {
	if !c.usable() {
		return
	}
	if err := c.rdb.Set(ctx, key, id.Hex(), 0).Err(); err != nil {
		c.fail(ctx, "set", err)
		return
	}
	c.ok()
}

// getMany reads many identities in one pipeline; found[i] is false for a
// key without a well-formed identity.
func (c *identityCache) getMany(ctx context.Context, keys []string) (ids []bson.ObjectID, found []bool) {
	ids = make([]bson.ObjectID, len(keys))
	found = make([]bool, len(keys))
	if len(keys) == 0 || !c.usable() {
		return ids, found
	}
	p := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Get(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) {
		c.fail(ctx, "pipeline get", err)
		return ids, found
	}
	c.ok()
	for i, cmd := range cmds {
		if s, err := cmd.Result(); err == nil {
			if id, err := bson.ObjectIDFromHex(s); err == nil {
				ids[i], found[i] = id, true
			}
		}
	}
	return ids, found
}

type identity struct {
	key string
	id  bson.ObjectID
}

// writeMany sets and deletes identities in one pipeline.
func (c *identityCache) writeMany(ctx context.Context, set []identity, del []string) {
	if (len(set) == 0 && len(del) == 0) || !c.usable() {
		return
	}
	p := c.rdb.Pipeline()
	for _, e := range set {
		p.Set(ctx, e.key, e.id.Hex(), 0)
	}
	for _, k := range del {
		p.Del(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		c.fail(ctx, "pipeline set", err)
		return
	}
	c.ok()
}

func (c *identityCache) del(ctx context.Context, key string) {
	if !c.usable() {
		return
	}
	if err := c.rdb.Del(ctx, key).Err(); err != nil {
		c.fail(ctx, "del", err)
		return
	}
	c.ok()
}
