local proc = ARGV[1]                 -- the filling process (its copies' name)
local mark_ms = tonumber(ARGV[2])    -- a write mark's life
local copy_ms = tonumber(ARGV[3])    -- the longest copy life any process may hold
local token = ARGV[4]                -- the lease READ granted
local value = ARGV[5]                -- what MongoDB answered: D<document> or A (absent)
local life_ms = tonumber(ARGV[6])    -- the value's life, from the lease's grant
local grant_ms = tonumber(ARGV[7])   -- a local copy's life asked for (0: value mode)

-- FILL stores the value only while the token is still the key's lease, or
-- the last one taken over (no write came between: BEGIN voids both), with
-- an expiry anchored at its grant, before the MongoDB read. Replies -1
-- when refused, else the ms of a local copy granted (0: none).
distrust(mark_ms, copy_ms)
local h = redis.call('HMGET', KEYS[1], 'lt', 'la', 'lx')
if h[1] ~= token then
  -- The last lease taken over (its holder was slow, not gone) may fill
  -- too, anchored at its own grant; the current holder's lease stays.
  h = redis.call('HMGET', KEYS[1], 'lt2', 'la2', 'lx2')
  if h[1] ~= token or not h[3] or now >= tonumber(h[3]) then
    return -1
  end
  redis.call('HDEL', KEYS[1], 'lt2', 'la2', 'lx2')
elseif not h[3] or now >= tonumber(h[3]) then
  return -1
else
  redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
end
local vx = tonumber(h[2]) + life_ms
if vx <= now then
  return -1
end
redis.call('HSET', KEYS[1], 'v', value, 'vx', vx)
mine()
keepUntil(vx)
if grant_ms > 0 then
  return grant(vx, grant_ms, proc)
end
return 0
