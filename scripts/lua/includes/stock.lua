-- stock.lua: the waiting stock. A conversation waits in the queue of the best group of its
-- waiting messages, scored by the team's order; its waiting list keeps arrival order; each
-- channel counts its waiting messages (channels.lua: counts and oldest age). Escalation by
-- waiting time: a conversation that will match an earlier group once it has waited long
-- enough is indexed by that moment (`esc:<ver>:<group>`); `escalate_due` re-places what is due.
--@include keys
--@include matching
--@include queue
--@include groupnames
--@include waiting
--@include channels

-- Index a waiting conversation under the groups it will match once it has waited long
-- enough (`pending` from classify: {index, due}); the earliest due is kept (ZADD LT), and a
-- stale entry is harmless (escalate_due re-evaluates the conversation).
local function schedule(cfg, conv, pending)
  if not pending then return end
  for _, p in ipairs(pending) do
    redis.call('ZADD', K.esc(cfg.ver, p[1]), 'LT', string.format('%d', math.ceil(p[2])), conv)
  end
end

-- Restricted queues (triage rules that target a skill): at most this many skills have one
-- per settings version (defaults.MAX_RESTRICTED_SKILLS, held equal by a test); past it a
-- conversation waits unrestricted. Returns the queue key of group `gi` for a conversation
-- restricted to `skill` (or not: nil / ''), registering the skill in the version.
local MAX_RESTRICTED = 64
local function group_queue(cfg, gi, skill)
  if not skill or skill == '' then return K.q(cfg.ver, gi) end
  local rk = K.rsk(cfg.ver)
  if redis.call('SISMEMBER', rk, skill) == 0 then
    if redis.call('SCARD', rk) >= MAX_RESTRICTED then return K.q(cfg.ver, gi) end
    redis.call('SADD', rk, skill)
    if not cfg.rsq then
      cfg_write('rsq', '1')
      cfg.rsq = '1'
    end
  end
  return K.qs(cfg.ver, gi, skill)
end

-- (Re)place a conversation in the queue its waiting messages now match, under the current
-- settings; removes it from the stock when it has no waiting message. Returns the name of
-- the group it now waits in (nil when it left the stock).
local function place_conv(cfg, conv)
  local ck = K.conv(conv)
  local c = redis.call('HMGET', ck, 'q', 'rsk', 'w', 'g', 'why', 'so', 'fw', 'lw')
  local old = q_key(c[1])
  local ids = waiting_ids(conv, c[3])
  local was = old and old ~= '' and Q.conv_score(cfg, c[1], c[6], c[7], c[8])
  if #ids == 0 then
    if old and old ~= '' then Q.rem(cfg, old, was, conv) end
    redis.call('HSET', ck, 'q', '')
    return
  end
  local ct = conv_cust_tags(ck)
  local best, bname, bwhy = nil, nil, nil
  local fw, lw = nil, nil
  local due = {}  -- group index -> the earliest moment one of the messages will match it
  for _, id in ipairs(ids) do
    local m = match_view(id)
    local gi, gn, why, pending = classify(cfg, m, ct)
    if best == nil or gi < best then best, bname, bwhy = gi, gn, why end
    if fw == nil or m.ord < fw then fw = m.ord end
    if lw == nil or m.ord > lw then lw = m.ord end
    for _, p in ipairs(pending or {}) do
      if not due[p[1]] or p[2] < due[p[1]] then due[p[1]] = p[2] end
    end
  end
  local pending = {}
  for gi, at in pairs(due) do
    if gi < best then pending[#pending + 1] = {gi, at} end
  end
  schedule(cfg, conv, pending)
  local qk = group_queue(cfg, best, c[2])
  local so = tonumber(c[6])
  local sc = Q.score(cfg.order, so, fw, lw)
  if old and old ~= '' and (old ~= qk or was ~= sc) then Q.rem(cfg, old, was, conv) end
  Q.add(cfg, qk, sc, conv)  -- where it is already, nothing changes (what repair relies on)
  local q = q_field(qk)
  local named, drop = group_fields(cfg, q, bname, bwhy, c[4], c[5])
  -- its first and last waiting arrival are left out while they are its start (ingest.lua)
  if fw == so and lw == so then
    if c[7] or c[8] then drop = {'fw', 'lw', unpack(drop)} end
  else
    named = {'fw', fw, 'lw', lw, unpack(named)}
  end
  redis.call('HSET', ck, 'q', q, unpack(named))
  if #drop > 0 then redis.call('HDEL', ck, unpack(drop)) end
  return bname
end

-- The waiting form of a message's fields, for one coming back to the stock (ingest writes a
-- new message without its empty fields: readers take a missing field for empty).
local WAITING = {'st', 'w', 'adv', '', 'via', '', 'pt', '', 'g', '', 'why', ''}

-- Channels known to be in the team's index during this call (a batch adds each once).
local chans_call, chans_known = nil, {}
local function index_channel(ch)
  if chans_call ~= CALL then chans_call, chans_known = CALL, {} end
  if chans_known[ch] then return end
  redis.call('SADD', K.channels, ch)
  chans_known[ch] = true
end

-- Put a message into the waiting stock (its conversation is placed by the caller). `listed`:
-- the caller adds it to the conversation's waiting messages itself (in arrival order);
-- `written`: the caller already wrote the message as waiting (ingest, without its empty fields).
local function to_waiting(id, conv, ch, ts, listed, written)
  if not written then redis.call('HSET', K.msg(id), unpack(WAITING)) end
  if not listed then
    local set = waiting_push(conv, id)
    if #set > 0 then redis.call('HSET', K.conv(conv), unpack(set)) end
  end
  chan_in(ch, ts)
  index_channel(ch)
end

-- Add messages ({id, ord} sorted by ord) to a conversation's waiting list, keeping the list
-- in arrival order (requeued messages are older than what arrived meanwhile). O(list).
local function merge_waiting(conv, msgs)
  local cur = waiting_ids(conv)
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
  waiting_set(conv, merged)
end

-- Re-place a conversation if it is still waiting; returns whether it was.
local function replace_waiting(cfg, conv)
  local q = redis.call('HGET', K.conv(conv), 'q')
  if not q or q == '' then return false end
  place_conv(cfg, conv)
  return true
end

-- Re-place up to `n` waiting conversations whose wait crossed the threshold of a group that
-- escalates by waiting time (earliest due first, the earliest group first); entries of
-- conversations no longer waiting are dropped. Returns how many were re-placed. O(n log N)
-- plus the conversations' messages; never a scan of the stock.
local function escalate_due(cfg, n)
  if not cfg.tg or cfg.tg == EMPTY_LIST or cfg.tg == '' then return 0 end
  local now = ms(now_ms())
  local moved, looked = 0, 0
  for _, gi in ipairs(cmsgpack.unpack(cfg.tg)) do
    local ek = K.esc(cfg.ver, gi)
    while moved < n and looked < 4 * n do
      local due = redis.call('ZRANGEBYSCORE', ek, '-inf', now, 'LIMIT', 0, n - moved)
      if #due == 0 then break end
      for _, conv in ipairs(due) do
        looked = looked + 1
        redis.call('ZREM', ek, conv)
        if replace_waiting(cfg, conv) then moved = moved + 1 end
      end
    end
  end
  return moved
end

-- How many conversations are due to escalate and not yet re-placed.
local function due_count(cfg)
  if not cfg.tg or cfg.tg == EMPTY_LIST or cfg.tg == '' then return 0 end
  local now = ms(now_ms())
  local left = 0
  for _, gi in ipairs(cmsgpack.unpack(cfg.tg)) do
    left = left + redis.call('ZCOUNT', K.esc(cfg.ver, gi), '-inf', now)
  end
  return left
end
