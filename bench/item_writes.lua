-- The authenticated write requests (BENCH_TOKEN, a DRF token) the bench scripts send.
local token = os.getenv("BENCH_TOKEN") or ""
local headers = {["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json"}
local writes = {}

function writes.create()
  local body = '{"name": "Bench item", "price": "9.99", "quantity": 1}'
  return wrk.format("POST", "/api/items/", headers, body)
end

function writes.update(id)
  local body = string.format('{"quantity": %d}', math.random(0, 1000))
  return wrk.format("PATCH", "/api/items/" .. id .. "/", headers, body)
end

function writes.delete(id)
  return wrk.format("DELETE", "/api/items/" .. id .. "/", headers)
end

return writes
