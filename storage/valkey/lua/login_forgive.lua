-- ForgiveLoginFailure: take back one counted failure; the window (the key's TTL) keeps its end,
-- and a count that would reach zero is deleted.
--
-- KEYS: login_attempts:{email}
local n = tonumber(redis.call('GET', KEYS[1]))
if not n then
  return 0
end
if n <= 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
return redis.call('DECR', KEYS[1])
