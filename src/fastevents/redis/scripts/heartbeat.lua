-- heartbeat: lease this process's count of waiting senders and receivers on one stream
-- instance (so cleanup from any process keeps it, and info can count them), and keep its
-- keys alive while anyone waits. Cheap on purpose: it runs for every waited-on stream
-- every few seconds.
-- KEYS[1] m  KEYS[2] q  KEYS[3] h  KEYS[4] s  KEYS[5] w  KEYS[6] cur
-- ARGV[1] lease ms  ARGV[2] process id  ARGV[3] waiting senders  ARGV[4] waiting receivers
-- Returns the instance's ttl in ms (the loop beats often enough for it), or 0 when the
-- instance is gone (its waiters are woken, to find out).
local st = redis.call('HMGET', KEYS[1], 'ttl', 'ex')
if not st[1] then return 0 end
local ttl = tonumber(st[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[1])
local fields = {'s', 'r'}
for i = 1, 2 do
  local f = ARGV[2] .. ':' .. fields[i]
  local count = tonumber(ARGV[2 + i])
  if count > 0 then
    redis.call('HSET', KEYS[5], f, count .. ':' .. deadline)
  else
    redis.call('HDEL', KEYS[5], f)
  end
end
if now - tonumber(st[2]) >= ttl / 8 then
  for k = 1, 6 do redis.call('PEXPIRE', KEYS[k], ttl) end
  redis.call('HSET', KEYS[1], 'ex', now)
elseif redis.call('PTTL', KEYS[5]) < 0 then
  redis.call('PEXPIRE', KEYS[5], ttl)
end
return ttl
