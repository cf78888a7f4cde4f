-- /mina/login with a new user per request (the WeChat mock answers every
-- code), so each request is a full exchange + write-through to PostgreSQL.
--   wrk -t2 -c64 -d15s -s loadtest/wrk/login.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
dofile(dir .. "/report.lua")
local app_id = os.getenv("WAFER_APP_ID") or "1"
local tag = (os.getenv("WAFER_RUN_TAG") or tostring(os.time())) .. "-" .. (tostring({}):match("0x(%x+)") or "0")
local headers = { ["Content-Type"] = "application/json" }
local n = 0

function request()
  n = n + 1
  return wrk.format("POST", "/mina/login", headers,
    string.format('{"app_id":%s,"code":"wrk-%s-%d.1"}', app_id, tag, n))
end
