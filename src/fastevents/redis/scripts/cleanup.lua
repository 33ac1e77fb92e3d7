-- cleanup: close and unlink a stream name's instance if it has been idle longer than a
-- threshold and nobody, in any process, waits on it. Atomic against concurrent activity.
-- KEYS[1] cur
-- ARGV[1] the name's key prefix  ARGV[2] threshold ms
-- Returns 1 = cleaned up, 0 = active (kept), -1 = the name has no live instance.
local g = redis.call('GET', KEYS[1])
if not g then return -1 end
local base = ARGV[1] .. g
local st = redis.call('HMGET', base .. ':m', 'closed', 'act', 'sv', 'ttl')
if not st[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(st[2]) <= tonumber(ARGV[2]) then return 0 end
local w = redis.call('HGETALL', base .. ':w')
for i = 2, #w, 2 do
  local count, deadline = string.match(w[i], '^(%d+):(%d+)$')
  if count and tonumber(count) > 0 and tonumber(deadline) > now then return 0 end
end
redis.call('DEL', KEYS[1])
if st[1] == '0' then
  local sv = tonumber(st[3]) + 1
  redis.call('XADD', base .. ':s', 'MAXLEN', '1', '0-' .. sv, 'e', 'close')
  redis.call('HSET', base .. ':m', 'closed', '1', 'sv', sv)
end
return 1
