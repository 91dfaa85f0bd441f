-- Limiter, fixed window: a hash of the window's start (unix microseconds of the server's clock)
-- and the tokens taken in it (n). A window starts with the first request after the previous one
-- ended and lasts window; a request of cost c is allowed when n+c <= limit. A denied request
-- writes nothing, so it costs nothing.
--
-- KEYS: the bucket
-- ARGV: window (µs), limit, cost
-- Returns {allowed (1 or 0), remaining, reset (µs), retry after (µs)}.
local key = KEYS[1]
local window, limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local start, n
local kind = redis.call('TYPE', key).ok
if kind == 'hash' then
  local v = redis.call('HMGET', key, 'start', 'n')
  start, n = tonumber(v[1]), tonumber(v[2])
elseif kind ~= 'none' then
  redis.call('DEL', key) -- another algorithm's bucket: start over
end
if start == nil or n == nil or now >= start + window then
  start, n = now, 0 -- the window is over, whether or not the key has expired yet
end

local reset = start + window - now
if n + cost > limit then
  -- The next window, which starts at reset, allows it: cost <= limit.
  local remaining = limit - n
  if remaining < 0 then
    remaining = 0 -- the limit was lowered
  end
  return {0, remaining, reset, reset}
end
n = n + cost
redis.call('HSET', key, 'start', string.format('%d', start), 'n', string.format('%d', n))
-- Gone when the window ends (rounded up, never early).
redis.call('PEXPIRE', key, string.format('%d', math.ceil(reset / 1000)))
return {1, limit - n, reset, 0}
