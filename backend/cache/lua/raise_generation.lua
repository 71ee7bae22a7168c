-- Raises the generation counter to at least the minimum and returns it.
-- KEYS[1]: the generation. ARGV: minimum.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
