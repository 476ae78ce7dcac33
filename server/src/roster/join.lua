-- Counts one more connection of a user on this node, unless the user already has `max` open on
-- the nodes that are alive; a node's share stops counting once its heartbeat has expired.
--
-- KEYS: the user's connections (hash node → count), the nodes (sorted set, score: heartbeat
--       expiry in ms), this node's users (set)
-- ARGV: this node, max, the user as this node's users set names them, how long the hash lives (ms)
-- Returns the user's connections with this one, or -1 when full.
local conns, nodes, node_users = KEYS[1], KEYS[2], KEYS[3]
local node, max, member, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local total = live_count(conns, nodes, now_ms(), true)
if total >= max then
  return -1
end
redis.call('HINCRBY', conns, node, 1)
redis.call('PEXPIRE', conns, ttl)
redis.call('SADD', node_users, member)
redis.call('PEXPIRE', node_users, ttl)
return total + 1
