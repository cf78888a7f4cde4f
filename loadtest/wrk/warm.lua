-- /mina/auth over every seeded session once, in turn, split between wrk's
-- threads (thread k of T takes sessions k, k+T, ...), then around again:
-- the unmeasured warm-up of loadtest/run.sh (WARM), so that the rounds after
-- it see an instance that has served its sessions for a while, as in
-- production, not one that meets each of a million sessions for the first
-- time.
--   WAFER_SESSIONS=sessions.csv WAFER_THREADS=2 wrk -t2 -c64 -d60s -s loadtest/wrk/warm.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
package.path = dir .. "/?.lua;" .. package.path
local bodies = require("sessions").load()
local headers = { ["Content-Type"] = "application/json" }
local threads = 0
local i, step

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  step = tonumber(os.getenv("WAFER_THREADS") or "1")
  i = (tonumber(id) or 0) + 1
end

function request()
  local body = bodies[i]
  i = i + step
  if i > #bodies then
    i = i - #bodies
  end
  return wrk.format("POST", "/mina/auth", headers, body)
end
