-- wrk script: one kind of write per run (BENCH_WRITE: create, update or delete), with
-- BENCH_TOKEN's user. update PATCHes ids from bench/ids.lua; delete takes the ids from
-- BENCH_FIRST_ID upwards, one each, so a row that is gone (404) means the reserved range
-- ran out. One wrk thread, as bench/harness.py runs it, keeps the delete ids distinct.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local draw = require("ids")
local writes = require("item_writes")
require("tally").install()

local kind = os.getenv("BENCH_WRITE")
local next_id = tonumber(os.getenv("BENCH_FIRST_ID") or "1")

function request()
  if kind == "create" then return writes.create() end
  if kind == "update" then return writes.update(draw()) end
  local id = next_id
  next_id = next_id + 1
  return writes.delete(id)
end
