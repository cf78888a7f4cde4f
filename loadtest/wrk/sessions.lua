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

return M
