-- Checks a session and slides it, in one step on one slot.
-- KEYS[1] session hash, KEYS[2] its visit key (layout.rs)
-- ARGV    app id, skey SHA-256 (hex), now_ms, login_ms, session_ms,
--         granularity_ms[, peek]
-- peek '1' (a near cache's fill): check only, write nothing; the near cache
-- slides the session in process and writes the slide later (slide.lua).
-- A slide writes the visit key, which no near cache tracks; the hash is
-- written (and every near cache's copy dropped) only when the visit key
-- would outlive it.
-- Returns 0 when the session is not in Redis (read through), 1 when it is
-- refused (wrong app or skey, expired, a tombstone), else
-- {due, open_id, union_id, user_info, phone, created, visited, gen}: due is 1
-- when this visit should be written to PostgreSQL (none was sent for
-- granularity_ms); visited is the last visit Redis now holds, gen the
-- session's generation (bumped by every login or change of it).
local ok, f = pcall(redis.call, 'HMGET', KEYS[1], 'app', 'skey_sha256',
  'created', 'visited', 'synced', 'removed', 'open_id', 'union_id', 'user_info',
  'phone', 'gen')
if not ok then
  -- Not a hash: the layout of an earlier version (one string). Its
  -- tombstone ('X') refuses, and stays to keep late writers out; a session
  -- is dropped, and the caller reads it through from PostgreSQL and
  -- writes it back in this layout.
  if redis.call('GET', KEYS[1]) == 'X' then return 1 end
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
if f[6] then return 1 end
if not f[1] then return 0 end
-- The skey is compared as its SHA-256 digest. `~=` may stop at the first
-- differing byte; on digests of 256-bit random secrets that leaks nothing
-- usable (steering a digest's bytes would take a SHA-256 preimage).
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return 1 end
local w = redis.call('HMGET', KEYS[2], 'visited', 'synced')
local c = tonumber(f[3])
local v = math.max(tonumber(f[4] or '0'), tonumber(w[1] or '0'))
local p = math.max(tonumber(f[5] or '0'), tonumber(w[2] or '0'))
local now = tonumber(ARGV[3])
local lm = tonumber(ARGV[4])
local sm = tonumber(ARGV[5])
if now - c >= lm or now - v >= sm then return 1 end
local reply = {0, f[7], f[8] or false, f[9] or false, f[10] or false, c, v,
  tonumber(f[11] or '0')}
if ARGV[7] == '1' then return reply end
local due = now - p >= tonumber(ARGV[6])
if due then
  v = math.max(v, now)
  redis.call('HSET', KEYS[2], 'visited', v, 'synced', now)
elseif now > v then
  v = now
  redis.call('HSET', KEYS[2], 'visited', v)
end
-- The visit key lives exactly as long as the session has left; the hash at
-- least as long (extend.lua).
local left = math.min(c + lm, v + sm) - now
redis.call('PEXPIRE', KEYS[2], string.format('%d', left))
extend_hash(c, lm, now, left, v)
reply[1], reply[7] = due and 1 or 0, v
return reply
