-- Writes a session unless Redis holds a newer generation of it or a
-- tombstone.
-- KEYS[1] session hash, KEYS[2] its visit key
-- ARGV    generation, ttl_ms (the session's), hash_ttl_ms (at least
--         ttl_ms: see layout.rs), visited_ms, then field/value pairs
-- Returns 1 when written, 0 when skipped.
local ok, cur = pcall(redis.call, 'HMGET', KEYS[1], 'gen', 'removed')
if ok then
  if cur[2] then return 0 end
  if cur[1] and tonumber(cur[1]) >= tonumber(ARGV[1]) then return 0 end
elseif redis.call('GET', KEYS[1]) == 'X' then
  -- The string layout's tombstone (a release before the hash layout,
  -- during a rolling upgrade): kept, as a tombstone of this layout is.
  return 0
end
-- Whatever was there (an older generation, or an earlier version's
-- string) is replaced whole; a later visit of the same session is kept.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local was = tonumber(redis.call('HGET', KEYS[2], 'visited') or '0')
local v = math.max(was, tonumber(ARGV[4]))
redis.call('HSET', KEYS[2], 'visited', v, 'synced', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
