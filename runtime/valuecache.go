package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// The value cache (schema.CacheValue) keeps each row's document in Redis,
// under the lease protocol of design/value-cache.md §7 (Mode A):
//
//   - a read runs READ: a live value is a hit (one round trip, no MongoDB);
//     a miss grants the reader a lease (a random token, for leaseTTL) or,
//     when another reader holds one, tells it to wait for that reader's
//     fill instead of reading MongoDB too (a herd costs one MongoDB read);
//   - the lease holder reads MongoDB and runs FILL, which stores the
//     document only while its token is still the key's, with an absolute
//     expiry anchored at the lease grant (before the MongoDB read): the
//     value can never outlive grant + TTL;
//   - every write, after MongoDB acknowledged it, deletes the key (voiding
//     any lease, so a fill of what was read before the write is refused),
//     and returns only once the delete is acknowledged. When Redis cannot
//     be reached it waits until TTL has passed since the commit: by then
//     every value filled from before the write has expired.
//
// So once a write has returned, no read anywhere returns what it replaced.
// Every key is one Redis hash ("pgv:{prefix:parts}", a cluster hash tag):
// v (the document, or absent), vx (its expiry, Redis ms), lt/la/lx (the
// lease token, grant time and expiry).
type valueCache struct {
	rdb       RedisClient
	breaker   *identityCache // the Conn's Redis breaker and failure log
	stats     *cacheCounters
	read      *redis.Script
	fill      *redis.Script
	release   *redis.Script
	begin     luaScript
	end       luaScript
	clear     luaScript
	tokenBase string        // random, per cache: tokens differ across processes
	tokens    atomic.Uint64 // per grant
	// dirtyFor bounds how long a write may still land after its writer
	// stopped waiting for it (2 OpTimeouts and a second).
	dirtyFor time.Duration
	leaseTTL time.Duration
}

const (
	valueHit   = 1
	valueWait  = 2
	valueLease = 3
	valueDirty = 4

	// negativeTTL bounds a cached "absent".
	negativeTTL = 2 * time.Second
	// rhoSlack is the clock-rate allowance (1%) plus a fixed margin, added
	// to a wait-out so that it covers a Redis clock running slower.
	rhoPercent = 1
	waitMargin = 10 * time.Millisecond
)

const readScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = redis.call('HMGET', KEYS[1], 'wc', 'wd')
if w[1] and tonumber(w[1]) > 0 then
  if w[2] and now < tonumber(w[2]) then
    return {4}
  end
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
end
local h = redis.call('HMGET', KEYS[1], 'v', 'vx', 'lt', 'lx')
if h[1] and h[2] and now < tonumber(h[2]) then
  return {1, h[1]}
end
if h[3] and h[4] and now < tonumber(h[4]) then
  return {2}
end
local lx = now + tonumber(ARGV[2])
redis.call('HDEL', KEYS[1], 'v', 'vx')
redis.call('HSET', KEYS[1], 'lt', ARGV[1], 'la', now, 'lx', lx)
redis.call('PEXPIREAT', KEYS[1], lx + 1000)
return {3}
`

// beginScript marks a key dirty before a write: readers go to MongoDB (no
// hit, no lease, no fill) until the writer ends or the mark's deadline
// (ARGV[1] ms from now) passes, which bounds how late a write whose
// outcome its writer could not learn may still land.
const beginScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HINCRBY', KEYS[1], 'wc', 1)
local wd = now + tonumber(ARGV[1])
local old = redis.call('HGET', KEYS[1], 'wd')
if old and tonumber(old) > wd then
  wd = tonumber(old)
end
redis.call('HSET', KEYS[1], 'wd', wd)
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
redis.call('PEXPIREAT', KEYS[1], wd + 1000)
return 1
`

// endScript ends a write that began: one writer fewer (the mark goes with
// the last), and the value and any lease are deleted.
const endScript = `
local wc = redis.call('HINCRBY', KEYS[1], 'wc', -1)
if wc <= 0 then
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
end
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
return 1
`

// clearScript deletes the value and any lease, leaving other writers'
// marks: the invalidation of a write that could not begin.
const clearScript = `
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
return 1
`

const releaseScript = `
if redis.call('HGET', KEYS[1], 'lt') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
end
return 1
`

const fillScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'lt', 'la', 'lx')
if h[1] ~= ARGV[1] or not h[3] or now >= tonumber(h[3]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
local vx = tonumber(h[2]) + tonumber(ARGV[3])
if vx <= now then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'vx', vx)
redis.call('PEXPIREAT', KEYS[1], vx + 1000)
return 1
`

// newValueCache builds a Conn's value cache. A lease lives as long as the
// holder's MongoDB read may take (opTimeout, within 1 s to 30 s), so that a
// slow read still fills; a holder whose read fails gives its lease back.
func newValueCache(rdb RedisClient, breaker *identityCache, counters *counters, opTimeout time.Duration) *valueCache {
	lease := min(max(opTimeout, time.Second), 30*time.Second)
	return &valueCache{rdb: rdb, breaker: breaker, stats: counters.cache(schema.CacheValue),
		read: redis.NewScript(readScript), fill: redis.NewScript(fillScript), release: redis.NewScript(releaseScript),
		begin: newLua(beginScript), end: newLua(endScript), clear: newLua(clearScript),
		leaseTTL: lease, dirtyFor: 2*max(opTimeout, time.Second) + time.Second, tokenBase: randomHex() + "."}
}

// valueKey is the Redis key of a value-cached row: the domain's Redis
// prefix (for ACL patterns), then the database, the collection and the
// key's canonical form (schema.Canon: the string "1" and the number 1
// differ), so that no two rows of any database share an entry.
// valueKeyPrefix is the part of a domain's value keys that does not depend
// on the key: built once per Repo.
func valueKeyPrefix(ns, redisPrefix, db, collection string) string {
	var b strings.Builder
	b.WriteString(ns + "pgv:{" + redisPrefix + ":")
	escapeValueKeyPart(&b, db+"."+collection)
	b.WriteByte(':')
	return b.String()
}

// valueKey completes a domain's value-key prefix with the key's canonical
// form (schema.Canon: the string "1" and the number 1 differ), so that no
// two rows of any database share an entry.
func valueKey(prefix string, vals []any) string {
	var b strings.Builder
	b.WriteString(prefix)
	escapeValueKeyPart(&b, schema.Canon(vals))
	b.WriteByte('}')
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

// giveBack releases a lease its holder will not fill (its read failed).
func (v *valueCache) giveBack(key, token string) {
	if v == nil || token == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := v.release.Run(ctx, v.rdb, []string{key}, token).Err(); err != nil {
		v.breaker.fail(ctx, "value release", err)
	}
}

// readOutcome is what READ decided: a hit (raw, or absent), a lease for
// this reader to fill, or a bypass (read MongoDB and fill nothing).
type readOutcome struct {
	hit    bool
	absent bool
	raw    bson.Raw
	token  string
}

// get runs READ until it answers a hit or a lease; waits for another
// reader's fill count as lease waits. Any Redis failure, or a wait that
// outlasts two lease lives, is a bypass.
func (v *valueCache) get(ctx context.Context, key string) readOutcome {
	if v == nil || !v.breaker.usable() {
		return readOutcome{}
	}
	token := v.newToken()
	deadline := time.Now().Add(2*v.leaseTTL + 100*time.Millisecond)
	for wait := time.Millisecond; ; wait = min(2*wait, 32*time.Millisecond) {
		res, err := v.read.Run(ctx, v.rdb, []string{key}, token, v.leaseTTL.Milliseconds()).Slice()
		if err != nil || len(res) == 0 {
			if err == nil {
				err = errors.New("READ answered nothing")
			}
			v.breaker.fail(ctx, "value read", err)
			return readOutcome{}
		}
		v.breaker.ok()
		switch code, _ := res[0].(int64); code {
		case valueHit:
			s, _ := res[1].(string)
			v.stats.hits.Add(1)
			if s == "A" {
				return readOutcome{hit: true, absent: true}
			}
			if len(s) > 1 && s[0] == 'D' {
				return readOutcome{hit: true, raw: bson.Raw(s[1:])}
			}
			return readOutcome{} // not ours: read MongoDB
		case valueLease:
			v.stats.misses.Add(1)
			return readOutcome{token: token}
		case valueDirty:
			v.stats.misses.Add(1)
			return readOutcome{} // a write is in flight: MongoDB, no fill
		}
		v.stats.leaseWaits.Add(1)
		if time.Now().After(deadline) {
			return readOutcome{}
		}
		select {
		case <-ctx.Done():
			return readOutcome{}
		case <-time.After(wait):
		}
	}
}

// put runs FILL with what the lease holder read: raw, or absent when nil.
func (v *valueCache) put(ctx context.Context, key, token string, raw bson.Raw, ttl time.Duration) {
	if v == nil || token == "" {
		return
	}
	val := "A"
	life := min(ttl, negativeTTL)
	if raw != nil {
		val, life = "D"+string(raw), ttl
	}
	n, err := v.fill.Run(ctx, v.rdb, []string{key}, token, val, life.Milliseconds()).Int64()
	if err != nil {
		v.breaker.fail(ctx, "value fill", err)
		return
	}
	v.breaker.ok()
	if n == 0 {
		v.stats.fillsRejected.Add(1)
	}
}

// invalidate deletes keys after a write MongoDB acknowledged at commit. It
// returns once Redis acknowledged the deletes or, when Redis cannot be
// reached, once ttl has passed since commit (every value filled from before
// the write has expired by then); retries meanwhile end the wait early.
// It fails only when ctx ends first.
func (v *valueCache) invalidate(ctx context.Context, keys []string, commit time.Time, ttl time.Duration, began, ambiguous bool) error {
	if v == nil || len(keys) == 0 {
		return nil
	}
	if began && ambiguous {
		// The write may still land: the mark keeps readers on MongoDB
		// until its deadline, so it stays; the value went at begin.
		return nil
	}
	script := v.clear
	if began {
		script = v.end
	}
	until := commit.Add(ttl + ttl*rhoPercent/100 + waitMargin)
	for attempt := 0; ; attempt++ {
		err := v.run(ctx, script, keys)
		if err == nil {
			v.breaker.ok()
			v.stats.invalidations.Add(int64(len(keys)))
			return nil
		}
		if ctx.Err() != nil {
			return &causeError{kind: ErrNotInvalidated, cause: fmt.Errorf(
				"the write is stored, but Redis could not be reached to invalidate the value cache before the caller's context ended: other processes may read the previous value until %s (%w)",
				until.Format(time.RFC3339Nano), ctx.Err())}
		}
		v.breaker.fail(ctx, "value invalidate", err)
		left := time.Until(until)
		if left <= 0 {
			v.stats.waitOuts.Add(1)
			return nil
		}
		// The next try waits for the breaker's retry time (Redis is known
		// to be down until then: no dial every few milliseconds), and at
		// least a growing backoff; never past the wait-out.
		pause := time.Duration(1<<min(attempt, 8)) * time.Millisecond
		if until := v.breaker.downUntil.Load(); until != 0 {
			pause = max(pause, time.Until(time.Unix(0, until)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(left, pause)):
		}
	}
}

// run runs a one-key script on each key: one round trip (a pipeline for
// several keys, each a command of its own, so that it works on a cluster).
func (v *valueCache) run(ctx context.Context, script luaScript, keys []string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if len(keys) == 1 {
		return script.Run(ctx, v.rdb, keys, args...).Err()
	}
	p := v.rdb.Pipeline()
	for _, k := range keys {
		p.Eval(ctx, script.src, []string{k}, args...)
	}
	_, err := p.Exec(ctx)
	return err
}

// markDirty runs BEGIN on keys before a write; false when Redis could not
// be reached (the write then falls back to waiting out the TTL if it cannot
// invalidate afterwards).
func (v *valueCache) markDirty(ctx context.Context, keys []string) bool {
	if v == nil || len(keys) == 0 || !v.breaker.usable() {
		return false
	}
	if err := v.run(ctx, v.begin, keys, v.dirtyFor.Milliseconds()); err != nil {
		v.breaker.fail(ctx, "value begin", err)
		return false
	}
	v.breaker.ok()
	return true
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// luaScript is a script and its source: pipelines send the source (EVAL),
// since a pipeline cannot fall back from EVALSHA command by command.
type luaScript struct {
	*redis.Script
	src string
}

func newLua(src string) luaScript { return luaScript{redis.NewScript(src), src} }

// newToken returns a lease token no other grant has: the cache's random
// prefix and a counter (no system call on the read path).
func (v *valueCache) newToken() string {
	return v.tokenBase + strconv.FormatUint(v.tokens.Add(1), 36)
}

// ttlOf is a domain's value-cache TTL.
func ttlOf(s *Schema) time.Duration {
	if s.CacheTTL > 0 {
		return s.CacheTTL
	}
	return schema.DefaultCacheTTL
}
