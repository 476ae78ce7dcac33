-- Reads a topic whole, in one step: what a node needs to serve it (kind, epoch, offset, the time of
-- the last message, the state, the history). Returns nil when Redis does not have the topic.
--
-- KEYS: meta, log, state
-- Returns {kind, epoch, offset, last ts, {state values...}, {offset, ts, items, ...}}: for `series`
-- and `events` the state is the list, for `metrics` and `collection` the hash as field, value pairs.
local meta, log, state = KEYS[1], KEYS[2], KEYS[3]
local m = redis.call('HMGET', meta, 'kind', 'epoch', 'offset', 'lts')
if not m[1] then
  return nil
end
local values
if m[1] == 'series' or m[1] == 'events' then
  values = redis.call('LRANGE', state, 0, -1)
else
  values = redis.call('HGETALL', state)
end
local entries = {}
for _, entry in ipairs(redis.call('XRANGE', log, '-', '+')) do
  local id = entry[1]
  entries[#entries + 1] = string.sub(id, string.find(id, '-') + 1)
  entries[#entries + 1] = entry[2][2]
  entries[#entries + 1] = entry[2][4]
end
return {m[1], m[2], m[3], m[4], values, entries}
