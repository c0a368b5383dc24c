-- The functions every script but release.lua shares, prepended to each
-- (see scripts.go). Every time in a key is on Redis's clock, in ms.
--
-- now: Redis's clock. keepUntil(t) keeps the key until at least a second
-- after t.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keepUntil(t)
  local pt = redis.call('PTTL', KEYS[1])
  if pt < 0 or now + pt < t + 1000 then
    redis.call('PEXPIREAT', KEYS[1], t + 1000)
  end
end

-- uptime() is Redis's uptime in ms (a lower bound), nil where INFO says
-- nothing (an emulator), or an error reply when an ACL refuses INFO. It
-- also reads who the server is (runid: the first 12 hex digits of its run
-- id, which a restart changes, and of its replication id, which a
-- promotion changes), which every script that stores state in a key
-- records in the key's field n (mine()).
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

-- State another server stored (n differs) is not trusted: a replica
-- promoted by a failover may lack the old master's last writes (a write's
-- END, a voided lease, a grant, a mark), a restart may have reloaded an
-- older snapshot, a migrated slot's keys come from another node. The first
-- script to touch such a key (distrust) drops its value and lease and
-- opens two windows in the key: until dc (the longest copy life from now)
-- a write waits as after a restart, since a lost grant's copy may still be
-- out; until dm (a mark's life and a second from now) no write counts as
-- alone, since a lost mark may hide another writer's later commit, so no
-- write leaves its row. left(f) is what remains of window f.
local function distrust(mark_ms, copy_ms)
  if not runid then
    return
  end
  local n = redis.call('HGET', KEYS[1], 'n')
  if not n or n == runid then
    return
  end
  local h = redis.call('HMGET', KEYS[1], 'dc', 'dm')
  local dc = math.max(now + copy_ms, tonumber(h[1] or 0))
  local dm = math.max(now + mark_ms + 1000, tonumber(h[2] or 0))
  redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx', 'lt2', 'la2', 'lx2')
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

-- grant(vx, ms, proc) records an in-process copy (local mode): it sets the
-- process's field g:<proc> to now + ms, capped at the value's expiry vx (a
-- copy never outlives its value), keeps the key at least that long and
-- returns the ms granted.
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

-- holders(proc, wait) returns how long, from now, the copies other
-- processes hold may live (at least wait; 0 when none), dropping expired
-- grants and this process's own (it evicted its copy): the time a writer
-- waits before its commit. bootWait(up, copy_ms) is what a Redis younger
-- than the longest copy life adds to it, having maybe lost grants with a
-- restart.
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
local function bootWait(up, copy_ms)
  if up and copy_ms - up > 0 then
    return copy_ms - up
  end
  return 0
end

-- resetMark lifts an expired mark: its count, deadline and writers' tokens.
local function resetMark()
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'w:' then
      redis.call('HDEL', KEYS[1], f)
    end
  end
end

-- Every script starts by asking INFO, before it writes anything, so that an
-- ACL's refusal fails the script whole.
local up = uptime()
if type(up) == 'table' then
  return up
end
