-- Limiter, sliding window (log): a sorted set of the allowed requests of the last window, one
-- member per token, scored by its time in unix microseconds of the server's clock. A request
-- of cost c is allowed when fewer than limit-c+1 tokens were taken in (now-window, now]. A
-- denied request adds nothing, so it costs nothing.
--
-- KEYS: the bucket
-- ARGV: window (µs), limit, cost
-- Returns {allowed (1 or 0), remaining, reset (µs), retry after (µs)}.
local key = KEYS[1]
local window, limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local count = 0
local kind = redis.call('TYPE', key).ok
if kind == 'zset' then
  -- A token taken at s leaves the window at s+window exactly.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window))
  count = redis.call('ZCARD', key)
elseif kind ~= 'none' then
  redis.call('DEL', key) -- another algorithm's bucket: start over
end

if count + cost <= limit then
  local args = {}
  local score = string.format('%d', now)
  for i = 1, cost do
    -- Unique members: within one microsecond count only grows (the trim above is the same).
    args[#args + 1] = score
    args[#args + 1] = score .. '-' .. (count + i)
  end
  redis.call('ZADD', key, unpack(args))
  -- Empty, and gone, once the newest token leaves the window (rounded up, never early).
  redis.call('PEXPIRE', key, string.format('%d', math.ceil(window / 1000)))
  return {1, limit - count - cost, window, 0}
end

-- Denied: the (count+cost-limit)th oldest token has to leave the window first.
local need = count + cost - limit
local oldest = redis.call('ZRANGE', key, need - 1, need - 1, 'WITHSCORES')
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local remaining = limit - count
if remaining < 0 then
  remaining = 0 -- the limit was lowered
end
return {0, remaining, tonumber(newest[2]) + window - now, tonumber(oldest[2]) + window - now}
