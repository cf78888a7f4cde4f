-- Forward auth, GET /mina/auth with the credentials in headers (what a
-- gateway sends), over the seeded sessions, as auth.lua picks them.
--   WAFER_SESSIONS=sessions.csv wrk -t2 -c64 -d15s -s loadtest/wrk/forward.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/report.lua")
local all = require("sessions")
local sessions = all.load_headers()
local pick

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  pick = all.picker(#sessions)
end

function request()
  return wrk.format("GET", "/mina/auth", sessions[pick()])
end
