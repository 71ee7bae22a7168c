-- wrk script: GET /api/items/{id}/ with If-None-Match: the item's ETag, ids from
-- bench/ids.lua; BENCH_ETAGS_FILE has one "<id> <etag>" line per id, fetched just before
-- the run. An unchanged item answers 304; bench/tally.lua counts 304s against 200s.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local draw = require("ids")
require("tally").install()

local etags = {}
for line in io.lines(os.getenv("BENCH_ETAGS_FILE")) do
  local id, etag = line:match("^(%d+) (.+)$")
  etags[tonumber(id)] = etag
end

function request()
  local id = draw()
  return wrk.format("GET", "/api/items/" .. id .. "/", {["If-None-Match"] = etags[id]})
end
