-- A flood of auths for sessions that do not exist: random uuids (never the
-- same twice) with random skeys, as a scanner or a broken client sends.
--   wrk -t2 -c64 -d10s -s loadtest/wrk/unknown.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
dofile(dir .. "/report.lua")
local app_id = os.getenv("WAFER_APP_ID") or "1"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

function request()
  local uuid = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(12)
  local body = string.format('{"app_id":%s,"uuid":"%s","skey":"%s"}', app_id, uuid, hex(43))
  return wrk.format("POST", "/mina/auth", headers, body)
end
