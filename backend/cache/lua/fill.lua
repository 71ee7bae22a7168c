-- Stores an entry unless a newer one, a tombstone or the same live entry is there.
-- KEYS[1]: the entry. KEYS[2]: the filler's lease, or none.
-- ARGV: version, generation, payload, ttl ms, schema, lease token.
-- Loses to a higher version (entry or tombstone) and to the same live entry;
-- releases the lease, while it is still this filler's, either way.
if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
local current = redis.call('HMGET', KEYS[1], 'v', 'g', 't', 's')
local version = tonumber(ARGV[1])
if current[1] then
  local stored = tonumber(current[1])
  if version < stored then return 0 end
  if version == stored and current[3] == '0' and current[2] == ARGV[2]
    and current[4] == ARGV[5] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[2], 't', '0', 'p', ARGV[3], 's', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
