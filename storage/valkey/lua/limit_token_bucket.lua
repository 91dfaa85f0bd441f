-- Limiter, token bucket, as GCRA: the bucket is one number, its theoretical arrival time (tat):
-- the moment it will be full again, in unix microseconds of the server's clock. A bucket that
-- is full has no key (a tat in the past means the same).
--
-- A request of cost c is allowed when tat + c*interval - now <= limit*interval, i.e. when the
-- bucket still holds c of its limit tokens; then tat moves on by c*interval. A denied request
-- writes nothing, so it costs nothing. All arithmetic is on integers (interval is whole
-- microseconds), exact in Lua's doubles up to 2^53 µs (year 2255).
--
-- KEYS: the bucket
-- ARGV: interval (µs per token, at least 1), limit, cost
-- Returns {allowed (1 or 0), remaining, reset (µs), retry after (µs)}.
local key = KEYS[1]
local interval, limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local span = limit * interval -- how far ahead of now tat may run: a full bucket's worth

local tat
local kind = redis.call('TYPE', key).ok
if kind == 'string' then
  tat = tonumber(redis.call('GET', key))
elseif kind ~= 'none' then
  redis.call('DEL', key) -- another algorithm's bucket: start over
end
if tat == nil or tat < now then
  tat = now
end

local new = tat + cost * interval
if new - now > span then
  -- Allowed at the moment new - span; no sooner, since nothing but time moves tat closer.
  local remaining = math.floor((span - (tat - now)) / interval)
  if remaining < 0 then
    remaining = 0 -- the limit was lowered
  end
  return {0, remaining, tat - now, new - span - now}
end
-- Expires when the bucket is full again (rounded up to the millisecond, never early).
redis.call('SET', key, string.format('%d', new), 'PX', string.format('%d', math.ceil((new - now) / 1000)))
return {1, math.floor((span - (new - now)) / interval), new - now, 0}
