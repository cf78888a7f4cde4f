-- Checks a session and slides it, in one step on one key.
-- KEYS[1] session key
-- ARGV    app_id, skey_hash (hex), now_ms, login_ms, session_ms
-- Returns 0 when the key is absent (read through), 1 when the session is
-- refused (or a tombstone), else {open_id, union_id|nil, user_info|nil}.
local s = redis.call('HMGET', KEYS[1], 'a', 'h', 'c', 'v', 'o', 'u', 'i', 'x')
if s[8] then return 1 end
if not s[1] then return 0 end
if s[1] ~= ARGV[1] or s[2] ~= ARGV[2] then return 1 end
local now = tonumber(ARGV[3])
local c = tonumber(s[3])
local v = tonumber(s[4])
local lm = tonumber(ARGV[4])
local sm = tonumber(ARGV[5])
if now - c >= lm or now - v >= sm then return 1 end
if now > v then
  v = now
  redis.call('HSET', KEYS[1], 'v', ARGV[3])
end
-- The key lives exactly as long as the session has left.
local left = math.min(c + lm, v + sm) - now
redis.call('PEXPIRE', KEYS[1], string.format('%d', left))
return {s[5], s[6], s[7]}
