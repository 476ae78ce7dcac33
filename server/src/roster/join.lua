-- Counts one more connection of a user on this node, unless the user already has `max` open on
-- the nodes that are alive; a node's share stops counting once its heartbeat has expired.
--
-- KEYS: the user's connections (hash node → count), the nodes (sorted set, score: heartbeat
--       expiry in ms), this node's users (set)
-- ARGV: this node, max, the user as this node's users set names them, how long the hash lives (ms)
-- Returns the user's connections with this one, or -1 when full.
local conns, nodes, node_users = KEYS[1], KEYS[2], KEYS[3]
local node, max, member, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local total = 0
local fields = redis.call('HGETALL', conns)
for i = 1, #fields, 2 do
  local expiry = redis.call('ZSCORE', nodes, fields[i])
  if expiry and tonumber(expiry) >= now then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', conns, fields[i])
  end
end
if total >= max then
  return -1
end
redis.call('HINCRBY', conns, node, 1)
redis.call('PEXPIRE', conns, ttl)
redis.call('SADD', node_users, member)
redis.call('PEXPIRE', node_users, ttl)
return total + 1
