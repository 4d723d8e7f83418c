-- handover.lua: messages into and out of an advisor's hands, one conversation one holder
-- (its owner while they hold some of it). Emits assigned.
--@include keys
--@include events
--@include views
--@include reports
--@include waiting
--@include channels
--@include groupnames
--@include queue

-- A conversation's messages in advisors' hands: most conversations have one, kept in the
-- conversation's own record (field `h`), which spares a set created and deleted per press and
-- reply (two commands per cycle); others are in the set `hd:<conv>`. They are `h` (when not
-- empty) and the set's members, never one in both (check reports it); whichever message
-- reaches hands while `h` is empty takes it. A set of one is valid too: a deployment upgraded
-- from the set-only layout reads as before (`pushinbox migrate --down` moves `h` back into
-- the set for a downgrade). Every reader and writer is in this file (and repair's rebuild).

-- The ids a conversation lists in hands: its record's `h` (`h`: as the caller read it; nil:
-- read here) and its set.
local function listed_in_hands(conv, h)
  local ids = redis.call('SMEMBERS', K.held(conv))
  if h == nil then h = redis.call('HGET', K.conv(conv), 'h') end
  if h and h ~= '' then table.insert(ids, 1, h) end
  return ids
end

-- Who holds the conversation's messages in hands (`h` as for listed_in_hands): `adv` as soon
-- as one is theirs, else the holder of the first one ('' for none).
local function holder_among(conv, adv, h)
  local other = ''
  for _, x in ipairs(listed_in_hands(conv, h)) do
    local xa = redis.call('HGET', K.msg(x), 'adv')
    if xa == adv then return adv end
    if other == '' and xa then other = xa end
  end
  return other
end

-- Take a message out of an advisor's hands (any of cur / push / hold).
-- The conversation's held count goes first: when it reaches 0 the advisor holds nothing of
-- it, so its push-capacity entry goes whole (one command instead of a decrement and a delete).
-- `ho`, `pushed`: what the caller read of the message's record, its hold story (field `ho`:
-- '' not held since it was handed over, '1' on hold, '2' held then taken off hold) and whether
-- a press gave it (`pt`). Known, they spare the removals from the pushed and on-hold lists
-- the message is not in; unknown (nil, or a record written before `ho` was), it is taken out
-- of both. Returns the conversation's owner and held count as the release left them.
local function release(adv, id, conv, ho, pushed)
  redis.call('ZREM', K.cur(adv), id)
  local ck = K.conv(conv)
  local c = redis.call('HMGET', ck, 'held', 'h', 'owner')
  local n = (tonumber(c[1]) or 0) - 1
  local last = n <= 0
  local fields = last and {'owner', '', 'held', '0'} or {'held', int(n)}
  local owner = last and '' or c[3]  -- (what it answers: the record as it is left)
  local h = c[2] or ''
  if h == id then
    fields[#fields + 1] = 'h'
    fields[#fields + 1] = ''
    h = ''  -- (the record still says `id` until the HSET below)
  else
    redis.call('SREM', K.held(conv), id)
  end
  if not last and c[3] == adv then
    -- the owner gave back a message while others are still in hands: when none is theirs
    -- (the rest is with an advisor who logged out, their requeue not run yet), whoever holds
    -- the rest owns the conversation, so a new message does not follow the one who let go
    local holder = holder_among(conv, adv, h)
    if holder ~= adv then
      fields[#fields + 1] = 'owner'
      fields[#fields + 1] = holder
      owner = holder
    end
  end
  redis.call('HSET', ck, unpack(fields))
  local in_push, in_hold = true, true
  if ho == '' then in_push, in_hold = pushed, false
  elseif ho == '1' then in_push, in_hold = false, true
  elseif ho == '2' then in_push, in_hold = false, false end
  if in_push and redis.call('ZREM', K.push(adv), id) == 1 then
    if last or redis.call('HINCRBY', K.pconv(adv), conv, '-1') <= 0 then
      redis.call('HDEL', K.pconv(adv), conv)
    end
  end
  if in_hold then redis.call('SREM', K.hold(adv), id) end
  return owner, last and 0 or n
end

-- Give one message to an advisor: its hash, the advisor's indexes, the event. `pushed`: it
-- counts against the push capacity. `extra`: more message fields, written in the same HSET.
-- In the advisor's hands a message is scored by the time its conversation reached them
-- (`ot`), so a conversation's messages list together; the conversation lists them too (its
-- `h`, else `hd:<conv>`) for a requeue batch or an expiry to find without reading the
-- advisor's whole list. `in_record`: the caller writes `h` = id in its own HSET (the record's
-- `h` was empty); else the id goes in the set.
local function hand_over(cfg, adv, id, conv, via, now, pushed, why, extra, ot, in_record)
  local t = ms(now)
  redis.call('HSET', K.msg(id), 'st', 'a', 'adv', adv, 'via', via, 'at_', t,
    'pt', pushed and t or '', 'ho', '', unpack(extra or {}))
  redis.call('ZADD', K.cur(adv), ot or t, id)
  if not in_record then redis.call('SADD', K.held(conv), id) end
  if pushed then redis.call('ZADD', K.push(adv), t, id) end
  event(cfg, 'assigned', now, 'm', id, 'a', adv, 'c', conv, 'via', via, 'why', why or '')
end

-- Give one message to an advisor, and its conversation with it. In their hands it is
-- scored by the time the conversation reached them when they already hold it, else now.
local function give(cfg, adv, id, conv, via, now, pushed, why)
  local ck = K.conv(conv)
  local o = redis.call('HMGET', ck, 'owner', 'held', 'ot', 'h')
  local held = tonumber(o[2]) or 0
  local ot = (o[1] == adv and held > 0 and o[3]) or ms(now)
  local free = not o[4] or o[4] == ''
  hand_over(cfg, adv, id, conv, via, now, pushed, why, nil, ot, free)
  if pushed then redis.call('HINCRBY', K.pconv(adv), conv, '1') end
  redis.call('HSET', ck, 'owner', adv, 'ot', ot, 'held', int(held + 1),
    unpack(free and {'h', id} or {}))
end

-- The conversation fields moving it needs (give_conv), read once by a caller that also asks
-- who holds it.
-- `scored`: with what finds it in its queue (its start, first and last waiting arrival:
-- queue.lua), for a move that takes it out of the queue itself (a press popped it).
local CONV_FIELDS = {'q', 'g', 'why', 'owner', 'held', 'ot', 'w', 'h', 'cust'}
local CONV_FIELDS_SCORED = {'q', 'g', 'why', 'owner', 'held', 'ot', 'w', 'h', 'cust', 'so', 'fw',
  'lw'}
local function conv_row(conv, scored)
  return redis.call('HMGET', K.conv(conv), unpack(scored and CONV_FIELDS_SCORED or CONV_FIELDS))
end

-- The conversation's owner, other than `except`, while they hold any of it (`held`) and are
-- logged in; else nil.
local function live_owner(owner, held, except)
  if owner and owner ~= '' and owner ~= except and (tonumber(held) or 0) > 0 then
    local st = redis.call('HGET', K.adv(owner), 'st')
    if st and st ~= 'off' then return owner end
  end
  return nil
end

-- The advisor other than `except` who holds messages of a conversation, if logged in. `c`:
-- its conv_row when the caller has it.
local function holder_of(conv, except, c)
  local o = c and {c[4], c[5]} or redis.call('HMGET', K.conv(conv), 'owner', 'held')
  return live_owner(o[1], o[2], except)
end

-- The messages of a conversation in an advisor's hands: of those the conversation lists in
-- hands (`h` and `hd:<conv>`, at most MAX_CONVERSATION), the ones with this advisor.
-- O(conversation).
local function held_ids(adv, conv)
  local out = {}
  for _, id in ipairs(listed_in_hands(conv)) do
    if redis.call('HGET', K.msg(id), 'adv') == adv then out[#out + 1] = id end
  end
  return out
end

-- Move every waiting message of a conversation to an advisor. `popped`: the caller already
-- took the conversation out of its queue; `c`: its conv_row when the caller read it. Returns
-- the messages as clients see them (read while moving them: no second read per message).
local function give_conv(cfg, adv, conv, via, now, pushed, popped, c)
  local ck = K.conv(conv)
  c = c or conv_row(conv, not popped)
  if not popped and c[1] and c[1] ~= '' then
    Q.rem(cfg, q_key(c[1]), Q.conv_score(cfg, c[1], c[10], c[11], c[12]), conv)
  end
  local ot = (c[4] == adv and (tonumber(c[5]) or 0) > 0 and c[6]) or ms(now)
  local listed = not waiting_w(conv, c[7])
  local ids = waiting_ids(conv, c[7])
  local g, cwhy = conv_group(cfg, c[1], c[2], c[3])
  local free = not c[8] or c[8] == ''  -- the first goes in the record (`h`)
  local out = {}
  local chans = {}
  local waits = {}  -- arrival to push, for the reports (presses only)
  for i, id in ipairs(ids) do
    local v = redis.call('HMGET', K.msg(id), unpack(VIEW_FIELDS))
    v[2] = v[2] or c[9]  -- its conversation's customer (views.lua)
    local ts = arrival_ms(v[4], v[17])
    chans[v[3]] = (chans[v[3]] or 0) + chan_out(cfg, v[3], ts, id)
    if via == 'push' then waits[#waits + 1] = math.max(0, now - (ts or now)) end
    hand_over(cfg, adv, id, conv, via, now, pushed, g .. ': ' .. cwhy, {'g', g, 'why', cwhy},
      ot, free and i == 1)
    v[5], v[6], v[7], v[8], v[9] = 'a', adv, via, g, cwhy  -- what hand_over just wrote
    out[i] = as_view(id, v, false)
  end
  if #ids > 0 then waiting_clear(conv, listed) end
  for ch, n in pairs(chans) do chan_left(cfg, ch, n) end
  if #ids == 0 then
    redis.call('HSET', ck, 'q', '')
    return out
  end
  if pushed then redis.call('HINCRBY', K.pconv(adv), conv, int(#ids)) end
  rep_pushed(cfg, now, adv, g, waits, group_target(cfg, queue_group(c[1])))
  -- held: what the row said plus these (the script is atomic: nothing changed it meanwhile)
  redis.call('HSET', ck, 'q', '', 'owner', adv, 'ot', ot, 'held', int((tonumber(c[5]) or 0) + #ids),
    'w', '', unpack(free and {'h', ids[1]} or {}))
  return out
end
