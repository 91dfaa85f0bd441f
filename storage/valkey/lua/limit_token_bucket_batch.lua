-- Limiter, token bucket (GCRA, as limit_token_bucket.lua), for a batch of requests, each with
-- one or more buckets: one script call decides many concurrent requests (the limiter's round
-- trips are shared, and so is the cost of a call). The requests are decided in order, each
-- all-or-nothing: its buckets are charged only if every one of them allows. A later request,
-- and a repeated key within one, sees what the earlier charges left. Each key is read once
-- (one MGET) and written once, with its final state.
--
-- KEYS: every request's buckets in turn (one hash slot)
-- ARGV: the number of requests; then, for each request, its number of buckets followed by
--       interval (µs per token), limit, cost for each of them
-- Returns, per key, five integers in a row: allowed (1 or 0), remaining, reset (µs), retry
-- after (µs), charged (1 or 0).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local vals = redis.call('MGET', unpack(KEYS))
local tat, dirty = {}, {}
for i = 1, #KEYS do
  local k = KEYS[i]
  if tat[k] == nil then
    local v = tonumber(vals[i]) or now -- a bucket of another algorithm (not a string) starts over
    if v < now then
      v = now
    end
    tat[k] = v
  end
end
local out, ki, ai = {}, 0, 2
for _ = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[ai])
  ai = ai + 1
  local new, all = {}, true
  for j = 1, n do
    local k = KEYS[ki + j]
    local a = ai + 3 * (j - 1)
    local interval, limit, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local span = limit * interval
    local cur = new[k] or tat[k]
    local after = cur + cost * interval
    local o = 5 * (ki + j)
    if after - now > span then
      local remaining = math.floor((span - (cur - now)) / interval)
      if remaining < 0 then
        remaining = 0
      end
      out[o - 4], out[o - 3], out[o - 2], out[o - 1], out[o] = 0, remaining, cur - now, after - span - now, 0
      all = false
    else
      out[o - 4], out[o - 3], out[o - 2], out[o - 1], out[o] = 1, math.floor((span - (after - now)) / interval), after - now, 0, 1
      new[k] = after
    end
  end
  if all then
    for k, v in pairs(new) do
      tat[k], dirty[k] = v, true
    end
  else
    -- Nothing is charged: report the allowing buckets as they stand.
    for j = 1, n do
      local o = 5 * (ki + j)
      if out[o] == 1 then
        out[o - 3] = out[o - 3] + tonumber(ARGV[ai + 3 * (j - 1) + 2])
        out[o] = 0
      end
    end
  end
  ki, ai = ki + n, ai + 3 * n
end
for i = 1, #KEYS do
  local k = KEYS[i]
  if dirty[k] then
    dirty[k] = nil
    redis.call('SET', k, string.format('%d', tat[k]), 'PX', string.format('%d', math.ceil((tat[k] - now) / 1000)))
  end
end
return out
