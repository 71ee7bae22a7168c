-- wrk script: GET /api/items/?page=<n>&{BENCH_QUERY}, n uniform over 1..BENCH_PAGES,
-- counting answers by status (bench/tally.lua).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("tally").install()

local pages = tonumber(os.getenv("BENCH_PAGES") or "1")
local query = os.getenv("BENCH_QUERY") or ""
if query ~= "" then query = "&" .. query end

function request()
  return wrk.format("GET", "/api/items/?page=" .. math.random(pages) .. query)
end
