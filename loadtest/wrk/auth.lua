-- /mina/auth over the seeded sessions: round robin from a random start, or
-- Zipf-distributed with WAFER_ACCESS=zipf (sessions.lua).
--   WAFER_SESSIONS=sessions.csv wrk -t2 -c64 -d15s -s loadtest/wrk/auth.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/report.lua")
local sessions = require("sessions")
local bodies = sessions.load()
local headers = { ["Content-Type"] = "application/json" }
local pick

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  pick = sessions.picker(#bodies)
end

function request()
  return wrk.format("POST", "/mina/auth", headers, bodies[pick()])
end
