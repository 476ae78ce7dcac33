-- Declares a topic, or appends one message to it, atomically: the kind check, the tenant's topic
-- count, the state limits, the tenant's byte budgets, the state change, the log entry, its trimming
-- and the fan-out to every node all happen in one step, so no node ever sees a message another node
-- did not, and the budgets hold for the whole deployment, not per node.
--
-- KEYS: meta (hash), log (stream), state (list or hash), the tenant's topics (sorted set), the
--       tenant's usage (hash: totals 's' and 'h', and each topic's share as 's:<name>', 'h:<name>'),
--       the outside stream the message comes from (string: the last position published from it)
-- ARGV: kind, a new epoch (used if the topic is new), topic name, tenant/topic, channel,
--       items as one JSON array ('' only declares), history length, history bytes, history age ms,
--       idle ms, topics per tenant, series points, events, metric keys, documents, state bytes,
--       tenant history bytes, tenant state bytes, the message's position in its outside stream
--       ('' when it has none), what a history entry costs beyond its text (the node's
--       `topic_log::ENTRY_OVERHEAD`), n, then n state operations of four values each: op, field,
--       value, size
-- Returns {'ok', epoch, offset, ts, created ids…} (the ids of the documents a collection message
-- added) or {'duplicate'} or {'kind', existing} or {'topics', limit} or
-- {'full', what, limit} or {'tenant_full', limit}; every value a string.
local meta, log, state, topics, usage, source = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local kind, new_epoch, name, key, channel, items = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local history_len, history_bytes_max = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_age, idle, max_topics = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local series_points, max_events = tonumber(ARGV[12]), tonumber(ARGV[13])
local metric_keys, documents, state_max = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local tenant_history_max, tenant_state_max = tonumber(ARGV[17]), tonumber(ARGV[18])
local position = ARGV[19]
local entry_overhead = tonumber(ARGV[20])
local n = tonumber(ARGV[21])
local FIRST_OP = 21
-- How long the last position of an outside stream is kept without a message from it.
local SOURCE_TTL_MS = 30 * 24 * 3600 * 1000
-- What a history entry costs, exactly as a node's own log counts it (`topic_log::Entry::bytes`):
-- the update's body as the node encodes it (`encode::update_body`: `"ts":…,"series":…,"meta":{…}}`,
-- whose fixed characters number 84; topic names need no escaping), its resume token, and the
-- overhead. The engine conformance test holds the two to the same result.
local function entry_cost(items_text, epoch, offset, ts)
  local token = string.len(epoch) + 1 + string.len(tostring(offset))
  local body = 84 + string.len(tostring(ts)) + string.len(items_text) + string.len(name) + string.len(kind)
    + token + string.len(epoch) + string.len(tostring(offset))
  return body + token + entry_overhead
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- A message from an outside stream is published once: one at or before the last position taken
-- from that stream was published already (Kafka delivered it again).
if position ~= '' then
  local last = redis.call('GET', source)
  if last and tonumber(position) <= tonumber(last) then
    return {'duplicate'}
  end
end

-- Adds `delta` bytes to one of the tenant's totals. Formatted by hand: Lua's -0 would reach Redis
-- as "-0", which HINCRBY refuses.
local function add_usage(total, delta)
  if delta ~= 0 then
    redis.call('HINCRBY', usage, total, string.format('%d', delta))
  end
end

-- Takes a topic's share out of the tenant's totals.
local function forget_usage(topic)
  add_usage('s', -tonumber(redis.call('HGET', usage, 's:' .. topic) or '0'))
  add_usage('h', -tonumber(redis.call('HGET', usage, 'h:' .. topic) or '0'))
  redis.call('HDEL', usage, 's:' .. topic, 'h:' .. topic)
end

-- Topics nobody touched for `idle` no longer count: their keys have expired (Redis expires a key
-- once the time is past its deadline, hence the open bound).
local expired = '(' .. (now - idle)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', topics, '-inf', expired)) do
  forget_usage(gone)
end
redis.call('ZREMRANGEBYSCORE', topics, '-inf', expired)

local existing = redis.call('HGET', meta, 'kind')
if existing and existing ~= kind then
  return {'kind', existing}
end
if not existing then
  if redis.call('ZSCORE', topics, name) == false and redis.call('ZCARD', topics) >= max_topics then
    return {'topics', tostring(max_topics)}
  end
  -- Whatever an expired earlier topic of this name still counted goes with it.
  forget_usage(name)
  redis.call('DEL', log, state)
  redis.call('HSET', meta, 'kind', kind, 'epoch', new_epoch, 'offset', 0, 'sbytes', 0, 'hbytes', 0, 'lts', 0)
end

-- A refused message changes nothing: a topic it would have created is not left behind (it would
-- hold its name and kind without counting against the tenant's topics).
local function refuse(reply)
  if not existing then
    redis.call('DEL', meta)
  end
  return reply
end

local function touch()
  redis.call('PEXPIRE', meta, idle)
  redis.call('PEXPIRE', log, idle)
  redis.call('PEXPIRE', state, idle)
  redis.call('ZADD', topics, now, name)
  redis.call('PEXPIRE', topics, idle)
  redis.call('PEXPIRE', usage, idle)
end

if items == '' then
  touch()
  return {'ok', redis.call('HGET', meta, 'epoch'), redis.call('HGET', meta, 'offset'), redis.call('HGET', meta, 'lts')}
end

local function op(i)
  local base = FIRST_OP + (i - 1) * 4
  return ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], tonumber(ARGV[base + 4])
end

-- First what the state would become (refusing what breaks a limit), then, only if the tenant's
-- budget allows it, the change itself: a refused message changes nothing.
local old_sbytes = tonumber(redis.call('HGET', meta, 'sbytes'))
local sbytes, apply
local created = {}
if kind == 'series' then
  -- Every point costs the same; a message without points leaves the state as it is.
  sbytes = old_sbytes
  if n > 0 then
    local _, _, _, point_bytes = op(1)
    sbytes = math.min(redis.call('LLEN', state) + n, series_points) * point_bytes
  end
  apply = function()
    for i = 1, n do
      local _, _, value = op(i)
      redis.call('RPUSH', state, value)
    end
    redis.call('LTRIM', state, -series_points, -1)
  end
elseif kind == 'events' then
  -- The oldest events leave while there are too many or they hold too many bytes.
  local held = redis.call('LLEN', state)
  local count, dropped = held + n, 0
  sbytes = old_sbytes
  for i = 1, n do
    local _, _, _, s = op(i)
    sbytes = sbytes + s
  end
  while count - dropped > 0 and (count - dropped > max_events or sbytes > state_max) do
    local gone
    if dropped < held then
      gone = redis.call('LINDEX', state, dropped)
    else
      local _, _, value = op(dropped - held + 1)
      gone = value
    end
    sbytes = sbytes - string.len(gone)
    dropped = dropped + 1
  end
  apply = function()
    for i = 1, n do
      local _, _, value = op(i)
      redis.call('RPUSH', state, value)
    end
    if dropped > 0 then
      redis.call('LTRIM', state, dropped, -1)
    end
  end
elseif kind == 'metrics' then
  local new_keys, added = 0, 0
  for i = 1, n do
    local _, field, _, s = op(i)
    if redis.call('HEXISTS', state, field) == 0 then
      new_keys = new_keys + 1
      added = added + s
    end
  end
  if redis.call('HLEN', state) + new_keys > metric_keys then
    return refuse({'full', 'metric keys', tostring(metric_keys)})
  end
  if old_sbytes + added > state_max then
    return refuse({'full', 'bytes', tostring(state_max)})
  end
  sbytes = old_sbytes + added
  apply = function()
    for i = 1, n do
      local _, field, value = op(i)
      redis.call('HSET', state, field, value)
    end
  end
else
  -- collection: the operations are the batch's net effect, one per document id.
  local count, bytes = redis.call('HLEN', state), old_sbytes
  for i = 1, n do
    local o, field, _, s = op(i)
    local old = redis.call('HGET', state, field)
    if old then
      count = count - 1
      bytes = bytes - string.len(field) - string.len(old)
    end
    if o == 'set' then
      count = count + 1
      bytes = bytes + s
      if not old then
        created[#created + 1] = field
      end
    end
  end
  if count > documents then
    return refuse({'full', 'documents', tostring(documents)})
  end
  if bytes > state_max then
    return refuse({'full', 'bytes', tostring(state_max)})
  end
  sbytes = bytes
  apply = function()
    for i = 1, n do
      local o, field, value = op(i)
      if o == 'set' then
        redis.call('HSET', state, field, value)
      else
        redis.call('HDEL', state, field)
      end
    end
  end
end

-- The tenant's totals move by the difference to the topic's recorded share, not to its meta: so
-- a share that is missing or stale (a topic from before the budgets were kept here) heals.
local tenant_state = tonumber(redis.call('HGET', usage, 's') or '0')
local growth = sbytes - tonumber(redis.call('HGET', usage, 's:' .. name) or '0')
if growth > 0 and tenant_state + growth > tenant_state_max then
  return refuse({'tenant_full', tostring(tenant_state_max)})
end
apply()
add_usage('s', growth)
redis.call('HSET', usage, 's:' .. name, sbytes)

local offset = redis.call('HINCRBY', meta, 'offset', 1)
local epoch = redis.call('HGET', meta, 'epoch')
-- The entry's id carries its offset, so a node that missed messages reads exactly those.
local cost = entry_cost(items, epoch, offset, now)
redis.call('XADD', log, '0-' .. offset, 't', now, 'i', items, 'c', cost)
local old_hbytes = tonumber(redis.call('HGET', meta, 'hbytes'))
local hbytes = old_hbytes + cost
-- The tenant's history without this topic: over the tenant's budget, the topic being written to
-- forgets its oldest messages, possibly all of them, as a node's own broker does.
local share_h = tonumber(redis.call('HGET', usage, 'h:' .. name) or '0')
local others = tonumber(redis.call('HGET', usage, 'h') or '0') - share_h
while true do
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if not first then break end
  local len = redis.call('XLEN', log)
  local first_ts = tonumber(first[2][2])
  -- Entries written before their cost was kept cost what they were counted as then.
  local first_cost = tonumber(first[2][6]) or (string.len(first[2][4]) + 64)
  local over_topic_budget = hbytes > history_bytes_max and len > 1
  if len > history_len or over_topic_budget or others + hbytes > tenant_history_max or first_ts < now - max_age then
    redis.call('XDEL', log, first[1])
    hbytes = hbytes - first_cost
  else
    break
  end
end
redis.call('HSET', meta, 'sbytes', sbytes, 'hbytes', hbytes, 'lts', now)
add_usage('h', hbytes - share_h)
redis.call('HSET', usage, 'h:' .. name, hbytes)
touch()
if position ~= '' then
  redis.call('SET', source, position, 'PX', SOURCE_TTL_MS)
end
redis.call('PUBLISH', channel, key .. '\n' .. kind .. '\n' .. epoch .. '\n' .. offset .. '\n' .. now .. '\n' .. items)
local reply = {'ok', epoch, tostring(offset), tostring(now)}
for _, id in ipairs(created) do
  reply[#reply + 1] = id
end
return reply
