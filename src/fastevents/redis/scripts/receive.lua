-- receive: take up to N events from the head of one stream instance (the only place an
-- event leaves the buffer), and keep them in history.
-- KEYS[1] m  KEYS[2] q  KEYS[3] h  KEYS[4] s
-- KEYS[5] (optional) t: the token key of an interruptible caller (see restore.lua)
-- KEYS[6] (optional) the same caller's previous token key, whose reply it did read: dropped
-- (w and cur, refreshed with the rest every ttl/8, are derived from m: same hash tag)
-- ARGV[1] the most events to take
-- Returns {code, sv, items}: code 0 = took `items` ("<seq> <json>" each), 1 = closed and
-- drained, 2 = empty, 3 = the instance is gone, 4 = this token was abandoned (restored).
--
-- The signal (an XADD) that wakes blocked senders is written only when one may be parked
-- (meta `ws`, set by the send that found the stream full); an empty stream sets `wr` so
-- that the next send wakes this caller.
local st = redis.call('HMGET', KEYS[1], 'closed', 'hist', 'rs', 'sv', 'ex', 'ttl', 'ws', 'wr')
if not st[1] then return {3, 0} end
local sv = tonumber(st[4])
if KEYS[6] then redis.call('DEL', KEYS[6]) end
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then return {4, sv} end
local items = redis.call('LPOP', KEYS[2], tonumber(ARGV[1]))
if not items then
  if st[1] == '1' then return {1, sv} end
  if st[8] ~= '1' then redis.call('HSET', KEYS[1], 'wr', '1') end
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
if st[7] == '1' then
  sv = sv + 1
  redis.call('XADD', KEYS[4], 'MAXLEN', '1', '0-' .. sv, 'e', '1')
  redis.call('HSET', KEYS[1], 'rs', tonumber(st[3]) + n, 'act', now, 'sv', sv, 'ws', '0')
else
  redis.call('HSET', KEYS[1], 'rs', tonumber(st[3]) + n, 'act', now)
end
if now - tonumber(st[5]) >= ttl / 8 then
  local base = string.sub(KEYS[1], 1, -2)
  local prefix = string.match(KEYS[1], '^(.*}:)')
  for _, k in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[4], base .. 'w', prefix .. 'cur'}) do
    redis.call('PEXPIRE', k, ttl)
  end
  redis.call('HSET', KEYS[1], 'ex', now)
end
if KEYS[5] then
  -- Kept briefly: if the caller is interrupted before it reads the reply, restore.lua
  -- puts these back at the front.
  redis.call('SET', KEYS[5], cjson.encode(items), 'PX', 5000)
end
return {0, sv, items}
