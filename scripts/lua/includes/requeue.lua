-- requeue.lua: messages going back to the team: to whoever holds the rest of their
-- conversation now, else to the stock in arrival order marked reassigned, or to quarantine
-- past the team's requeue limit. Emits requeued, quarantined (and assigned, via handover).
--@include keys
--@include events
--@include stock
--@include handover
--@include reports

-- Send a message (already out of any place) back to the stock, marked reassigned; a message
-- requeued too often goes to quarantine instead. Returns 'w' or 'q'. `listed`: the caller
-- puts it in the waiting list (merge_waiting) and places the conversation (when 'w').
local function requeue_msg(cfg, id, conv, now, why, listed, uncounted)
  local mk = K.msg(id)
  local n = uncounted and tonumber(redis.call('HGET', mk, 'rq') or '0')
    or redis.call('HINCRBY', mk, 'rq', 1)
  redis.call('HSET', mk, 're', '1')
  if n > cfg.mreq then
    redis.call('HSET', mk, 'st', 'q', 'adv', '', 'via', '', 'pt', '')
    redis.call('ZADD', K.quar, now, id)
    event(cfg, 'quarantined', now, 'm', id, 'c', conv, 'why', why, 'n', n)
    return 'q'
  end
  local v = redis.call('HMGET', mk, 'ch', 'ts', 'ord')
  to_waiting(id, conv, v[1], arrival_ms(v[2], v[3]), listed)
  event(cfg, 'requeued', now, 'm', id, 'c', conv, 'why', why)
  return 'w'
end

-- Messages ({id, ord}, out of every place, sorted by ord) of one conversation go back to the
-- team: to the advisor who holds the rest of the conversation now (one conversation, one
-- holder), else to the stock in arrival order (or to quarantine, one by one). `from`: the
-- advisor they came from (never their new holder). `uncounted`: not a bounce (a release from
-- quarantine), the requeue count is left as it is. Returns 'held', 'w' or 'q' (all of them
-- quarantined).
local function back_to_team(cfg, conv, msgs, now, why, from, uncounted)
  if from and from ~= '' and not uncounted then rep_add(cfg, now, 'ra|' .. from, #msgs) end
  local holder = holder_of(conv, from)
  if holder then
    local pushed = redis.call('HEXISTS', K.pconv(holder), conv) == 1
    for _, m in ipairs(msgs) do
      redis.call('HSET', K.msg(m.id), 're', '1')
      give(cfg, holder, m.id, conv, 'affinity', now, pushed, 'conversation held by ' .. holder)
    end
    return 'held'
  end
  local back = {}
  for _, m in ipairs(msgs) do
    if requeue_msg(cfg, m.id, conv, now, why, true, uncounted) == 'w' then
      back[#back + 1] = m
    end
  end
  if #back == 0 then return 'q' end
  merge_waiting(conv, back)
  place_conv(cfg, conv)
  return 'w'
end

local function by_arrival(ids)
  local out = {}
  for i, id in ipairs(ids) do
    out[i] = {id = id, ord = tonumber(redis.call('HGET', K.msg(id), 'ord')) or 0}
  end
  table.sort(out, function(x, y) return x.ord < y.ord end)
  return out
end

-- Hand messages in an advisor's hands back to the team, a conversation at a time (see
-- back_to_team). Returns how many messages moved.
local function requeue_from(cfg, adv, ids, now, why)
  local byconv, order = {}, {}
  for _, id in ipairs(ids) do
    local conv = redis.call('HGET', K.msg(id), 'conv')
    if not byconv[conv] then byconv[conv] = {}; order[#order + 1] = conv end
    local list = byconv[conv]
    list[#list + 1] = id
  end
  for _, conv in ipairs(order) do
    local msgs = by_arrival(byconv[conv])
    for _, m in ipairs(msgs) do release(adv, m.id, conv) end
    back_to_team(cfg, conv, msgs, now, why, adv)
  end
  return #ids
end

-- The messages of the advisor's conversations that `ids` belong to: whole conversations
-- (`ids` themselves always included).
local function whole_convs(adv, ids)
  local seen, out, inc = {}, {}, {}
  for _, id in ipairs(ids) do
    if not inc[id] then inc[id] = true; out[#out + 1] = id end
  end
  for _, id in ipairs(ids) do
    local conv = redis.call('HGET', K.msg(id), 'conv')
    if conv and not seen[conv] then
      seen[conv] = true
      for _, x in ipairs(held_ids(adv, conv)) do
        if not inc[x] then inc[x] = true; out[#out + 1] = x end
      end
    end
  end
  return out
end
