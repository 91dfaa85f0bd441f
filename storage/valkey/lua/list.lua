-- ListSessions: return {sid, fields, sid, fields, ...} for the user's live sessions, and drop
-- the ids (and leftover refresh records) of sessions that have expired. Keys are built as in
-- end_all.lua, in the set's slot.
--
-- KEYS: sessions:{uid}
-- ARGV: '<prefix>session:{uid}:{', '<prefix>refresh_token:{uid}:{'
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HGETALL', ARGV[1] .. sid .. '}')
  if #fields == 0 then
    redis.call('SREM', KEYS[1], sid)
    redis.call('DEL', ARGV[2] .. sid .. '}')
  else
    out[#out + 1] = sid
    out[#out + 1] = fields
  end
end
return out
