-- 95% auth, 4% login, 1% logout. Logouts end sessions this script's own
-- logins created, so the seeded sessions stay valid for the auths.
--   WAFER_SESSIONS=sessions.csv wrk -t2 -c64 -d30s -s loadtest/wrk/mixed.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/report.lua")
local bodies = require("sessions").load()
local app_id = os.getenv("WAFER_APP_ID") or "1"
local tag = (os.getenv("WAFER_RUN_TAG") or tostring(os.time())) .. "-" .. (tostring({}):match("0x(%x+)") or "0")
local headers = { ["Content-Type"] = "application/json" }
local i, n, own = 0, 0, {}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  i = math.random(#bodies)
end

function request()
  local roll = math.random(100)
  if roll <= 4 then
    n = n + 1
    return wrk.format("POST", "/mina/login", headers,
      string.format('{"app_id":%s,"code":"mix-%s-%d.1"}', app_id, tag, n))
  elseif roll == 5 and #own > 0 then
    return wrk.format("POST", "/mina/logout", headers, table.remove(own))
  end
  i = i % #bodies + 1
  return wrk.format("POST", "/mina/auth", headers, bodies[i])
end

function response(status, headers, body)
  local uuid, skey = body:match('"uuid":"([^"]+)","skey":"([^"]+)"')
  if uuid then
    own[#own + 1] = string.format('{"app_id":%s,"uuid":"%s","skey":"%s"}', app_id, uuid, skey)
  end
end
