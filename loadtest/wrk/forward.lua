-- Forward auth, GET /mina/auth with the credentials in headers (what a
-- gateway sends), over the seeded sessions, round robin from a random start.
--   WAFER_SESSIONS=sessions.csv wrk -t2 -c64 -d15s -s loadtest/wrk/forward.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/report.lua")
local sessions = require("sessions").load_headers()
local i = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  i = math.random(#sessions)
end

function request()
  i = i % #sessions + 1
  return wrk.format("GET", "/mina/auth", sessions[i])
end
