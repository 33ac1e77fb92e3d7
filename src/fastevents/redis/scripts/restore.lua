-- restore: put events that a receiver took but never got (cancelled, Ctrl-C) back at the
-- front of the stream, in their order, with their sequence numbers, out of history.
-- KEYS[1] m  KEYS[2] q  KEYS[3] h  KEYS[4] s  KEYS[5] w  KEYS[6] cur
-- KEYS[7] (optional) t: the token key written by receive.lua
-- ARGV[1..] the items ("<seq> <json>") to put back; none means "whatever the token took"
-- Returns the number of events put back.
local items = ARGV
if #ARGV == 0 then
  local v = redis.call('GET', KEYS[7])
  -- Tombstone: a receive with this token that reaches Redis only now takes nothing.
  redis.call('SET', KEYS[7], '-', 'PX', 5000)
  if not v or v == '-' then return 0 end
  items = cjson.decode(v)
end
local st = redis.call('HMGET', KEYS[1], 'closed', 'hist', 'rs', 'sv', 'ttl')
if not st[1] then return 0 end
local n = #items
for i = n, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('PEXPIRE', KEYS[2], tonumber(st[5]))
if tonumber(st[2]) > 0 then
  for i = 1, n do redis.call('LREM', KEYS[3], -1, items[i]) end
end
local sv = tonumber(st[4]) + 1
redis.call('XADD', KEYS[4], 'MAXLEN', '1', '0-' .. sv, 'e', '1')
redis.call('HSET', KEYS[1], 'rs', tonumber(st[3]) - n, 'sv', sv)
return n
