-- set_policy: change the backpressure policy of one stream instance, shared by every
-- process (senders already waiting keep their policy).
-- KEYS[1] m
-- ARGV[1] policy (0 BLOCK, 1 DROP)
-- Returns 1, or 0 when the instance is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'pol', ARGV[1])
return 1
