-- Writes a session unless a newer generation or a tombstone is there.
-- KEYS[1] session key
-- ARGV    generation, app_id, skey_hash (hex), create_ms, last_visit_ms,
--         open_id, union_id ('' = none), user_info ('' = none), ttl_ms
-- Returns 1 when written, 0 when skipped.
local cur = redis.call('HMGET', KEYS[1], 'g', 'x')
if cur[2] then return 0 end
if cur[1] and tonumber(cur[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', ARGV[1], 'a', ARGV[2], 'h', ARGV[3],
  'c', ARGV[4], 'v', ARGV[5], 'o', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'i', ARGV[8]) end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
return 1
