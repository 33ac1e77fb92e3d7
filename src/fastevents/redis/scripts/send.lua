-- send: accept events into one stream instance, atomically bounded by its buffer size.
-- KEYS[1] m (meta hash)  KEYS[2] q (buffer list)  KEYS[3] h  KEYS[4] s (signal stream)
-- KEYS[5] w  KEYS[6] cur
-- ARGV[1] mode: "first" (the stream's policy decides: under DROP the refused events count
--         as dropped), "block" (a blocked sender retrying: no drop counted), "try"
--         (try_send: refused events count as dropped whatever the policy)
-- ARGV[2] how many more events the caller holds back (not passed here, so refused too)
-- ARGV[3..] event JSON documents, in send order
-- Returns {code, sent, sv}: code 0 = all sent, 1 = closed, 2 = full after `sent` went in
-- (the caller waits), 3 = the instance is gone (expired), 4 = full after `sent` went in
-- and the rest was refused (counted as dropped); sv = the signal version to wait from.
local st = redis.call('HMGET', KEYS[1], 'closed', 'bs', 'pol', 'seq', 'sv', 'ex', 'ttl')
if not st[1] then return {3, 0, 0} end
local sv = tonumber(st[5])
if st[1] == '1' then return {1, 0, sv} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(st[7])
local passed = #ARGV - 2
local want = passed + tonumber(ARGV[2])
local room = tonumber(st[2]) - redis.call('LLEN', KEYS[2])
local n = want
if room < n then n = room end
if passed < n then n = passed end
if n < 0 then n = 0 end
if n > 0 then
  local seq = tonumber(st[4])
  local i = 0
  local len = 0
  while i < n do
    -- unpack() is bounded by Lua's C stack: push in chunks.
    local chunk = {}
    local j = 0
    while i < n and j < 1000 do
      i = i + 1
      j = j + 1
      chunk[j] = (seq + i) .. ' ' .. ARGV[i + 2]
    end
    len = redis.call('RPUSH', KEYS[2], unpack(chunk))
  end
  -- The list disappears whenever it is drained: a re-created one needs its TTL again.
  if len == n then redis.call('PEXPIRE', KEYS[2], ttl) end
  sv = sv + 1
  redis.call('XADD', KEYS[4], 'MAXLEN', '1', '0-' .. sv, 'e', '1')
  redis.call('HSET', KEYS[1], 'seq', seq + n, 'sv', sv, 'act', now)
end
if now - tonumber(st[6]) >= ttl / 8 then
  for k = 1, 6 do redis.call('PEXPIRE', KEYS[k], ttl) end
  redis.call('HSET', KEYS[1], 'ex', now)
end
if n < want then
  if ARGV[1] == 'try' or (ARGV[1] == 'first' and st[3] == '1') then
    redis.call('HINCRBY', KEYS[1], 'drop', want - n)
    redis.call('HSET', KEYS[1], 'act', now)
    return {4, n, sv}
  end
  return {2, n, sv}
end
return {0, n, sv}
