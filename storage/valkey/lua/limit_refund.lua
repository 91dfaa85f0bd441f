-- Limiter refund: give back the cost a request took from a bucket when another of its rules
-- refused it, so that a refused request costs nothing in any of its buckets. Runs only on that
-- path, right after the checks; works on whichever algorithm's state the key holds.
--
-- KEYS: the bucket
-- ARGV: interval (µs per token, token bucket), cost
-- Returns 1.
local key = KEYS[1]
local interval, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local kind = redis.call('TYPE', key).ok
if kind == 'string' then
  -- Token bucket: move the theoretical arrival time back by what the request took.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key)) - cost * interval
  if tat <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%d', tat), 'PX', string.format('%d', math.ceil((tat - now) / 1000)))
  end
elseif kind == 'zset' then
  -- Sliding window: drop the newest tokens (ours, or as good as ours: they leave last).
  redis.call('ZPOPMAX', key, cost)
elseif kind == 'hash' then
  -- Fixed window: uncount; HSET keeps the key's expiry.
  local n = tonumber(redis.call('HGET', key, 'n'))
  if n then
    redis.call('HSET', key, 'n', string.format('%d', math.max(0, n - cost)))
  end
end
return 1
