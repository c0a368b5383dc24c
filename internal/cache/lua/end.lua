local proc = ARGV[1]                 -- the writing process
local mark_ms = tonumber(ARGV[2])    -- a write mark's life
local copy_ms = tonumber(ARGV[3])    -- the longest copy life any process may hold
local token = ARGV[4]                -- the write's name in the mark
local epoch = ARGV[5]                -- the epoch BEGIN replied
local alone = ARGV[6] == '1'         -- BEGIN found no other writer
local began_at = tonumber(ARGV[7])   -- BEGIN's time (Redis ms)
local row = ARGV[8]                  -- the row the write left (D<document>), '' for none
local ttl_ms = tonumber(ARGV[9])     -- the value's life, from began_at
local grant_ms = tonumber(ARGV[10])  -- a local copy's life asked for (0: value mode)

-- END ends a write that began: one writer fewer (the mark goes with the
-- last), any lease voided, and the value deleted, or replaced by row when
-- the writer was alone at BEGIN and still is, no write began since (the
-- epoch) and its own mark is still there (a restart that lost it may have
-- reset the epoch): its commit is then the key's last. A retried END (its
-- first reply lost) counts the writer out only once. An END that finds its
-- mark gone advances the epoch, so that no writer who began after the
-- loss leaves a row. Replies {installed,
-- granted ms, wait}: wait is what other processes' copies still have to
-- live, which a restart that lost the mark can leave.
distrust(mark_ms, copy_ms)
local alien = left('dm') > 0
local wait = holders(proc, math.max(bootWait(up, copy_ms), left('dc')))
local wc = tonumber(redis.call('HGET', KEYS[1], 'wc') or '0')
local marked = redis.call('HDEL', KEYS[1], 'w:' .. token) == 1
if marked then
  wc = redis.call('HINCRBY', KEYS[1], 'wc', -1)
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  -- The mark is gone: the key was deleted, flushed or evicted since BEGIN
  -- (or this END is a retry). A writer that began since may believe it
  -- was alone, its epoch counted again from 1: a new epoch keeps its END
  -- from leaving a row this write's commit may have outdated. (A key
  -- that is gone has no such writer, and is not made again.)
  redis.call('HINCRBY', KEYS[1], 'we', 1)
end
if wc <= 0 then
  redis.call('HDEL', KEYS[1], 'wc', 'wd')
  wc = 0
end
redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx', 'lt2', 'la2', 'lx2')
local installed, granted = 0, 0
if not alien and marked and row ~= '' and alone and wc == 0 and redis.call('HGET', KEYS[1], 'we') == epoch then
  local vx = began_at + ttl_ms
  if vx > now then
    redis.call('HSET', KEYS[1], 'v', row, 'vx', vx)
    mine()
    keepUntil(vx)
    installed = 1
    if grant_ms > 0 then
      granted = grant(vx, grant_ms, proc)
    end
  end
end
if installed == 0 then
  redis.call('HDEL', KEYS[1], 'v', 'vx')
end
return {installed, granted, wait}
