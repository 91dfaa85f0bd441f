-- Stores a filled cache value if the key still holds the filler's lease: an invalidation
-- (DEL) or an expired lease in between means the value may be stale, so it is refused.
-- KEYS[1] the key; ARGV[1] the lease token, ARGV[2] the value, ARGV[3] its TTL in ms.
-- Returns 1 when stored, 0 when refused.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
