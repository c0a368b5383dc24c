local proc = ARGV[1]                 -- the reading process (its copies' name)
local mark_ms = tonumber(ARGV[2])    -- a write mark's life
local copy_ms = tonumber(ARGV[3])    -- the longest copy life any process may hold
local token = ARGV[4]                -- the lease this reader would hold
local lease_ms = tonumber(ARGV[5])   -- the lease's life
local grant_ms = tonumber(ARGV[6])   -- a local copy's life asked for (0: value mode)
local wait_ms = tonumber(ARGV[7])    -- how long a lease makes other readers wait

-- READ: a live value is a hit {1, value[, granted ms]}; a key marked by a
-- writer is {4} (read MongoDB, fill nothing); another reader's lease
-- granted less than wait_ms ago is {2} (wait for its fill); otherwise this
-- reader gets the lease {3}, taking it over from a holder that has not
-- filled in wait_ms (gone, or slow: the last one taken over may still
-- fill, see fill.lua). So no reader waits on a lease longer than wait_ms,
-- whether its holder died, or never learnt it had the lease (the reply
-- was lost).
distrust(mark_ms, copy_ms)
local w = redis.call('HMGET', KEYS[1], 'wc', 'wd')
if w[1] and tonumber(w[1]) > 0 then
  if w[2] and now < tonumber(w[2]) then
    return {4}
  end
  resetMark()
end
local h = redis.call('HMGET', KEYS[1], 'v', 'vx', 'lt', 'lx', 'la')
if h[1] and h[2] and now < tonumber(h[2]) then
  if grant_ms > 0 then
    return {1, h[1], grant(tonumber(h[2]), grant_ms, proc)}
  end
  return {1, h[1]}
end
if h[3] and h[4] and now < tonumber(h[4]) and now < tonumber(h[5] or 0) + wait_ms then
  return {2}
end
local lx = now + lease_ms
redis.call('HDEL', KEYS[1], 'v', 'vx')
if h[3] and h[4] and now < tonumber(h[4]) then
  -- Taken over from a live holder: it may only be slow (MongoDB slower
  -- than wait_ms), so its fill stays welcome, anchored at its own grant
  -- (a write's BEGIN voids it with the rest).
  redis.call('HSET', KEYS[1], 'lt2', h[3], 'la2', h[5], 'lx2', h[4])
end
redis.call('HSET', KEYS[1], 'lt', token, 'la', now, 'lx', lx)
mine()
keepUntil(lx)
return {3}
