local proc = ARGV[1]                 -- the writing process
local mark_ms = tonumber(ARGV[2])    -- the mark's life: how late the write may still land
local copy_ms = tonumber(ARGV[3])    -- the longest copy life any process may hold
local token = ARGV[4]                -- names this write in the mark (w:<token>)

-- BEGIN marks the key before a write: until the writer ends or the mark's
-- deadline passes, readers go to MongoDB (no hit, lease, fill or copy
-- granted). Replies {epoch, writers, now, wait}: the write may leave its
-- row at END only if it was alone (writers 1) and the epoch is unchanged
-- then; it commits only after wait ms, when other processes' copies have
-- expired. A Redis younger than a mark's life, or a key another server
-- stored, reports the write not alone: a lost mark may hide another
-- writer.
distrust(mark_ms, copy_ms)
local w = redis.call('HMGET', KEYS[1], 'wc', 'wd')
if w[1] and (not w[2] or now >= tonumber(w[2])) then
  resetMark()
end
local wc = redis.call('HINCRBY', KEYS[1], 'wc', 1)
local we = redis.call('HINCRBY', KEYS[1], 'we', 1)
redis.call('HSET', KEYS[1], 'w:' .. token, 1)
local wd = now + mark_ms
local old = redis.call('HGET', KEYS[1], 'wd')
if old and tonumber(old) > wd then
  wd = tonumber(old)
end
redis.call('HSET', KEYS[1], 'wd', wd)
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx', 'lt2', 'la2', 'lx2')
mine()
keepUntil(wd)
local writers = wc
local boot = math.max(bootWait(up, copy_ms), left('dc'))
if left('dm') > 0 or (up and up < mark_ms + 1000) then
  writers = wc + 1
end
return {we, writers, now, holders(proc, boot)}
