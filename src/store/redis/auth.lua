-- Checks a session and slides it, in one step on one key.
-- KEYS[1] session key (a string laid out as src/store/redis/layout.rs says)
-- ARGV    app_id (8 bytes LE), skey hash (32 bytes), now_ms, login_ms,
--         session_ms, granularity_ms
-- Returns 0 when the key is absent (read through), 1 when the session is
-- refused (or a tombstone), else one byte (1 when this visit is due to be
-- written to PostgreSQL: none was sent for granularity_ms) followed by the
-- profile bytes (offset 73 on).
local s = redis.call('GET', KEYS[1])
if not s then return 0 end
if string.byte(s, 1) ~= 83 then return 1 end -- 'S'; 'X' is a tombstone
-- The skey is compared as its SHA-256 digest. `~=` may stop at the first
-- differing byte; on digests of 256-bit random secrets that leaks nothing
-- usable (steering a digest's bytes would take a SHA-256 preimage).
if string.sub(s, 10, 17) ~= ARGV[1] or string.sub(s, 42, 73) ~= ARGV[2] then
  return 1
end
local c, v, p = struct.unpack('<i8i8i8', s, 18)
local now = tonumber(ARGV[3])
local lm = tonumber(ARGV[4])
local sm = tonumber(ARGV[5])
if now - c >= lm or now - v >= sm then return 1 end
local due = now - p >= tonumber(ARGV[6])
if due then
  v = math.max(v, now)
  redis.call('SETRANGE', KEYS[1], 25, struct.pack('<i8i8', v, now))
elseif now > v then
  v = now
  redis.call('SETRANGE', KEYS[1], 25, struct.pack('<i8', now))
end
-- The key lives exactly as long as the session has left.
local left = math.min(c + lm, v + sm) - now
redis.call('PEXPIRE', KEYS[1], string.format('%d', left))
return (due and '\1' or '\0') .. string.sub(s, 74)
