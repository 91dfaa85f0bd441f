-- Limiter, token bucket (GCRA, as limit_token_bucket.lua), for several buckets of one request
-- that share a hash slot (one subject's global and per-operation buckets): one script call
-- instead of one per bucket, and all-or-nothing: the buckets are charged only if every one
-- allows. Repeated keys see each other.
--
-- KEYS: the buckets (one hash slot)
-- ARGV: interval (µs per token), limit, cost, for each key in turn
-- Returns, per key, {allowed (1 or 0), remaining, reset (µs), retry after (µs), charged (1 or 0)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, out, all = {}, {}, true
for i, key in ipairs(KEYS) do
  local interval, limit, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local span = limit * interval
  local tat = tats[key]
  if tat == nil then
    local v = redis.pcall('GET', key)
    if type(v) == 'table' and v.err then
      redis.call('DEL', key) -- another algorithm's bucket: start over
      v = false
    end
    tat = v and tonumber(v) or now
  end
  if tat < now then
    tat = now
  end
  local new = tat + cost * interval
  if new - now > span then
    local remaining = math.floor((span - (tat - now)) / interval)
    if remaining < 0 then
      remaining = 0
    end
    out[i] = {0, remaining, tat - now, new - span - now, 0}
    all = false
    tats[key] = tat
  else
    out[i] = {1, math.floor((span - (new - now)) / interval), new - now, 0, 1}
    tats[key] = new
  end
end
if all then
  for key, tat in pairs(tats) do
    redis.call('SET', key, string.format('%d', tat), 'PX', string.format('%d', math.ceil((tat - now) / 1000)))
  end
else
  -- Nothing is charged: report the allowing buckets as they stand.
  for i, key in ipairs(KEYS) do
    if out[i][1] == 1 then
      out[i][2] = out[i][2] + tonumber(ARGV[3 * i])
      out[i][5] = 0
    end
  end
end
return out
