-- wrk script: GET {BENCH_PATH}{id}{BENCH_SUFFIX} (default /api/items/{id}/) with ids from
-- bench/ids.lua (BENCH_IDS, BENCH_DISTRIBUTION, BENCH_ZIPF_S), counting answers by status
-- and X-Cache (bench/tally.lua). BENCH_SUFFIX is what follows the id ("" to draw a query
-- parameter's value, as in /api/items/?page={id}). With BENCH_WRITE_FRACTION above 0, that
-- fraction of the requests PATCHes the drawn item instead (bench/item_writes.lua;
-- BENCH_TOKEN authenticates them). BENCH_FIXED_PATH asks one path every time (an id is
-- still drawn, so the script's work per request stays the same).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local draw = require("ids")
local writes = require("item_writes")
require("tally").install()

local path = os.getenv("BENCH_PATH") or "/api/items/"
local suffix = os.getenv("BENCH_SUFFIX") or "/"
local fixed_path = os.getenv("BENCH_FIXED_PATH")
local write_fraction = tonumber(os.getenv("BENCH_WRITE_FRACTION") or "0")

function request()
  local id = draw()
  if write_fraction > 0 and math.random() < write_fraction then
    return writes.update(id)
  end
  if fixed_path then return wrk.format("GET", fixed_path) end
  return wrk.format("GET", path .. id .. suffix)
end
