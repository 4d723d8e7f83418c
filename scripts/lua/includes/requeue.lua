-- requeue.lua: messages going back to the team: to whoever holds the rest of their
-- conversation now, else to the stock in arrival order marked reassigned, or to quarantine
-- past the team's requeue limit. Emits requeued, quarantined (and assigned, via handover).
--@include keys
--@include events
--@include stock
--@include handover
--@include reports

-- A message's record as it goes back (`fields`: waiting or quarantined), marked reassigned,
-- its requeue count `n` with it (a release from quarantine, `uncounted`, leaves the count as
-- it is: not written).
local QUARANTINED = {'st', 'q', 'adv', '', 'via', '', 'pt', ''}
local function write_back(id, fields, n, uncounted)
  if uncounted then redis.call('HSET', K.msg(id), 're', '1', unpack(fields))
  else redis.call('HSET', K.msg(id), 'rq', int(n), 're', '1', unpack(fields)) end
end

-- Send a message (already out of any place) back to the stock, marked reassigned; a message
-- requeued too often goes to quarantine instead. Returns 'w' or 'q'. `listed`: the caller
-- puts it in the waiting list (merge_waiting) and places the conversation (when 'w'). `m`:
-- what by_arrival read of its record (its channel, arrival and requeue count), so the
-- message is read once and written once.
local function requeue_msg(cfg, m, conv, now, why, listed, uncounted)
  local id = m.id
  local n = (tonumber(m.rq) or 0) + (uncounted and 0 or 1)
  if n > cfg.mreq then
    write_back(id, QUARANTINED, n, uncounted)
    redis.call('ZADD', K.quar, now, id)
    event(cfg, 'quarantined', now, 'm', id, 'c', conv, 'why', why, 'n', n)
    return 'q'
  end
  write_back(id, WAITING, n, uncounted)
  to_waiting(id, conv, m.ch, arrival_ms(m.ts, m.ord_s), listed, true)
  event(cfg, 'requeued', now, 'm', id, 'c', conv, 'why', why)
  return 'w'
end

-- Messages ({id, ord}, out of every place, sorted by ord) of one conversation go back to the
-- team: to the advisor who holds the rest of the conversation now (one conversation, one
-- holder), else to the stock in arrival order (or to quarantine, one by one). `from`: the
-- advisor they came from (never their new holder). `uncounted`: not a bounce (a release from
-- quarantine), the requeue count is left as it is. Returns 'held', 'w' or 'q' (all of them
-- quarantined). `o`: {owner, held} of the conversation when the caller knows them (it just
-- released the messages: release's answer), else they are read.
local function back_to_team(cfg, conv, msgs, now, why, from, uncounted, o)
  if from and from ~= '' and not uncounted then rep_add(cfg, now, 'ra|' .. from, #msgs) end
  local holder
  if o then holder = live_owner(o[1], o[2], from) else holder = holder_of(conv, from) end
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
    if requeue_msg(cfg, m, conv, now, why, true, uncounted) == 'w' then
      back[#back + 1] = m
    end
  end
  if #back == 0 then return 'q' end
  merge_waiting(conv, back)
  place_conv(cfg, conv)
  return 'w'
end

-- Messages ({id, ord, ord_s, ch, ts, rq} from their records: what a requeue needs of them,
-- read once) sorted by arrival.
local function by_arrival(ids)
  local out = {}
  for i, id in ipairs(ids) do
    local v = redis.call('HMGET', K.msg(id), 'ord', 'ch', 'ts', 'rq')
    out[i] = {id = id, ord = tonumber(v[1]) or 0, ord_s = v[1], ch = v[2], ts = v[3], rq = v[4]}
  end
  table.sort(out, function(x, y) return x.ord < y.ord end)
  return out
end

-- Hand messages in an advisor's hands back to the team, a conversation at a time (see
-- back_to_team). `convs`: each id's conversation, when the caller read them (whole_convs).
-- Returns how many messages moved.
local function requeue_from(cfg, adv, ids, now, why, convs)
  local byconv, order = {}, {}
  for _, id in ipairs(ids) do
    local conv = convs and convs[id] or redis.call('HGET', K.msg(id), 'conv')
    if not byconv[conv] then byconv[conv] = {}; order[#order + 1] = conv end
    local list = byconv[conv]
    list[#list + 1] = id
  end
  for _, conv in ipairs(order) do
    local msgs = by_arrival(byconv[conv])
    local owner, held
    for _, m in ipairs(msgs) do owner, held = release(adv, m.id, conv) end
    back_to_team(cfg, conv, msgs, now, why, adv, false, {owner, held})
  end
  return #ids
end

-- The messages of the advisor's conversations that `ids` belong to: whole conversations
-- (`ids` themselves always included), and each one's conversation (for requeue_from).
local function whole_convs(adv, ids)
  local seen, out, inc, convs = {}, {}, {}, {}
  for _, id in ipairs(ids) do
    if not inc[id] then inc[id] = true; out[#out + 1] = id end
  end
  for _, id in ipairs(ids) do
    local conv = redis.call('HGET', K.msg(id), 'conv')
    convs[id] = conv
    if conv and not seen[conv] then
      seen[conv] = true
      for _, x in ipairs(held_ids(adv, conv)) do
        convs[x] = conv
        if not inc[x] then inc[x] = true; out[#out + 1] = x end
      end
    end
  end
  return out, convs
end
