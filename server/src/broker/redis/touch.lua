-- Keeps a followed topic alive: a topic that viewers watch must not expire just because nobody
-- published to it for a while.
--
-- KEYS: meta, log, state, the tenant's topics, the tenant's usage; ARGV: topic name, idle ms
local meta, log, state, topics, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, idle = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', meta) == 0 then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('PEXPIRE', meta, idle)
redis.call('PEXPIRE', log, idle)
redis.call('PEXPIRE', state, idle)
redis.call('ZADD', topics, now, name)
redis.call('PEXPIRE', topics, idle)
redis.call('PEXPIRE', usage, idle)
return 1
