-- Shared by the wrk scripts: the seeded sessions as ready auth bodies.
-- WAFER_SESSIONS: file of `uuid,skey` lines; WAFER_APP_ID: the app's id.
local M = {}

function M.load()
  local app_id = os.getenv("WAFER_APP_ID") or "1"
  local path = os.getenv("WAFER_SESSIONS") or "sessions.csv"
  local bodies = {}
  for line in io.lines(path) do
    local uuid, skey = line:match("^([^,]+),([^,]+)$")
    if uuid then
      bodies[#bodies + 1] = string.format(
        '{"app_id":%s,"uuid":"%s","skey":"%s"}', app_id, uuid, skey)
    end
  end
  assert(#bodies > 0, "no sessions in " .. path)
  return bodies
end

return M
