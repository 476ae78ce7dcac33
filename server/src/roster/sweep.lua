-- Claims one node whose heartbeat expired and takes its connections out of every user's count.
-- Only one node can claim a dead node (ZREM answers 1 once), so each is swept once.
--
-- KEYS: the nodes; ARGV: the key prefix
-- Returns {} when no node is dead, else {dead node, user, user, ...}: the users (as the dead node's
-- users set names them) left with no connection anywhere.
local nodes, prefix = KEYS[1], ARGV[1]
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', now - 1, 'LIMIT', 0, 1)[1]
if not dead then
  return {}
end
redis.call('ZREM', nodes, dead)
local gone = {dead}
local node_users = prefix .. 'node:' .. dead .. ':users'
for _, member in ipairs(redis.call('SMEMBERS', node_users)) do
  local user = string.sub(member, 1, string.find(member, '\t') - 1)
  local conns = prefix .. 'user:' .. user .. ':conns'
  redis.call('HDEL', conns, dead)
  if live_count(conns, nodes, now, false) == 0 then
    redis.call('DEL', prefix .. 'user:' .. user .. ':standing')
    gone[#gone + 1] = member
  end
end
redis.call('DEL', node_users)
return gone
