-- create: point a stream name at an open instance, creating one when the name has none
-- or only a closed (or expired) one. Atomic, so many processes create a name once.
-- KEYS[1] cur  KEYS[2] m  KEYS[3] s  (KEYS[2..3] are the proposed new instance's keys)
-- ARGV[1] proposed generation  ARGV[2] buffer size  ARGV[3] policy  ARGV[4] history
-- ARGV[5] ttl ms  ARGV[6] mode "create" | "get_or_create"  ARGV[7] the name's key prefix
-- Returns {code, gen, bs, pol, hist}: code 0 = found open, 1 = exists (mode create),
-- 2 = created.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = redis.call('GET', KEYS[1])
if g then
  -- The current instance's meta: a key of this name's hash tag (same slot).
  local mk = ARGV[7] .. g .. ':m'
  local st = redis.call('HMGET', mk, 'closed', 'bs', 'pol', 'hist', 'ttl', 'ex')
  if st[1] == '0' then
    if ARGV[6] == 'create' then return {1, g} end
    -- Activity keeps every key of the instance alive (see lookup.lua).
    local ttl = tonumber(st[5])
    if now - tonumber(st[6]) >= ttl / 8 then
      local base = ARGV[7] .. g
      for _, k in ipairs({':m', ':q', ':h', ':s', ':w'}) do
        redis.call('PEXPIRE', base .. k, ttl)
      end
      redis.call('PEXPIRE', KEYS[1], ttl)
      redis.call('HSET', mk, 'act', now, 'ex', now)
    else
      redis.call('HSET', mk, 'act', now)
    end
    return {0, g, tonumber(st[2]), tonumber(st[3]), tonumber(st[4])}
  end
end
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('HSET', KEYS[2], 'closed', '0', 'bs', ARGV[2], 'pol', ARGV[3], 'hist', ARGV[4],
  'ttl', ttl, 'seq', 0, 'rs', 0, 'drop', 0, 'act', now, 'sv', 1, 'ex', now)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('XADD', KEYS[3], 'MAXLEN', '1', '0-1', 'e', 'create')
redis.call('PEXPIRE', KEYS[3], ttl)
return {2, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
