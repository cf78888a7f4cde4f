-- Writes a last visit that a near cache accepted in process: the slide it
-- held back (for at most its slide interval).
-- KEYS[1] session key
-- ARGV    app id, skey SHA-256 (hex), visited_ms, login_ms, session_ms,
--         granularity_ms, gen
-- The key's TTL is counted from the visit (written at most a slide interval
-- after it, so the key may outlive the session by that much; every check
-- judges by the times, not the TTL).
-- Returns -1 when Redis no longer holds this session as the caller copied it
-- (removed, expired, or another generation: a re-login, a phone number): the
-- caller drops its copy. Else 2 when the visit was written and is due for
-- PostgreSQL (none was sent for granularity_ms), 1 when written, 0 when
-- nothing was written (Redis holds a later visit).
local ok, f = pcall(redis.call, 'HMGET', KEYS[1], 'app', 'skey_sha256',
  'created', 'visited', 'synced', 'removed', 'gen')
if not ok or f[6] or not f[1] then return -1 end
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or tonumber(f[7] or '0') ~= tonumber(ARGV[7]) then
  return -1
end
local c, v, p = tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
local seen = tonumber(ARGV[3])
local lm, sm = tonumber(ARGV[4]), tonumber(ARGV[5])
-- Another instance slid it further, or nothing is left to slide.
if seen <= v or seen - c >= lm then return 0 end
local left = math.min(c + lm, seen + sm) - seen
if left <= 0 then return 0 end
local due = seen - p >= tonumber(ARGV[6])
if due then
  redis.call('HSET', KEYS[1], 'visited', seen, 'synced', seen)
else
  redis.call('HSET', KEYS[1], 'visited', seen)
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', left))
return due and 2 or 1
