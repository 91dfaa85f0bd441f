-- CreateSession: store the session hash and its refresh record and add the id to the user's set,
-- all or nothing. A session whose TTL is not positive is already over and is not stored.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid} (one hash slot)
-- ARGV: sid, session TTL (ms), refresh TTL (ms), set TTL (ms), n,
--       n session field/value strings, then the refresh record's field/value strings
local session, refresh, set = KEYS[1], KEYS[2], KEYS[3]
local sid = ARGV[1]
local sttl, rttl, setttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])

-- A session id is created once; should it be reused, nothing of the old one may survive.
redis.call('DEL', session, refresh)
if sttl <= 0 then
  return 0
end
local sf, rf = {}, {}
for i = 6, 5 + n do sf[#sf + 1] = ARGV[i] end
for i = 6 + n, #ARGV do rf[#rf + 1] = ARGV[i] end

redis.call('HSET', session, unpack(sf))
redis.call('PEXPIRE', session, sttl)
if rttl > 0 then
  redis.call('HSET', refresh, unpack(rf))
  redis.call('PEXPIRE', refresh, rttl)
end
redis.call('SADD', set, sid)
-- The set lives as long as its longest-lived member: only ever lengthen its TTL.
-- (PTTL is -1 for a key without expiry, -2 for a new one; both are lengthened.)
if redis.call('PTTL', set) < setttl then
  redis.call('PEXPIRE', set, setttl)
end
return 1
