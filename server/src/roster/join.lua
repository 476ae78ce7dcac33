-- Counts one more connection of a user on this node, unless the user already has `max` open on
-- the nodes that are alive; a node's share stops counting once its heartbeat has expired.
--
-- KEYS: the user's connections (hash node → count), the nodes (sorted set, score: heartbeat
--       expiry in ms), this node's users (set), the user's standing (hash: since, activity, at)
-- ARGV: this node, max, the user as this node's users set names them, how long the hashes live
--       (ms), when this connection opened (ms)
-- Returns {connections with this one, since, activity, its time} ('' for no activity), or
-- {-1} when full.
local conns, nodes, node_users, standing = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, max, member, ttl, opened = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5]
local total = live_count(conns, nodes, now_ms(), true)
if total >= max then
  return {'-1'}
end
if total == 0 then
  -- The first connection anywhere: a new stay online, whatever an earlier one left behind.
  redis.call('DEL', standing)
  redis.call('HSET', standing, 'since', opened)
else
  -- Online already, but the standing may have gone (it expired, or a node that did not keep
  -- one counted the connections): from now on, then.
  redis.call('HSETNX', standing, 'since', opened)
end
redis.call('HINCRBY', conns, node, 1)
redis.call('PEXPIRE', conns, ttl)
redis.call('SADD', node_users, member)
redis.call('PEXPIRE', node_users, ttl)
redis.call('PEXPIRE', standing, ttl)
return standing_of(standing, total + 1)
