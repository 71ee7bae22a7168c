-- wrk's setup, init, response and done for every bench script: counts the answers by
-- status and those that say X-Cache: HIT, over all threads, and prints
-- "HIT_RATIO <ratio>" (when any answer had X-Cache) and one "STATUS <code> <count>" line
-- per status (bench/harness.py parses both).
local tally = {}
local threads = {}

function tally.setup(thread)
  table.insert(threads, thread)
end

function tally.init(args)
  hits, answers, statuses = 0, 0, {}
  math.randomseed(os.time() + #threads)
end

function tally.response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local cache = headers["X-Cache"]
  if cache then answers = answers + 1 end
  if cache == "HIT" then hits = hits + 1 end
end

function tally.done(summary, latency, requests)
  local all_hits, all_answers, all_statuses = 0, 0, {}
  for _, thread in ipairs(threads) do
    all_hits = all_hits + thread:get("hits")
    all_answers = all_answers + thread:get("answers")
    for status, count in pairs(thread:get("statuses")) do
      all_statuses[status] = (all_statuses[status] or 0) + count
    end
  end
  if all_answers > 0 then  -- else no answer came through the cache (the floor, writes)
    io.write(string.format("HIT_RATIO %.4f\n", all_hits / all_answers))
  end
  for status, count in pairs(all_statuses) do
    io.write(string.format("STATUS %d %d\n", status, count))
  end
end

-- Installs the four as the script's globals, where wrk looks for them.
function tally.install()
  setup, init, response, done = tally.setup, tally.init, tally.response, tally.done
end

return tally
