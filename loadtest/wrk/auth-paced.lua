-- /mina/auth as auth.lua at a steady load, not a saturating one, so that
-- servers' latencies compare at equal load (a saturating load measures the
-- machine's queueing as much as the server).
--
-- WAFER_RATE=R: R requests a second in all, whatever the server's speed.
-- Each thread sends its share on a schedule of its own (a request waits for
-- its slot; a slot missed is not made up in a burst), so a faster server is
-- not handed more load, as it is with a fixed pause. Below the rate when
-- every connection waits on the server: wrk's rps says so.
-- Otherwise each connection pauses WAFER_PACE_MS [2] ms before each request.
--   WAFER_SESSIONS=sessions.csv WAFER_RATE=12000 WAFER_THREADS=2 wrk -t2 -c64 -d15s -s loadtest/wrk/auth-paced.lua http://127.0.0.1:8080
--   WAFER_SESSIONS=sessions.csv WAFER_PACE_MS=2 wrk -t2 -c64 -d15s -s loadtest/wrk/auth-paced.lua http://127.0.0.1:8080
local dir = os.getenv("WRK_DIR") or "loadtest/wrk"
dofile(dir .. "/auth.lua")
local pace = tonumber(os.getenv("WAFER_PACE_MS") or "2")
local rate = tonumber(os.getenv("WAFER_RATE") or "")

if rate then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } wafer_timespec;
    int clock_gettime(int clock, wafer_timespec *tp);
  ]])
  local ts = ffi.new("wafer_timespec")
  local CLOCK_MONOTONIC = 1
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  -- Each of WAFER_THREADS [1] threads (wrk's -t) sends rate / threads.
  local interval = tonumber(os.getenv("WAFER_THREADS") or "1") * 1000 / rate
  local next_slot

  function delay()
    local now = now_ms()
    if not next_slot or next_slot < now - interval then
      next_slot = now
    end
    next_slot = next_slot + interval
    local wait = next_slot - now
    return wait > 0 and wait or 0
  end
else
  function delay()
    return pace
  end
end
