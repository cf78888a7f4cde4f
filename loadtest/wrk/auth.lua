-- /mina/auth over the seeded sessions, round robin from a random start.
--   WAFER_SESSIONS=sessions.csv wrk -t2 -c64 -d15s -s loadtest/wrk/auth.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/report.lua")
local bodies = require("sessions").load()
local headers = { ["Content-Type"] = "application/json" }
local i = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  i = math.random(#bodies)
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/mina/auth", headers, bodies[i])
end
