-- TouchSession: record now as the session's last activity and move its expiry to now+idle, never
-- past its absolute expires_at; unless its last activity is already at or after now (another
-- instance touched it as late). Returns 1, or 0 when the session does not exist or has passed
-- expires_at by the caller's clock; in that case the session is ended here (session and
-- refresh record deleted, id removed from the user's set), so it cannot linger until its idle
-- TTL. Never creates the hash: a touch that arrives after the session expired revives nothing.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid} (one hash slot)
-- ARGV: now (unix ms), idle (ms), sid
local session, refresh, set = KEYS[1], KEYS[2], KEYS[3]
local now, idle, sid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local f = redis.call('HMGET', session, 'expires_at', 'last_activity_at', 'user_id')
if not f[1] then
  return 0
end
local ttl = math.min(idle, tonumber(f[1]) - now)
if ttl <= 0 then
  redis.call('DEL', session, refresh)
  redis.call('SREM', set, sid)
  return 0
end
if not f[3] then
  return 0
end
if f[2] and tonumber(f[2]) >= now then
  return 1
end
redis.call('HSET', session, 'last_activity_at', ARGV[1])
redis.call('PEXPIRE', session, ttl)
return 1
