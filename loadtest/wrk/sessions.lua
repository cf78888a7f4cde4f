-- Shared by the wrk scripts: the seeded sessions as ready auth bodies, or
-- as forward-auth headers.
-- WAFER_SESSIONS: file of `uuid,skey` lines; WAFER_APP_ID: the app's id.
local M = {}

-- each(f): f(app_id, uuid, skey) for every session; the list of results.
local function each(f)
  local app_id = os.getenv("WAFER_APP_ID") or "1"
  local path = os.getenv("WAFER_SESSIONS") or "sessions.csv"
  local out = {}
  for line in io.lines(path) do
    local uuid, skey = line:match("^([^,]+),([^,]+)$")
    if uuid then
      out[#out + 1] = f(app_id, uuid, skey)
    end
  end
  assert(#out > 0, "no sessions in " .. path)
  return out
end

function M.load()
  return each(function(app_id, uuid, skey)
    return string.format('{"app_id":%s,"uuid":"%s","skey":"%s"}', app_id, uuid, skey)
  end)
end

function M.load_headers()
  return each(function(app_id, uuid, skey)
    return { ["X-WX-Id"] = uuid, ["X-WX-Skey"] = skey, ["X-WX-App"] = app_id }
  end)
end

-- picker(n): a function answering the next session's index in 1..n, by
-- WAFER_ACCESS: `uniform` [default] cycles through all of them from a random
-- start (each session as often as any other); `zipf` draws them with
-- Zipf-distributed popularity (exponent WAFER_ZIPF [0.99], as YCSB: a few
-- sessions are very hot, most are rarely seen), the same ranking in every
-- thread.
function M.picker(n)
  local access = os.getenv("WAFER_ACCESS") or "uniform"
  if access == "uniform" then
    local i = math.random(n)
    return function()
      i = i % n + 1
      return i
    end
  end
  assert(access == "zipf", "WAFER_ACCESS: uniform or zipf, not " .. access)
  -- Gray et al., "Quickly generating billion-record synthetic databases".
  local theta = tonumber(os.getenv("WAFER_ZIPF") or "0.99")
  local zetan = 0
  for k = 1, n do
    zetan = zetan + 1 / k ^ theta
  end
  local zeta2 = 1 + 0.5 ^ theta
  local alpha = 1 / (1 - theta)
  local eta = (1 - (2 / n) ^ (1 - theta)) / (1 - zeta2 / zetan)
  return function()
    local u = math.random()
    local uz = u * zetan
    if uz < 1 then return 1 end
    if uz < zeta2 then return 2 end
    return math.min(n, 1 + math.floor(n * (eta * u - eta + 1) ^ alpha))
  end
end

return M
