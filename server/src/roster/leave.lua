-- Counts one connection of a user on this node less.
--
-- KEYS: the user's connections, the nodes, this node's users; ARGV: this node, the user as this
-- node's users set names them
-- Returns the user's connections left on the nodes that are alive.
local conns, nodes, node_users = KEYS[1], KEYS[2], KEYS[3]
local node, member = ARGV[1], ARGV[2]
if redis.call('HINCRBY', conns, node, -1) <= 0 then
  redis.call('HDEL', conns, node)
  redis.call('SREM', node_users, member)
end
return live_count(conns, nodes, now_ms(), false)
