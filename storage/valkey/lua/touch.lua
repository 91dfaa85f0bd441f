-- Authenticate: touch a session. Records now as its last activity and moves its expiry to
-- now+idle, never past its absolute expires_at. Returns the session hash's fields, or nil when
-- the session does not exist or has passed expires_at by the caller's clock; in that case the
-- session is ended here (session and refresh record deleted, id removed from the user's set),
-- so it cannot linger until its idle TTL.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid} (one hash slot)
-- ARGV: now (unix ms), idle (ms), sid
local session, refresh, set = KEYS[1], KEYS[2], KEYS[3]
local now, idle, sid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

-- One HGETALL serves the checks and the reply (the hash has nine fields). Read before changing:
-- with a TTL of a millisecond or two, the key may be gone again by the time a read after
-- PEXPIRE would run.
local fields = redis.call('HGETALL', session)
local expires, uid, last
for i = 1, #fields, 2 do
  local f = fields[i]
  if f == 'expires_at' then
    expires = fields[i + 1]
  elseif f == 'user_id' then
    uid = true
  elseif f == 'last_activity_at' then
    last = i + 1
  end
end
if not expires then
  return false
end
local ttl = math.min(idle, tonumber(expires) - now)
if ttl <= 0 then
  redis.call('DEL', session, refresh)
  redis.call('SREM', set, sid)
  return false
end
if not uid then
  return false
end
redis.call('HSET', session, 'last_activity_at', ARGV[1])
redis.call('PEXPIRE', session, ttl)
if last then
  fields[last] = ARGV[1]
end
return fields
