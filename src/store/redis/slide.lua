-- Writes a last visit that a near cache accepted in process: the slide it
-- held back (for at most its slide interval).
-- KEYS[1] session hash, KEYS[2] its visit key
-- ARGV    app id, skey SHA-256 (hex), visited_ms, login_ms, session_ms,
--         granularity_ms, gen, now_ms
-- The slide goes to the visit key, which no near cache tracks: it costs no
-- instance its copy. The visit key lives exactly as long as the session has
-- left at now_ms (the slide is written up to a slide interval after the
-- visit); the hash at least as long (within an eighth of it, at most a
-- second: clocks), extended a quarter more at a time. At the absolute limit
-- both end together.
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
local w = redis.call('HMGET', KEYS[2], 'visited', 'synced')
local c = tonumber(f[3])
local v = math.max(tonumber(f[4] or '0'), tonumber(w[1] or '0'))
local p = math.max(tonumber(f[5] or '0'), tonumber(w[2] or '0'))
local seen = tonumber(ARGV[3])
local lm, sm = tonumber(ARGV[4]), tonumber(ARGV[5])
-- Another instance slid it further, or nothing is left to slide.
if seen <= v or seen - c >= lm then return 0 end
local now = tonumber(ARGV[8])
local left = math.min(c + lm, seen + sm) - now
if left <= 0 then return 0 end
local due = seen - p >= tonumber(ARGV[6])
if due then
  redis.call('HSET', KEYS[2], 'visited', seen, 'synced', seen)
else
  redis.call('HSET', KEYS[2], 'visited', seen)
end
redis.call('PEXPIRE', KEYS[2], string.format('%d', left))
-- The one write of a slide that near caches see: once per quarter session.
extend_hash(c, lm, now, left, seen)
return due and 2 or 1
