-- EndAllSessions: delete every session of a user, their refresh records and the set, and move
-- the user's session epoch on, so that a session being granted meanwhile (decided on the old
-- epoch) is refused by create.lua; returns how many sessions were alive. The per-session keys
-- are built here from the set's members; they are not declared in KEYS but share the set's
-- hash tag {uid}, so they are in its slot (and on its node) in a cluster too.
--
-- KEYS: sessions:{uid}, session_epoch:{uid}
-- ARGV: '<prefix>session:{uid}:{', '<prefix>refresh_token:{uid}:{', epoch retention (ms)
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. sid .. '}')
  redis.call('DEL', ARGV[2] .. sid .. '}')
end
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return n
