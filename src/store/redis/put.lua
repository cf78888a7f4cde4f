-- Writes a session unless Redis holds a newer generation of it or a
-- tombstone.
-- KEYS[1] session key
-- ARGV    generation, ttl_ms, then field/value pairs (layout.rs)
-- Returns 1 when written, 0 when skipped.
local ok, cur = pcall(redis.call, 'HMGET', KEYS[1], 'gen', 'removed')
if ok then
  if cur[2] then return 0 end
  if cur[1] and tonumber(cur[1]) >= tonumber(ARGV[1]) then return 0 end
end
-- Whatever was there (an older generation, or an earlier version's
-- string) is replaced whole.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
