local proc = ARGV[1]                 -- the writing process
local mark_ms = tonumber(ARGV[2])    -- a write mark's life
local copy_ms = tonumber(ARGV[3])    -- the longest copy life any process may hold

-- CLEAR deletes the value and any lease, leaving other writers' marks: the
-- invalidation of a write that could not BEGIN, after its commit. Replies
-- with the time other processes' copies still have to live.
distrust(mark_ms, copy_ms)
redis.call('HDEL', KEYS[1], 'v', 'vx', 'lt', 'la', 'lx', 'lt2', 'la2', 'lx2')
return holders(proc, math.max(bootWait(up, copy_ms), left('dc')))
