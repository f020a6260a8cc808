-- Changes one API key atomically: Redis runs a script alone, so concurrent rotates,
-- updates and revokes are serialized and each sees the state the previous one left.
--
-- KEYS[1]  the key's admin record   sluice:keyid:{id}
-- ARGV[1]  "update" | "rotate"
-- ARGV[2]  the new secret's hash (hex), for rotate; "" otherwise
-- ARGV[3]  new name   ("" = unchanged)
-- ARGV[4]  new tier   ("" = unchanged)
-- ARGV[5]  new status ("" = unchanged)
-- ARGV[6]  the key id
-- ARGV[7]  prefix of the lookup records (sluice:key:)
-- ARGV[8]  the set of ids (sluice:keyids)
-- ARGV[9]  the invalidation channel (sluice:keys)
-- ARGV[10] own rate_per_s ("" = unchanged, "none" = back to the tier's)
-- ARGV[11] own burst      (same)
--
-- Returns {"ok", old_hash, new_hash, name, tier, status, created_at, version, rate_per_s,
-- burst},
-- {"missing"} or {"revoked"}.
local current = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #current, 2 do f[current[i]] = current[i + 1] end
if not f.hash then return {'missing'} end
if f.status == 'revoked' then return {'revoked'} end

local old_hash = f.hash
local new_hash = old_hash
if ARGV[1] == 'rotate' then new_hash = ARGV[2] end
local name = ARGV[3] ~= '' and ARGV[3] or f.name
local tier = ARGV[4] ~= '' and ARGV[4] or f.tier
local status = ARGV[5] ~= '' and ARGV[5] or f.status
local created_at = f.created_at or ''
local version = tostring((tonumber(f.version) or 0) + 1)
local rate = f.rate_per_s or ''
local burst = f.burst or ''
if ARGV[10] == 'none' then rate = '' elseif ARGV[10] ~= '' then rate = ARGV[10] end
if ARGV[11] == 'none' then burst = '' elseif ARGV[11] ~= '' then burst = ARGV[11] end

if new_hash ~= old_hash then
  redis.call('DEL', ARGV[7] .. old_hash)
end
redis.call('HSET', ARGV[7] .. new_hash, 'id', ARGV[6], 'name', name, 'tier', tier,
  'status', status, 'created_at', created_at, 'version', version,
  'rate_per_s', rate, 'burst', burst)
redis.call('HSET', KEYS[1], 'hash', new_hash, 'name', name, 'tier', tier,
  'status', status, 'created_at', created_at, 'version', version,
  'rate_per_s', rate, 'burst', burst)
redis.call('SADD', ARGV[8], ARGV[6])
redis.call('PUBLISH', ARGV[9], old_hash)
if new_hash ~= old_hash then redis.call('PUBLISH', ARGV[9], new_hash) end
return {'ok', old_hash, new_hash, name, tier, status, created_at, version, rate, burst}
