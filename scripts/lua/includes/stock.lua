-- stock.lua: the waiting stock. A conversation waits in the queue of the best group of its
-- waiting messages, scored by the team's order; its waiting list keeps arrival order; each
-- channel indexes its waiting messages (counts and oldest age).
--@include keys
--@include matching

local function score(order, so, fw, lw)
  if order == 'newest_conversation' then return -so end
  if order == 'oldest_message' then return fw end
  if order == 'newest_message' then return -lw end
  return so
end

-- (Re)place a conversation in the queue its waiting messages now match, under the current
-- settings; removes it from the stock when it has no waiting message.
local function place_conv(cfg, conv)
  local ck = K.conv(conv)
  local old = redis.call('HGET', ck, 'q')
  local ids = redis.call('LRANGE', K.cw(conv), 0, -1)
  if #ids == 0 then
    if old and old ~= '' then redis.call('ZREM', old, conv) end
    redis.call('HSET', ck, 'q', '')
    return
  end
  local ct = cust_tags(redis.call('HGET', ck, 'cust'))
  local best, bname, bwhy = nil, nil, nil
  local fw, lw = nil, nil
  for _, id in ipairs(ids) do
    local m = match_view(id)
    local gi, gn, why = classify(cfg, m, ct)
    if best == nil or gi < best then best, bname, bwhy = gi, gn, why end
    if fw == nil or m.ord < fw then fw = m.ord end
    if lw == nil or m.ord > lw then lw = m.ord end
  end
  local qk = K.q(cfg.ver, best)
  if old and old ~= '' and old ~= qk then redis.call('ZREM', old, conv) end
  local so = tonumber(redis.call('HGET', ck, 'so'))
  redis.call('ZADD', qk, score(cfg.order, so, fw, lw), conv)
  redis.call('HSET', ck, 'q', qk, 'gi', best, 'g', bname, 'why', bwhy, 'fw', fw, 'lw', lw)
end

-- Put a message into the waiting stock (its conversation is placed by the caller). `listed`:
-- the caller puts it in the conversation's waiting list itself (in arrival order).
local function to_waiting(id, conv, ch, ts, listed)
  redis.call('HSET', K.msg(id), 'st', 'w', 'adv', '', 'via', '', 'pt', '', 'g', '', 'why', '')
  if not listed then redis.call('RPUSH', K.cw(conv), id) end
  redis.call('ZADD', K.ch(ch), ms(ts), id)
  redis.call('SADD', K.channels, ch)
end

-- Add messages ({id, ord} sorted by ord) to a conversation's waiting list, keeping the list
-- in arrival order (requeued messages are older than what arrived meanwhile). O(list).
local function merge_waiting(conv, msgs)
  local key = K.cw(conv)
  local cur = redis.call('LRANGE', key, 0, -1)
  local merged, i, j = {}, 1, 1
  local curord = {}
  for k, id in ipairs(cur) do curord[k] = tonumber(redis.call('HGET', K.msg(id), 'ord')) or 0 end
  while i <= #msgs or j <= #cur do
    if j > #cur or (i <= #msgs and msgs[i].ord < curord[j]) then
      merged[#merged + 1] = msgs[i].id; i = i + 1
    else
      merged[#merged + 1] = cur[j]; j = j + 1
    end
  end
  redis.call('DEL', key)
  for k = 1, #merged, 500 do redis.call('RPUSH', key, unpack(merged, k, math.min(k + 499, #merged))) end
end
