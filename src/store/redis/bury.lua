-- Replaces a session by a tombstone, so that no late writer (a read-through
-- or a slow login) can bring it back while the tombstone lives.
-- KEYS[1] session key
-- ARGV    tombstone ttl_ms
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
