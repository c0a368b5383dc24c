local token = ARGV[1]                -- the lease its holder gives back

-- RELEASE gives back a lease whose holder will not fill (its MongoDB read
-- failed), so that the next reader takes one at once instead of waiting.
if redis.call('HGET', KEYS[1], 'lt') == token then
  redis.call('HDEL', KEYS[1], 'lt', 'la', 'lx')
elseif redis.call('HGET', KEYS[1], 'lt2') == token then
  redis.call('HDEL', KEYS[1], 'lt2', 'la2', 'lx2')
end
return 1
