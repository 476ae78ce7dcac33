-- Counts one connection of a user on this node less.
--
-- KEYS: the user's connections, the nodes, this node's users, the user's standing; ARGV: this
-- node, the user as this node's users set names them
-- Returns {connections left on the nodes that are alive, since, activity, its time}; the standing
-- goes with the last connection.
local conns, nodes, node_users, standing = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, member = ARGV[1], ARGV[2]
if redis.call('HINCRBY', conns, node, -1) <= 0 then
  redis.call('HDEL', conns, node)
  redis.call('SREM', node_users, member)
end
local left = live_count(conns, nodes, now_ms(), false)
local answer = standing_of(standing, left)
if left == 0 then
  redis.call('DEL', standing)
end
return answer
