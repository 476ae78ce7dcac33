-- Counts one connection of a user on this node less.
--
-- KEYS: the user's connections, the nodes, this node's users; ARGV: this node, the user as this
-- node's users set names them
-- Returns the user's connections left on the nodes that are alive.
local conns, nodes, node_users = KEYS[1], KEYS[2], KEYS[3]
local node, member = ARGV[1], ARGV[2]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if redis.call('HINCRBY', conns, node, -1) <= 0 then
  redis.call('HDEL', conns, node)
  redis.call('SREM', node_users, member)
end
local total = 0
local fields = redis.call('HGETALL', conns)
for i = 1, #fields, 2 do
  local expiry = redis.call('ZSCORE', nodes, fields[i])
  if expiry and tonumber(expiry) >= now then
    total = total + tonumber(fields[i + 1])
  end
end
return total
