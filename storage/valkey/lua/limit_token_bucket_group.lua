-- Limiter, token bucket (GCRA, as limit_token_bucket.lua), for several buckets of one request:
-- one script call instead of one per bucket, and all-or-nothing: the buckets are charged only
-- if every one allows. Repeated keys see each other. It runs on every request, so it reads
-- with one MGET and returns one flat array (each redis.call and each nested table costs).
--
-- KEYS: the buckets (one hash slot)
-- ARGV: interval (µs per token), limit, cost, for each key in turn
-- Returns, per key, five integers in a row: allowed (1 or 0), remaining, reset (µs), retry
-- after (µs), charged (1 or 0).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local vals = redis.call('MGET', unpack(KEYS))
local tats, out, all = {}, {}, true
for i = 1, n do
  local a = 3 * i
  local interval, limit, cost = tonumber(ARGV[a - 2]), tonumber(ARGV[a - 1]), tonumber(ARGV[a])
  local span = limit * interval
  local tat = tonumber(vals[i]) or now -- a bucket of another algorithm (not a string) starts over
  for j = 1, i - 1 do
    if KEYS[j] == KEYS[i] then
      tat = tats[j]
    end
  end
  if tat < now then
    tat = now
  end
  local new = tat + cost * interval
  local o = 5 * i
  if new - now > span then
    local remaining = math.floor((span - (tat - now)) / interval)
    if remaining < 0 then
      remaining = 0
    end
    out[o - 4], out[o - 3], out[o - 2], out[o - 1], out[o] = 0, remaining, tat - now, new - span - now, 0
    all = false
    tats[i] = tat
  else
    out[o - 4], out[o - 3], out[o - 2], out[o - 1], out[o] = 1, math.floor((span - (new - now)) / interval), new - now, 0, 1
    tats[i] = new
  end
end
if all then
  -- The last write of a repeated key carries its final state.
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', string.format('%d', math.ceil((tats[i] - now) / 1000)))
  end
else
  -- Nothing is charged: report the allowing buckets as they stand.
  for i = 1, n do
    local o = 5 * i
    if out[o] == 1 then
      out[o - 3] = out[o - 3] + tonumber(ARGV[3 * i])
      out[o] = 0
    end
  end
end
return out
