-- Removes an open_id index entry if it still names this session (a newer
-- login may have pointed it elsewhere).
-- KEYS[1] index key
-- ARGV    uuid
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
