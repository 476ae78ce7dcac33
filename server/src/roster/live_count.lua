-- Shared by the roster's scripts (prepended to each): the time, a user's connections on the nodes
-- whose heartbeat has not expired, and a user's standing as the scripts answer it.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Also forgets the shares of dead nodes when `forget` is set.
local function live_count(conns, nodes, now, forget)
  local total = 0
  local fields = redis.call('HGETALL', conns)
  for i = 1, #fields, 2 do
    local expiry = redis.call('ZSCORE', nodes, fields[i])
    if expiry and tonumber(expiry) >= now then
      total = total + tonumber(fields[i + 1])
    elseif forget then
      redis.call('HDEL', conns, fields[i])
    end
  end
  return total
end


-- {connections, since, activity, its time}, every value a string ('' where there is none).
local function standing_of(standing, connections)
  local held = redis.call('HMGET', standing, 'since', 'activity', 'at')
  return {tostring(connections), held[1] or '0', held[2] or '', held[3] or '0'}
end
