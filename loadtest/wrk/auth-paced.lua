-- /mina/auth as auth.lua, each connection pausing WAFER_PACE_MS [2] ms
-- before each request: the same moderate rate against every server, so
-- their latencies compare at equal load (a saturating load measures the
-- machine's queueing as much as the server).
--   WAFER_SESSIONS=sessions.csv WAFER_PACE_MS=2 wrk -t2 -c64 -d15s -s loadtest/wrk/auth-paced.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
dofile(dir .. "/auth.lua")
local pace = tonumber(os.getenv("WAFER_PACE_MS") or "2")

function delay()
  return pace
end
