-- Counts each counter once; a new one lives its lifetime, an existing one keeps its expiry.
-- KEYS: the counters. ARGV: their lifetimes in milliseconds. Returns their counts.
-- Atomic: a counter that expired between a SET and an INCR sent apart would come
-- back from the INCR without a TTL, and stay for good.
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'NX', 'PX', ARGV[i])
  counts[i] = redis.call('INCR', key)
end
return counts
