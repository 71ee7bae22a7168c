-- The id of the next request: uniform over 1..BENCH_IDS, or from a Zipf law
-- (BENCH_DISTRIBUTION=zipf, exponent BENCH_ZIPF_S) with id 1 the most frequent.
local ids = tonumber(os.getenv("BENCH_IDS") or "1000")
local zipf = os.getenv("BENCH_DISTRIBUTION") == "zipf"
local exponent = tonumber(os.getenv("BENCH_ZIPF_S") or "1.0")
local cdf = {}

if zipf then
  local total = 0
  for rank = 1, ids do
    total = total + 1 / (rank ^ exponent)
    cdf[rank] = total
  end
  for rank = 1, ids do cdf[rank] = cdf[rank] / total end
end

return function()
  local u = math.random()
  if not zipf then return math.floor(u * ids) + 1 end
  local low, high = 1, ids
  while low < high do
    local middle = math.floor((low + high) / 2)
    if cdf[middle] < u then low = middle + 1 else high = middle end
  end
  return low
end
