-- views.lua: messages as clients see them, and an advisor's messages in the order they hold
-- them (a conversation's messages together, in arrival order).
--@include keys

-- A message as clients see it, compact: {id, v, hold}, `v` its hash's VIEW_FIELDS in that
-- order as HMGET gave them (false where the record has none; the driver names them:
-- dispatcher/model.py, Message.from_script). A map of twenty names built and packed per
-- message cost a press ~3 us of Redis's time (measured, docs/performance.md).
local VIEW_FIELDS = {'conv', 'cust', 'ch', 'ts', 'st', 'adv', 'via', 'g', 'why', 're', 'rq', 'body',
  'lang', 'mt', 'at', 'dk', 'ord'}
local function as_view(id, v, hold) return {id, v, hold or false} end

-- A view shown under a group (a preview): its group and why, where VIEW_FIELDS has them.
local function view_in_group(view, group, why)
  view[2][8], view[2][9] = group or false, why or false
end

-- A message's customer is its conversation's: the record leaves it out (ingest.lua; one an
-- earlier version wrote has it).
local function msg_view(id)
  local v = redis.call('HMGET', K.msg(id), unpack(VIEW_FIELDS))
  if not v[2] and v[1] then v[2] = redis.call('HGET', K.conv(v[1]), 'cust') end
  return as_view(id, v, v[6] and v[6] ~= '' and
                        redis.call('SISMEMBER', K.hold(v[6]), id) == 1)
end

-- The ids of `rows` ({id, s = score}) by score, then by arrival: a conversation's messages
-- share a score in an advisor's hands, and ties would otherwise sort by id ('msg-10' before
-- 'msg-9').
local function by_score_then_arrival(rows)
  for _, r in ipairs(rows) do r.ord = tonumber(redis.call('HGET', K.msg(r.id), 'ord')) or 0 end
  table.sort(rows, function(x, y)
    if x.s ~= y.s then return x.s < y.s end
    return x.ord < y.ord
  end)
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

-- Members of a sorted set from `start` to `stop`, by score then arrival.
local function ordered(zkey, start, stop)
  local raw = redis.call('ZRANGE', zkey, start, stop, 'WITHSCORES')
  local rows = {}
  for i = 1, #raw, 2 do rows[#rows + 1] = {id = raw[i], s = tonumber(raw[i + 1])} end
  return by_score_then_arrival(rows)
end

-- Messages in advisor `adv`'s hands, as their hands list them (`ordered` on `cur`): by the
-- time their conversation reached the advisor, then by arrival. Not by the push list's own
-- scores, the time of each push (what an untouched push is found by): a conversation's
-- message given to its holder after the rest was pushed would list after them.
local function as_in_hands(adv, ids)
  local rows = {}
  for i, id in ipairs(ids) do
    rows[i] = {id = id, s = tonumber(redis.call('ZSCORE', K.cur(adv), id)) or 0}
  end
  return by_score_then_arrival(rows)
end

local function views(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = msg_view(id) end
  return out
end
