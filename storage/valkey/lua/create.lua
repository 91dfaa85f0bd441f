-- CreateSession: store the session hash and its refresh record and add the id to the user's set,
-- all or nothing, provided the user's session epoch is still the one the session was decided
-- on (an EndAllSessions in between moved it: the grant is stale). A session whose TTL is not
-- positive is already over and is not stored.
--
-- KEYS: session:{uid}:{sid}, refresh_token:{uid}:{sid}, sessions:{uid}, session_epoch:{uid}
--       (one hash slot)
-- ARGV: sid, session TTL (ms), refresh TTL (ms), set TTL (ms), expected epoch, n,
--       n session field/value strings, then the refresh record's field/value strings
-- Returns 1 when stored, 0 when already over, -1 when the epoch has moved on.
local session, refresh, set, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sid = ARGV[1]
local sttl, rttl, setttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[6])

if (tonumber(redis.call('GET', epoch)) or 0) ~= tonumber(ARGV[5]) then
  return -1
end
-- A session id is created once; should it be reused, nothing of the old one may survive.
redis.call('DEL', session, refresh)
if sttl <= 0 then
  return 0
end
local sf, rf = {}, {}
for i = 7, 6 + n do sf[#sf + 1] = ARGV[i] end
for i = 7 + n, #ARGV do rf[#rf + 1] = ARGV[i] end

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
