-- RotateRefresh: replace a session's refresh-token hash and touch the session, in one step so
-- that of two concurrent rotations with the same token exactly one wins.
-- Returns {'ok', fields of the session} | {'not_found'} | {'raced'} | {'reused'}.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid} (one hash slot)
-- ARGV: now (unix ms), idle (ms), sid, presented hash, next hash, grace (ms)
local session, refresh, set = KEYS[1], KEYS[2], KEYS[3]
local now, idle, sid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local presented, nexthash, grace = ARGV[4], ARGV[5], tonumber(ARGV[6])

local expires = redis.call('HGET', session, 'expires_at')
local rt = redis.call('HMGET', refresh, 'current', 'prev', 'rotated_at', 'expires_at')
local current, prev, rotated, rtexpires = rt[1], rt[2], tonumber(rt[3]), tonumber(rt[4])
if not expires or not current then
  return {'not_found'}
end
local ttl = math.min(idle, tonumber(expires) - now)
if ttl <= 0 then
  -- Past its absolute cap by the caller's clock: the session is over.
  redis.call('DEL', session, refresh)
  redis.call('SREM', set, sid)
  return {'not_found'}
end
if rtexpires and rtexpires <= now then
  -- The record outlived its expiry only by clock skew; it grants nothing.
  return {'not_found'}
end

if presented == current then
  -- HSET keeps the record's TTL: rotation never extends it.
  -- Read the session before its TTL may shrink to a millisecond (see touch.lua).
  local fields = redis.call('HGETALL', session)
  redis.call('HSET', refresh, 'current', nexthash, 'prev', current, 'rotated_at', ARGV[1])
  redis.call('HSET', session, 'last_activity_at', ARGV[1])
  redis.call('PEXPIRE', session, ttl)
  for i = 1, #fields, 2 do
    if fields[i] == 'last_activity_at' then
      fields[i + 1] = ARGV[1]
    end
  end
  return {'ok', fields}
end
if prev and presented == prev and rotated and now - rotated < grace then
  return {'raced'}
end
-- Anything else is a stolen or replayed token: end the session.
redis.call('DEL', session, refresh)
redis.call('SREM', set, sid)
return {'reused'}
