-- touch: record activity on one open stream instance (now, by the server's clock).
-- KEYS[1] m
-- ARGV: none
-- Returns 1, or 0 when the instance is gone or closed.
if redis.call('HGET', KEYS[1], 'closed') ~= '0' then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'act', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 1
