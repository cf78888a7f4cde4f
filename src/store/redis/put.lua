-- Writes a session unless a newer generation or a tombstone is there.
-- KEYS[1] session key
-- ARGV    generation, value (layout.rs), ttl_ms
-- Returns 1 when written, 0 when skipped.
local cur = redis.call('GETRANGE', KEYS[1], 0, 8)
if cur ~= '' then
  if string.byte(cur, 1) ~= 83 then return 0 end -- a tombstone
  if struct.unpack('<i8', cur, 2) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
