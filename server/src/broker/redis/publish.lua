-- Declares a topic, or appends one message to it, atomically: the kind check, the tenant's topic
-- count, the state limits, the state change, the log entry, its trimming and the fan-out to every
-- node all happen in one step, so no node ever sees a message another node did not.
--
-- KEYS: meta (hash), log (stream), state (list or hash), the tenant's topics (sorted set)
-- ARGV: kind, a new epoch (used if the topic is new), topic name, tenant/topic, channel,
--       items as one JSON array ('' only declares), history length, history bytes, history age ms,
--       idle ms, topics per tenant, series points, events, metric keys, documents, state bytes,
--       n, then n state operations of four values each: op, field, value, size
-- Returns {'ok', epoch, offset, ts} or {'kind', existing} or {'topics', limit} or
-- {'full', what, limit}; every value a string.
local meta, log, state, topics = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, new_epoch, name, key, channel, items = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local history_len, history_bytes_max = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_age, idle, max_topics = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local series_points, max_events = tonumber(ARGV[12]), tonumber(ARGV[13])
local metric_keys, documents, state_max = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local n = tonumber(ARGV[17])
-- What an entry costs beyond its items, as the node's own log counts it.
local ENTRY_OVERHEAD = 64

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local existing = redis.call('HGET', meta, 'kind')
if existing and existing ~= kind then
  return {'kind', existing}
end
if not existing then
  -- Topics nobody touched for `idle` no longer count: their keys have expired.
  redis.call('ZREMRANGEBYSCORE', topics, '-inf', now - idle)
  if redis.call('ZSCORE', topics, name) == false and redis.call('ZCARD', topics) >= max_topics then
    return {'topics', tostring(max_topics)}
  end
  redis.call('DEL', log, state)
  redis.call('HSET', meta, 'kind', kind, 'epoch', new_epoch, 'offset', 0, 'sbytes', 0, 'hbytes', 0, 'lts', 0)
end

local function touch()
  redis.call('PEXPIRE', meta, idle)
  redis.call('PEXPIRE', log, idle)
  redis.call('PEXPIRE', state, idle)
  redis.call('ZADD', topics, now, name)
  redis.call('PEXPIRE', topics, idle)
end

if items == '' then
  touch()
  return {'ok', redis.call('HGET', meta, 'epoch'), redis.call('HGET', meta, 'offset'), redis.call('HGET', meta, 'lts')}
end

local function op(i)
  local base = 17 + (i - 1) * 4
  return ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], tonumber(ARGV[base + 4])
end

local sbytes = tonumber(redis.call('HGET', meta, 'sbytes'))
if kind == 'series' then
  local size = 0
  for i = 1, n do
    local _, _, value, s = op(i)
    redis.call('RPUSH', state, value)
    size = s
  end
  redis.call('LTRIM', state, -series_points, -1)
  sbytes = redis.call('LLEN', state) * size
elseif kind == 'events' then
  for i = 1, n do
    local _, _, value, s = op(i)
    redis.call('RPUSH', state, value)
    sbytes = sbytes + s
  end
  while redis.call('LLEN', state) > max_events or sbytes > state_max do
    local gone = redis.call('LPOP', state)
    if not gone then break end
    sbytes = sbytes - string.len(gone)
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
    return {'full', 'metric keys', tostring(metric_keys)}
  end
  if sbytes + added > state_max then
    return {'full', 'bytes', tostring(state_max)}
  end
  for i = 1, n do
    local _, field, value = op(i)
    redis.call('HSET', state, field, value)
  end
  sbytes = sbytes + added
else
  -- collection: the operations are the batch's net effect, one per document id.
  local count, bytes = redis.call('HLEN', state), sbytes
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
    end
  end
  if count > documents then
    return {'full', 'documents', tostring(documents)}
  end
  if bytes > state_max then
    return {'full', 'bytes', tostring(state_max)}
  end
  for i = 1, n do
    local o, field, value = op(i)
    if o == 'set' then
      redis.call('HSET', state, field, value)
    else
      redis.call('HDEL', state, field)
    end
  end
  sbytes = bytes
end

local offset = redis.call('HINCRBY', meta, 'offset', 1)
local epoch = redis.call('HGET', meta, 'epoch')
-- The entry's id carries its offset, so a node that missed messages reads exactly those.
redis.call('XADD', log, '0-' .. offset, 't', now, 'i', items)
local hbytes = tonumber(redis.call('HGET', meta, 'hbytes')) + string.len(items) + ENTRY_OVERHEAD
while true do
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if not first then break end
  local len = redis.call('XLEN', log)
  local first_ts, first_items = tonumber(first[2][2]), first[2][4]
  if len > history_len or (hbytes > history_bytes_max and len > 1) or first_ts < now - max_age then
    redis.call('XDEL', log, first[1])
    hbytes = hbytes - string.len(first_items) - ENTRY_OVERHEAD
  else
    break
  end
end
redis.call('HSET', meta, 'sbytes', sbytes, 'hbytes', hbytes, 'lts', now)
touch()
redis.call('PUBLISH', channel, key .. '\n' .. kind .. '\n' .. epoch .. '\n' .. offset .. '\n' .. now .. '\n' .. items)
return {'ok', epoch, tostring(offset), tostring(now)}
