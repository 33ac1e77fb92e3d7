-- lookup: the instance a stream name points at, with its state (manager.get_stream,
-- get_stream_info). Looking up an open stream is activity; a closed one is not.
-- KEYS[1] cur
-- ARGV[1] the name's key prefix  ARGV[2] "1" to count the lookup as activity
-- Returns {} when the name has no live instance, else
-- {gen, closed, bs, pol, hist, len, act_ms, dropped, waiting_senders, waiting_receivers, now_ms}
local g = redis.call('GET', KEYS[1])
if not g then return {} end
local base = ARGV[1] .. g
local st = redis.call('HMGET', base .. ':m', 'closed', 'bs', 'pol', 'hist', 'act', 'drop', 'ttl',
  'ex')
if not st[1] then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local act = tonumber(st[5])
if ARGV[2] == '1' and st[1] == '0' then
  act = now
  -- Activity keeps every key of the instance alive, the buffer and history included
  -- (every ttl/8 at most, as send and receive do).
  local ttl = tonumber(st[7])
  if now - tonumber(st[8]) >= ttl / 8 then
    for _, k in ipairs({':m', ':q', ':h', ':s', ':w'}) do redis.call('PEXPIRE', base .. k, ttl) end
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('HSET', base .. ':m', 'act', now, 'ex', now)
  else
    redis.call('HSET', base .. ':m', 'act', now)
  end
end
-- Waiters of every process, from their leases (heartbeat.lua).
local ws, wr = 0, 0
local w = redis.call('HGETALL', base .. ':w')
for i = 1, #w, 2 do
  local count, deadline = string.match(w[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(deadline) > now then
    if string.sub(w[i], -1) == 's' then ws = ws + tonumber(count) else wr = wr + tonumber(count) end
  end
end
return {g, tonumber(st[1]), tonumber(st[2]), tonumber(st[3]), tonumber(st[4]),
  redis.call('LLEN', base .. ':q'), act, tonumber(st[6]), ws, wr, now}
