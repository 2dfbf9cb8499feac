-- GCRA (generic cell rate algorithm): the same arithmetic as the local limiter (governor),
-- so a request gets the same answer whichever backend decides it.
--
-- KEYS[1]  the bucket, `rl:{kind}:{key}`
-- ARGV[1]  emission interval T in microseconds (60 s / the per-minute limit)
-- ARGV[2]  burst: the per-minute limit
-- Returns  {allowed (0|1), remaining, reset_us, retry_after_us}; reset is the time until the
--          bucket is full again, retry_after (denied only) the time until one more fits.
--
-- The clock is Redis's own `TIME`, not the caller's, so every replica measures against one
-- clock. Times are integer microseconds: exact in Lua's doubles (below 2^53), written with
-- %d because tostring() would round them to 14 significant digits.
if redis.replicate_commands then
  -- Redis < 5 refuses a write after TIME without effects replication; later it is a no-op.
  redis.replicate_commands()
end
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = t * (burst - 1)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored), now)
end
local earliest = tat - tau
if now < earliest then
  return {0, 0, tat - now, earliest - now}
end
local new_tat = tat + t
-- The key lives only while the bucket is not full: after that it equals a fresh one.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now + tau + t - new_tat) / t), new_tat - now, 0}
