-- Token bucket, one Redis hash per subject: {tokens, ts}. Time comes from Redis TIME so
-- gateways with different clocks agree.
-- KEYS[1] = bucket key; ARGV = rate_per_s, burst, want (tokens wanted: 1, or a lease)
-- Returns {granted, tokens_left, retry_after_us}: granted is how many tokens were taken
-- (between 1 and want), 0 when not even one is there; then retry_after_us says when one
-- will be.
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) * 1000000 + tonumber(now_t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
end
local granted = math.min(want, math.floor(tokens))
local retry_us = 0
if granted >= 1 then
  tokens = tokens - granted
else
  granted = 0
  retry_us = math.ceil((1 - tokens) * 1000000 / rate)
end
-- Lua's tostring keeps 14 significant digits: a microsecond timestamp (16 digits) would
-- be stored rounded to 100 us, and that rounding adds up to extra refill. Store exactly.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', now))
-- An idle bucket is full again after burst / rate seconds; keep it no longer than that.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {granted, string.format('%.17g', tokens), retry_us}
