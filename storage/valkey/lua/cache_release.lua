-- Gives back a lease whose fill failed, if the key still holds it.
-- KEYS[1] the key; ARGV[1] the lease token. Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
