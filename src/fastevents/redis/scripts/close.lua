-- close: close one stream instance and wake every waiter on it, in every process.
-- KEYS[1] m  KEYS[2] q  KEYS[3] h  KEYS[4] s  KEYS[5] w  KEYS[6] cur
-- ARGV[1] the instance's generation
-- ARGV[2] "1" to also unlink the name from this instance (manager.close_stream)
-- Returns 0 = closed now, 1 = was closed already, 3 = the instance is gone.
local st = redis.call('HMGET', KEYS[1], 'closed', 'sv', 'ttl')
if ARGV[2] == '1' and redis.call('GET', KEYS[6]) == ARGV[1] then
  redis.call('DEL', KEYS[6])
end
if not st[1] then return 3 end
if st[1] == '1' then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sv = tonumber(st[2]) + 1
redis.call('XADD', KEYS[4], 'MAXLEN', '1', '0-' .. sv, 'e', 'close')
redis.call('HSET', KEYS[1], 'closed', '1', 'sv', sv, 'act', now, 'ex', now)
for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], tonumber(st[3])) end
return 0
