-- Replaces the entry with a tombstone of the committed version; never lowers a
-- recorded version.
-- KEYS[1]: the entry. ARGV: version, ttl ms.
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
if stored and stored > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
