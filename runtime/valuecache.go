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

// The value cache (schema.CacheValue and schema.CacheLocal) keeps each
// row's document in Redis, under the lease protocol of
// design/value-cache.md §7 (Mode B):
//
//   - a read runs READ: a live value is a hit (one round trip, no MongoDB);
//     a miss grants the reader a lease (a token, for leaseTTL) or, when
//     another reader holds one, tells it to wait for that reader's fill
//     instead of reading MongoDB too (a herd costs one MongoDB read);
//   - the lease holder reads MongoDB and runs FILL, which stores the
//     document only while its token is still the key's, with an absolute
//     expiry anchored at the lease grant (before the MongoDB read);
//   - a write runs BEGIN before MongoDB (the key is marked dirty: no hit,
//     lease, fill or local grant until the mark goes) and END after it,
//     which lifts the mark and deletes the value, or keeps the row a
//     single-key write returned when that write was the key's only one.
//     When Redis cannot be reached the write waits until TTL has passed
//     since the commit: by then every value filled from before it expired;
//   - in local mode a hit or fill also grants the reading process a copy
//     for a short while (recorded in the row as g:<process>), and a write
//     waits, before its commit, until other processes' copies expired.
//
// So once a write has returned, no read anywhere returns what it replaced.
// Every key is one Redis hash ("pgv:{prefix:parts}", a cluster hash tag):
// v (the document, or absent), vx (its expiry, Redis ms), lt/la/lx (the
// lease), wc/wd/we/w:<token> (the writers' mark), g:<process> (copies), n
// (the run id of the Redis process that stored this state: a replica
// promoted by a failover, or the node a slot migrated to, does not trust
// what another process stored; see luaServer).
type valueCache struct {
	rdb     RedisClient
	breaker *identityCache // the Conn's Redis breaker and failure log
	read    *redis.Script
	fill    *redis.Script
	release *redis.Script
	begin   luaScript
	end     luaScript
	clear   luaScript
	local   *localTier    // the in-process tier (nil: Config.LocalCacheEntries < 0)
	tokens  atomic.Uint64 // per grant
	// proc names this Conn (random): in the local tier's grants
	// (g:<proc>) and as the prefix of its lease and write tokens.
	proc string
	// dirtyFor bounds how long a write may still land after its writer
	// stopped waiting for it (2 OpTimeouts and a second).
	dirtyFor time.Duration
	leaseTTL time.Duration
}

// valueDomain is one domain's view of the Conn's value cache: its counters
// (per mode), TTL, and in local mode the grant asked for its copies.
type valueDomain struct {
	*valueCache
	stats   *cacheCounters
	ttl     time.Duration
	localMs int64 // 0: no copies (value mode, or the Conn has no tier)
}

const (
	valueHit   = 1
	valueWait  = 2
	valueLease = 3
	valueDirty = 4

	// negativeTTL bounds a cached "absent".
	negativeTTL = 2 * time.Second
	// rhoPercent is the clock-rate allowance (1%) and waitMargin a fixed
	// margin, added to a wait so that it covers a Redis clock running
	// slower.
	rhoPercent = 1
	waitMargin = 10 * time.Millisecond
)

// luaNow is Redis's clock in ms, the one every time in a key is on, and
// keepUntil(t), which keeps the key until at least a second after t.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keepUntil(t)
  local pt = redis.call('PTTL', KEYS[1])
  if pt < 0 or now + pt < t + 1000 then
    redis.call('PEXPIREAT', KEYS[1], t + 1000)
  end
end
`

// luaGrant records an in-process copy (local mode): grant(ms, proc) sets
// the process's field g:<proc> to now + ms, capped at the value's expiry
// (a copy never outlives its value), keeps the key at least that long and
// returns the ms granted.
const luaGrant = `
local function grant(vx, ms, proc)
  local g = math.min(now + ms, vx)
  if g <= now then
    return 0
  end
  local f = 'g:' .. proc
  local old = redis.call('HGET', KEYS[1], f)
  if not old or tonumber(old) < g then
    redis.call('HSET', KEYS[1], f, g)
  end
  keepUntil(g)
  return g - now
end
`

// luaServer: uptime() is Redis's uptime in ms (a lower bound), nil where
// INFO says nothing (miniredis), or an error reply when an ACL refuses
// INFO; scripts call it first, before any write, so that such a refusal
// fails the script whole. It also reads who the server is (runid: the
// first 12 hex digits of its run id, which a restart changes, and of its
// replication id, which a promotion changes), which every script that
// stores state in a key records in the key's field n (mine()).
//
// State another server stored (n differs) is not trusted: a replica
// promoted by a failover may lack the old master's last writes (a write's
// END, a voided lease, a grant, a mark), a restart may have reloaded an
// older snapshot, a migrated slot's keys come from another node. The first
// script to touch such a key (distrust) drops its value and lease and opens
// two windows in the key: until dc (the longest copy life from now) a write
// waits as after a restart, since a lost grant's copy may still be out;
// until dm (a mark's life and a second from now) no write counts as alone,
// since a lost mark may hide another writer's later commit, so no write
// leaves its row. left(f) is what remains of window f.
// luaUp starts every script: Redis's uptime, or the ACL's refusal of INFO
// returned as the script's error.
const luaUp = `
local up = uptime()
if type(up) == 'table' then
  return up
end
`

const luaServer = `
local runid = nil
local function uptime()
  local info = redis.pcall('INFO', 'server', 'replication')
  if type(info) ~= 'string' then
    local e = info.err or ''
    if string.find(e, 'NOPERM', 1, true) or string.find(e, "can't run this command", 1, true) then
      return redis.error_reply('NOPERM the value and local cache modes need INFO (persistgen acl prints the rules): ' .. e)
    end
    info = redis.pcall('INFO', 'server') -- a Redis before 7 takes one section
    if type(info) ~= 'string' then
      return nil
    end
  end
  local id = string.match(info, 'run_id:(%x%x%x%x%x%x%x%x%x%x%x%x)')
  if id then
    runid = id .. (string.match(info, 'master_replid:(%x%x%x%x%x%x%x%x%x%x%x%x)') or '')
  end
  local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
  if up then
    return up * 1000
  end
  return nil
end
local function mine()
  if runid then
    redis.call('HSET', KEYS[1], 'n', runid)
  end
end
local function distrust(markMs, copyMs)
  if not runid then
    return
  end
  local n = redis.call('HGET', KEYS[1], 'n')
  if not n or n == runid then
    return
  end
  local h = redis.call('HMGET', KEYS[1], 'dc', 'dm')
  local dc = math.max(now + tonumber(copyMs), tonumber(h[1] or 0))
  local dm = math.max(now + tonumber(markMs) + 1000, tonumber(h[2] or 0))
  redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
  redis.call('HSET', KEYS[1], 'n', runid, 'dc', dc, 'dm', dm)
  keepUntil(dm)
end
local function left(f)
  local t = tonumber(redis.call('HGET', KEYS[1], f) or '0')
  if t > now then
    return t - now
  end
  return 0
end
`

// luaHolders: holders(proc, wait) returns how long, from now, the copies
// other processes hold may live (at least wait; 0 when none), dropping
// expired grants and this process's own (it evicted its copy): the time a
// writer waits before its commit. bootWait(up, max) is what a Redis younger
// than the longest copy life (max) adds to it, having maybe lost grants
// with a restart; one younger than a mark's life may have lost marks.
const luaHolders = `
local function holders(proc, wait)
  local all = redis.call('HGETALL', KEYS[1])
  local own = 'g:' .. proc
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'g:' then
      local g = tonumber(all[i + 1])
      if g <= now or f == own then
        redis.call('HDEL', KEYS[1], f)
      elseif g - now > wait then
        wait = g - now
      end
    end
  end
  return wait
end
local function bootWait(up, maxLocal)
  if up and maxLocal - up > 0 then
    return maxLocal - up
  end
  return 0
end
`

// luaReset lifts an expired mark: its count, deadline and writers' tokens.
const luaReset = `
local function resetMark()
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'w:' then
      redis.call('HDEL', KEYS[1], f)
    end
  end
end
`

// readScript: ARGV token, lease ms, grant ms (0: value mode), proc, a
// mark's life, the longest copy life (for distrust).
// Replies {1, v[, granted ms]} (hit), {2} (wait), {3} (lease), {4} (dirty).
const readScript = luaNow + luaServer + luaGrant + luaReset + luaUp + `
distrust(ARGV[5], ARGV[6])
local w = redis.call('HMGET', KEYS[1], 'wc', 'wd')
if w[1] and tonumber(w[1]) > 0 then
  if w[2] and now < tonumber(w[2]) then
    return {4}
  end
  resetMark()
end
local h = redis.call('HMGET', KEYS[1], 'v', 'vx', 'lt', 'lx')
if h[1] and h[2] and now < tonumber(h[2]) then
  local ms = tonumber(ARGV[3])
  if ms > 0 then
    return {1, h[1], grant(tonumber(h[2]), ms, ARGV[4])}
  end
  return {1, h[1]}
end
if h[3] and h[4] and now < tonumber(h[4]) then
  return {2}
end
local lx = now + tonumber(ARGV[2])
redis.call('HDEL', KEYS[1], 'v', 'vx')
redis.call('HSET', KEYS[1], 'lt', ARGV[1], 'la', now, 'lx', lx)
mine()
keepUntil(lx)
return {3}
`

// beginScript marks a key dirty before a write: readers go to MongoDB (no
// hit, no lease, no fill, no copy granted) until the writer ends or the
// mark's deadline (ARGV[1] ms from now) passes, which bounds how late a
// write whose outcome its writer could not learn may still land. ARGV[2]
// is the process, ARGV[3] the local grant ms (0: value mode), ARGV[4] the
// write's token (END counts a writer out only once), ARGV[5] the longest
// copy life any process may have been granted. Replies {epoch, writers,
// now, wait}: the write may install its row at END only if it was alone
// (writers 1) and the epoch is unchanged then (a Redis younger than a
// mark's life reports it not alone: a restart may have lost another
// writer's mark); it commits only after wait ms, when other processes'
// copies have expired.
const beginScript = luaNow + luaServer + luaHolders + luaReset + luaUp + `
distrust(ARGV[1], ARGV[5])
local w = redis.call('HMGET', KEYS[1], 'wc', 'wd')
if w[1] and (not w[2] or now >= tonumber(w[2])) then
  resetMark()
end
local wc = redis.call('HINCRBY', KEYS[1], 'wc', 1)
local we = redis.call('HINCRBY', KEYS[1], 'we', 1)
redis.call('HSET', KEYS[1], 'w:' .. ARGV[4], 1)
local wd = now + tonumber(ARGV[1])
local old = redis.call('HGET', KEYS[1], 'wd')
if old and tonumber(old) > wd then
  wd = tonumber(old)
end
redis.call('HSET', KEYS[1], 'wd', wd)
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
mine()
keepUntil(wd)
local writers = wc
local boot = math.max(bootWait(up, tonumber(ARGV[5])), left('dc'))
if left('dm') > 0 or (up and up < tonumber(ARGV[1]) + 1000) then
  writers = wc + 1
end
return {we, writers, now, holders(ARGV[2], boot)}
`

// endScript ends a write that began: one writer fewer (the mark goes with
// the last), any lease voided, and the value deleted, or replaced by the
// written row (ARGV[4], "" for none) when the writer was alone at BEGIN
// (ARGV[2] = 1) and still is, no write began since (epoch ARGV[1]) and its
// own mark is still there (a restart that lost it may have reset the
// epoch): its commit is then the key's last. The row expires at BEGIN's time (ARGV[3])
// plus the TTL (ARGV[5]), anchored before the commit. ARGV[6] is the grant
// ms of a local copy, ARGV[7] the process, ARGV[8] the write's token: a
// retried END (its first reply lost) counts the writer out only once;
// ARGV[9] the longest copy life. Replies {installed, granted ms, wait}:
// wait is what other processes' copies still have to live, which a restart
// that lost the mark can leave (taken before this process's own grant).
const endScript = luaNow + luaServer + luaGrant + luaHolders + luaUp + `
distrust(ARGV[10], ARGV[9])
local alien = left('dm') > 0
local wait = holders(ARGV[7], math.max(bootWait(up, tonumber(ARGV[9])), left('dc')))
local wc = tonumber(redis.call('HGET', KEYS[1], 'wc') or '0')
local marked = redis.call('HDEL', KEYS[1], 'w:' .. ARGV[8]) == 1
if marked then
  wc = redis.call('HINCRBY', KEYS[1], 'wc', -1)
end
if wc <= 0 then
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
  wc = 0
end
redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
local installed, granted = 0, 0
if not alien and marked and ARGV[4] ~= '' and ARGV[2] == '1' and wc == 0 and redis.call('HGET', KEYS[1], 'we') == ARGV[1] then
  local vx = tonumber(ARGV[3]) + tonumber(ARGV[5])
  if vx > now then
    redis.call('HSET', KEYS[1], 'v', ARGV[4], 'vx', vx)
    mine()
    keepUntil(vx)
    installed = 1
    if tonumber(ARGV[6]) > 0 then
      granted = grant(vx, tonumber(ARGV[6]), ARGV[7])
    end
  end
end
if installed == 0 then
  redis.call('HDEL', KEYS[1], 'v', 'vx')
end
return {installed, granted, wait}
`

// clearScript deletes the value and any lease, leaving other writers'
// marks: the invalidation of a write that could not begin, after its
// commit. ARGV[1] is the process, ARGV[2] the longest copy life; it
// replies with the time other processes' copies still have to live.
const clearScript = luaNow + luaServer + luaHolders + luaUp + `
distrust(ARGV[3], ARGV[2])
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx')
return holders(ARGV[1], math.max(bootWait(up, tonumber(ARGV[2])), left('dc')))
`

const releaseScript = `
if redis.call('HGET', KEYS[1], 'lt') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
end
return 1
`

// fillScript: ARGV token, value, life ms, grant ms (0: value mode), proc, a
// mark's life, the longest copy life (for distrust, which voids the lease).
// Replies -1 when refused, else the ms of a local copy granted (0: none).
const fillScript = luaNow + luaServer + luaGrant + luaUp + `
distrust(ARGV[6], ARGV[7])
local h = redis.call('HMGET', KEYS[1], 'lt', 'la', 'lx')
if h[1] ~= ARGV[1] or not h[3] or now >= tonumber(h[3]) then
  return -1
end
redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
local vx = tonumber(h[2]) + tonumber(ARGV[3])
if vx <= now then
  return -1
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'vx', vx)
mine()
keepUntil(vx)
if tonumber(ARGV[4]) > 0 then
  return grant(vx, tonumber(ARGV[4]), ARGV[5])
end
return 0
`

// newValueCache builds a Conn's value cache. A lease lives as long as the
// holder's MongoDB read may take (opTimeout, within 1 s to 30 s), so that a
// slow read still fills; a holder whose read fails gives its lease back.
func newValueCache(rdb RedisClient, breaker *identityCache, opTimeout time.Duration, localEntries int) *valueCache {
	lease := min(max(opTimeout, time.Second), 30*time.Second)
	proc := randomHex()
	return &valueCache{rdb: rdb, breaker: breaker,
		read: redis.NewScript(readScript), fill: redis.NewScript(fillScript), release: redis.NewScript(releaseScript),
		begin: newLua(beginScript), end: newLua(endScript), clear: newLua(clearScript), local: newLocalTier(localEntries),
		leaseTTL: lease, dirtyFor: 2*max(opTimeout, time.Second) + time.Second, proc: proc}
}

// domain returns the view of the cache for a domain of s's mode.
func (v *valueCache) domain(s *Schema, counters *counters) *valueDomain {
	d := &valueDomain{valueCache: v, stats: counters.cache(s.Mode()), ttl: ttlOf(s)}
	if s.Mode() == schema.CacheLocal && v.local != nil {
		d.localMs = localTTLOf(s).Milliseconds()
	}
	return d
}

// valueKeyPrefix is the part of a domain's value keys that does not depend
// on the key, built once per Repo: the Conn's KeyPrefix, the domain's Redis
// prefix (for ACL patterns), the database and the collection.
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
func (v *valueDomain) giveBack(key, token string) {
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
	stamp  uint64               // the local tier's stamp before READ (local mode)
	dec    *atomic.Pointer[any] // a local copy's decoded record
}

// get answers from the in-process tier (local mode), else runs READ until
// it answers a hit or a lease; waits for another reader's fill count as
// lease waits. Any Redis failure, or a wait that outlasts two lease lives,
// is a bypass. A hit that carries a grant leaves a copy in the process.
func (v *valueDomain) get(ctx context.Context, key string) readOutcome {
	if v == nil {
		return readOutcome{}
	}
	if v.localMs > 0 {
		if e, ok := v.local.get(key); ok {
			v.stats.localHits.Add(1)
			return readOutcome{hit: true, absent: e.absent, raw: e.raw, dec: e.dec}
		}
	}
	if !v.breaker.usable() {
		return readOutcome{}
	}
	token := v.newToken()
	deadline := time.Now().Add(2*v.leaseTTL + 100*time.Millisecond)
	for wait := time.Millisecond; ; wait = min(2*wait, 32*time.Millisecond) {
		var stamp uint64
		if v.localMs > 0 {
			stamp = v.local.stamp()
		}
		send := time.Now()
		res, err := v.read.Run(ctx, v.rdb, []string{key}, token, v.leaseTTL.Milliseconds(), v.localMs, v.proc, v.dirtyFor.Milliseconds(), maxLocalMs).Slice()
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
			out := readOutcome{hit: true}
			switch {
			case s == "A":
				out.absent = true
			case len(s) > 1 && s[0] == 'D':
				out.raw = bson.Raw(s[1:])
			default:
				return readOutcome{} // not ours: read MongoDB
			}
			v.stats.hits.Add(1)
			if len(res) > 2 {
				if ms, _ := res[2].(int64); ms > 0 {
					v.local.install(key, stamp, newLocalEntry(out.raw, localLife(send, ms)))
				}
			}
			return out
		case valueLease:
			v.stats.misses.Add(1)
			return readOutcome{token: token, stamp: stamp}
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

// put runs FILL with what the lease holder of got read: raw, or absent
// when nil. A fill that carries a grant leaves a copy in the process.
func (v *valueDomain) put(ctx context.Context, key string, got readOutcome, raw bson.Raw) {
	if v == nil || got.token == "" {
		return
	}
	val := "A"
	life := min(v.ttl, negativeTTL)
	if raw != nil {
		val, life = "D"+string(raw), v.ttl
	}
	send := time.Now()
	n, err := v.fill.Run(ctx, v.rdb, []string{key}, got.token, val, life.Milliseconds(), v.localMs, v.proc, v.dirtyFor.Milliseconds(), maxLocalMs).Int64()
	if err != nil {
		v.breaker.fail(ctx, "value fill", err)
		return
	}
	v.breaker.ok()
	switch {
	case n < 0:
		v.stats.fillsRejected.Add(1)
	case n > 0: // granted: local mode only
		v.local.install(key, got.stamp, newLocalEntry(raw, localLife(send, n)))
	}
}

// cacheWrite is a write's side in the value cache: its keys, computed
// once, whether marking them dirty before the write succeeded, and what
// BEGIN said of the first key (for the write-through install of a
// single-key write).
type cacheWrite struct {
	keys  []string
	token string // names the write in the keys' marks
	began bool
	// unsent: the caller's ctx ended before the write was sent (during
	// the wait for other processes' copies): its outcome is known.
	unsent bool
	epoch  int64
	alone  bool
	t0     int64 // BEGIN's Redis time, ms
}

// beginWrite runs BEGIN on keys before a write: it marks them dirty (see
// beginScript) and, in local mode, evicts and fences this process's copies
// and then waits until other processes' copies have expired. Redis out of
// reach leaves began false (the write then waits out the TTL if it cannot
// invalidate afterwards). A ctx that ends during the wait ends it: the
// write that follows then fails, and its marks stay until their deadline.
func (v *valueDomain) beginWrite(ctx context.Context, keys []string) cacheWrite {
	w := cacheWrite{keys: keys, token: v.newToken()}
	if v.local != nil {
		// Every write through the Conn fences its tier, whatever the
		// domain's mode: another Repo of this Conn may hold copies of the
		// same rows in local mode.
		v.local.begin(keys)
	}
	if !v.breaker.usable() {
		return w
	}
	res, err := v.run(ctx, v.begin, keys, v.dirtyFor.Milliseconds(), v.proc, v.localMs, w.token, maxLocalMs)
	if err != nil {
		v.breaker.fail(ctx, "value begin", err)
		return w
	}
	v.breaker.ok()
	w.began = true
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
	return w
}

// maxLocalMs is the longest copy life any process may have been granted
// (schema.MaxLocalTTL): what a writer waits for after a Redis restart,
// whatever its own domain's copy life.
const maxLocalMs = int64(schema.MaxLocalTTL / time.Millisecond)

// waitCopies sleeps until copies Redis said live ms more have expired,
// allowing for the clock-rate difference; false when ctx ended first.
func (v *valueDomain) waitCopies(ctx context.Context, ms int64) bool {
	if ms <= 0 {
		return true
	}
	v.stats.writerWaits.Add(1)
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

// endWrite ends a write in the value cache after MongoDB answered it (werr
// is its error, which wins). Began: END lifts the mark and deletes the
// value, or, for a single key whose write returned its row (row), keeps
// that row when the write was the key's last (see endScript); when the
// outcome is unknown (werr) the mark stays until its deadline. Not began:
// CLEAR deletes the value. Either returns only once Redis acknowledged and
// other processes' copies have expired or, when Redis cannot be reached,
// once the TTL has passed since the commit (every value and copy made from
// before the write has expired by then); retries meanwhile end the wait
// early. It fails only when ctx ends first.
func (v *valueDomain) endWrite(ctx context.Context, w cacheWrite, werr error, row bson.Raw) error {
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
		if _, err := v.runEnd(context.WithoutCancel(ctx), w, "", false); err != nil {
			v.breaker.fail(ctx, "value end", err)
		}
		return werr
	}
	commit := time.Now()
	until := commit.Add(v.ttl + v.ttl*rhoPercent/100 + waitMargin)
	val := "" // the row to keep, encoded as FILL stores it
	if w.began && row != nil && len(w.keys) == 1 {
		val = "D" + string(row)
	}
	for attempt := 0; ; attempt++ {
		var res []any
		var err error
		send := time.Now()
		if w.began {
			res, err = v.runEnd(ctx, w, val, w.alone)
		} else {
			res, err = v.run(ctx, v.clear, w.keys, v.proc, maxLocalMs, v.dirtyFor.Milliseconds())
		}
		if err == nil {
			v.breaker.ok()
			v.stats.invalidations.Add(int64(len(w.keys)))
			var wait int64
			for i, r := range res {
				if !w.began {
					n, _ := r.(int64)
					wait = max(wait, n)
					continue
				}
				f := ints(r, 3)
				if i == 0 && f[0] == 1 {
					v.stats.installs.Add(1)
					if f[1] > 0 {
						e := newLocalEntry(row, localLife(send, f[1]))
						own = &e
					}
				}
				wait = max(wait, f[2])
			}
			if !v.waitCopies(ctx, wait) && werr == nil {
				own = nil
				return (&causeError{kind: ErrNotInvalidated, cause: fmt.Errorf(
					"the write is stored, but the caller's context ended while other processes' in-process copies of the previous value were still live: they may read it until %s (%w)",
					time.Now().Add(time.Duration(wait)*time.Millisecond).Format(time.RFC3339Nano), ctx.Err())})
			}
			return werr
		}
		if ctx.Err() != nil {
			if werr != nil {
				return werr
			}
			return (&causeError{kind: ErrNotInvalidated, cause: fmt.Errorf(
				"the write is stored, but Redis could not be reached to invalidate the value cache before the caller's context ended: other processes may read the previous value until %s (%w)",
				until.Format(time.RFC3339Nano), ctx.Err())})
		}
		v.breaker.fail(ctx, "value invalidate", err)
		left := time.Until(until)
		if left <= 0 {
			v.stats.waitOuts.Add(1)
			return werr
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

// runEnd runs END on w's keys, keeping val (or nothing when "") if alone.
func (v *valueDomain) runEnd(ctx context.Context, w cacheWrite, val string, alone bool) ([]any, error) {
	a := "0"
	if alone {
		a = "1"
	}
	return v.run(ctx, v.end, w.keys, w.epoch, a, w.t0, val, v.ttl.Milliseconds(), v.localMs, v.proc, w.token, maxLocalMs, v.dirtyFor.Milliseconds())
}

// ints reads a script's array reply of n integers (missing ones are 0).
func ints(r any, n int) []int64 {
	out := make([]int64, n)
	a, _ := r.([]any)
	for i := range min(n, len(a)) {
		out[i], _ = a[i].(int64)
	}
	return out
}

// run runs a one-key script on each key and returns each reply: one round
// trip (a pipeline for several keys, each a command of its own, so that it
// works on a cluster).
func (v *valueCache) run(ctx context.Context, script luaScript, keys []string, args ...any) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if len(keys) == 1 {
		r, err := script.Run(ctx, v.rdb, keys, args...).Result()
		return []any{r}, err
	}
	p := v.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Eval(ctx, script.src, []string{k}, args...)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]any, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
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
	return v.proc + "." + strconv.FormatUint(v.tokens.Add(1), 36)
}

// localTTLOf is a local-mode domain's copy life.
func localTTLOf(s *Schema) time.Duration {
	if s.LocalTTL > 0 {
		return s.LocalTTL
	}
	return schema.DefaultLocalTTL
}

// ttlOf is a domain's value-cache TTL.
func ttlOf(s *Schema) time.Duration {
	if s.CacheTTL > 0 {
		return s.CacheTTL
	}
	return schema.DefaultCacheTTL
}
