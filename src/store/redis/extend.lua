-- Shared by auth.lua and slide.lua (prepended to each): keeps the session
-- hash (KEYS[1]) alive at least as long as its visit key, which lives
-- `left` ms from `now`. The hash is extended only when the visit key would
-- outlive it (within an eighth of `left`, at most a second: clocks), then by
-- a quarter more, within the absolute limit `c + lm`: near caches track the
-- hash, so it is written about once per quarter session, not per slide. At
-- the absolute limit both keys end together and it is never written again.
local function extend_hash(c, lm, now, left, visited)
  local kept = redis.call('PTTL', KEYS[1])
  if kept >= 0 and kept + math.min(1000, math.floor(left / 8)) < left then
    redis.call('HSET', KEYS[1], 'visited', visited)
    redis.call('PEXPIRE', KEYS[1],
      string.format('%d', math.min(c + lm - now, left + math.floor(left / 4))))
  end
end
