-- RecordLoginFailure: count one failure; the first failure of a series starts the window, later
-- ones do not move it (a fixed window, not a sliding one). Returns the count.
--
-- KEYS: login_attempts:{email}
-- ARGV: window (ms)
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
