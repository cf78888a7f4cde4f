-- Replaces a session by a tombstone, so that no late writer brings it back.
-- KEYS[1] session hash, KEYS[2] its visit key
-- ARGV    tombstone_ms
-- Returns {app, open_id} of the session it replaced (to remove its index
-- entry), or {} when there was none.
local ok, f = pcall(redis.call, 'HMGET', KEYS[1], 'app', 'open_id')
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'removed', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ok and f[1] and f[2] then return {f[1], f[2]} end
return {}
