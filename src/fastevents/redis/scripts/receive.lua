-- receive: take up to N events from the head of one stream instance (the only place an
-- event leaves the buffer), keep them in history, and wake blocked senders.
-- KEYS[1] m  KEYS[2] q  KEYS[3] h  KEYS[4] s  KEYS[5] w  KEYS[6] cur
-- KEYS[7] (optional) t: the token key of an interruptible caller (see restore.lua)
-- ARGV[1] the most events to take
-- Returns {code, sv, items}: code 0 = took `items` ("<seq> <json>" each), 1 = closed and
-- drained, 2 = empty, 3 = the instance is gone, 4 = this token was abandoned (restored).
local st = redis.call('HMGET', KEYS[1], 'closed', 'hist', 'rs', 'sv', 'ex', 'ttl')
if not st[1] then return {3, 0} end
local sv = tonumber(st[4])
if KEYS[7] and redis.call('EXISTS', KEYS[7]) == 1 then return {4, sv} end
local items = redis.call('LPOP', KEYS[2], tonumber(ARGV[1]))
if not items then
  if st[1] == '1' then return {1, sv} end
  return {2, sv}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(st[6])
local n = #items
local hist = tonumber(st[2])
if hist > 0 then
  local first = 1
  if n > hist then first = n - hist + 1 end
  local pushed = n - first + 1
  local len = 0
  while first <= n do
    local last = first + 999
    if last > n then last = n end
    len = redis.call('RPUSH', KEYS[3], unpack(items, first, last))
    first = last + 1
  end
  if len > hist then redis.call('LTRIM', KEYS[3], -hist, -1) end
  if len == pushed then redis.call('PEXPIRE', KEYS[3], ttl) end
end
sv = sv + 1
redis.call('XADD', KEYS[4], 'MAXLEN', '1', '0-' .. sv, 'e', '1')
redis.call('HSET', KEYS[1], 'rs', tonumber(st[3]) + n, 'sv', sv, 'act', now)
if now - tonumber(st[5]) >= ttl / 8 then
  for k = 1, 6 do redis.call('PEXPIRE', KEYS[k], ttl) end
  redis.call('HSET', KEYS[1], 'ex', now)
end
if KEYS[7] then
  -- Kept briefly: if the caller is interrupted before it reads the reply, restore.lua
  -- puts these back at the front.
  redis.call('SET', KEYS[7], cjson.encode(items), 'PX', 5000)
end
return {0, sv, items}
