-- EndSession: delete a session and its refresh record and drop its id from the user's set.
-- Returns 1 if the session existed.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid} (one hash slot)
-- ARGV: sid
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return n
