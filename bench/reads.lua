-- wrk script: GET {BENCH_PATH}{id}{BENCH_SUFFIX} (default /api/items/{id}/) with ids drawn
-- uniformly or from a Zipf law, counting the answers that say X-Cache: HIT. Environment:
-- BENCH_PATH, BENCH_SUFFIX (what follows the id; "" to draw a query parameter's value, as
-- in /api/items/?page={id}), BENCH_IDS (how many ids, from 1), BENCH_DISTRIBUTION
-- ("uniform" or "zipf"), BENCH_ZIPF_S (the exponent).
local path = os.getenv("BENCH_PATH") or "/api/items/"
local suffix = os.getenv("BENCH_SUFFIX") or "/"
local ids = tonumber(os.getenv("BENCH_IDS") or "1000")
local zipf = os.getenv("BENCH_DISTRIBUTION") == "zipf"
local exponent = tonumber(os.getenv("BENCH_ZIPF_S") or "1.0")
local threads = {}
local cdf = {}

if zipf then
  local total = 0
  for rank = 1, ids do
    total = total + 1 / (rank ^ exponent)
    cdf[rank] = total
  end
  for rank = 1, ids do cdf[rank] = cdf[rank] / total end
end

local function draw()
  local u = math.random()
  if not zipf then return math.floor(u * ids) + 1 end
  local low, high = 1, ids
  while low < high do
    local middle = math.floor((low + high) / 2)
    if cdf[middle] < u then low = middle + 1 else high = middle end
  end
  return low
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  hits, answers = 0, 0
  math.randomseed(os.time() + #threads)
end

function request()
  return wrk.format("GET", path .. draw() .. suffix)
end

function response(status, headers, body)
  local cache = headers["X-Cache"]
  if cache then answers = answers + 1 end
  if cache == "HIT" then hits = hits + 1 end
end

function done(summary, latency, requests)
  local all_hits, all_answers = 0, 0
  for _, thread in ipairs(threads) do
    all_hits = all_hits + thread:get("hits")
    all_answers = all_answers + thread:get("answers")
  end
  if all_answers > 0 then  -- else no answer came through the cache (the floor)
    io.write(string.format("HIT_RATIO %.4f\n", all_hits / all_answers))
  end
end
