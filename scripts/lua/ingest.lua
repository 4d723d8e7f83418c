-- ingest: store arriving customer messages and route each one: to the advisor who holds its
-- conversation (affinity, only while logged in), else to the advisor of the first matching
-- triage rule (while logged in), else into the waiting stock under its priority group.
-- Idempotent by message id: a duplicate with the same content changes nothing; the same id with
-- a different content is refused, and then nothing of the batch is stored.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix "pi:{team}:"
-- ARGV[2] msgpack {now?, maxch?, maxconv?, maxmsg?, maxbytes? (the team's bounds of stored
--         messages and of their bodies' bytes unless its settings say: `mmax`, `bmax`),
--         retag_n? (a customer's conversations re-placed in this call when a message changes
--         their tags; 50), msgs = [id, conv, cust, ch, lang, mt, at, body, sum, ctags, id,
--         conv, ...]}: ten values a message in a row (read in place, no table
--         made a message); mt / at / body / ctags are msgpack-encoded by the caller
--         (validated there), ctags '' when not given.
-- Returns: msgpack a status per message: 'queued', 'duplicate' or 'assigned:<advisor>'; then,
--          when a customer's new tags left conversations to re-place, [[cust, cursor], ...]
--          for customer_tags calls
-- Fails: conflict, invalid, not_found, too_many
-- Events: assigned, ingested
--@include keys
--@include events
--@include matching
--@include stock
--@include handover
--@include waiting
--@include customers
local cfg = load_cfg()
local now = now_ms()

-- Whether any of `keys` exists: one EXISTS per 500 of them (unpack's bound), however long a
-- batch a library caller sends.
local function any_exists(keys)
  for k = 1, #keys, 500 do
    if redis.call('EXISTS', unpack(keys, k, math.min(k + 499, #keys))) > 0 then return true end
  end
  return false
end

-- The batch: message i's values are F[b + 1] .. F[b + 10], b = (i - 1) * 10, in ARGV's order.
local F = O.msgs
local N = #F / 10

-- Validate the whole batch before the first write. Most batches are new messages only: one
-- EXISTS over all their keys says so, and then none is read.
local seen = {}
local status = {}
local mkeys = {}
for i = 1, N do mkeys[i] = K.msg(F[i * 10 - 9]) end
local stored = any_exists(mkeys)
for i = 1, N do
  local id, sum = F[i * 10 - 9], F[i * 10 - 1]
  local prev = seen[id] or (stored and redis.call('HGET', mkeys[i], 'sum'))
  if prev then
    -- (an earlier version stored the checksum as 24 hex digits; 12 bytes now)
    if prev ~= sum and not (#prev == 24 and prev == hex(sum)) then
      fail('conflict', 'id', 'message ' .. id .. ' was already ingested with a different content')
    end
    status[i] = 'duplicate'
  end
  seen[id] = sum
end
-- A conversation holds at most O.maxconv messages not yet processed (waiting, or in an
-- advisor's hands): a press, a requeue and a re-bucketing move a conversation whole, so this
-- bounds the work of one call whatever an upstream sends.
-- (Read once per conversation: whether it exists, for the writes below. Most batches open
-- new conversations only: one EXISTS over all their keys says so, and then none is read.)
local exists = {}
local ckeys, ckey = {}, {}
for i = 1, N do
  local conv = F[i * 10 - 8]
  if not status[i] and exists[conv] == nil then
    exists[conv] = false
    ckey[conv] = K.conv(conv)
    ckeys[#ckeys + 1] = ckey[conv]
  end
end
if any_exists(ckeys) then exists = {} end
if O.maxconv then
  local adding = {}
  for i = 1, N do
    local conv = F[i * 10 - 8]
    if not status[i] then
      local a = adding[conv]
      if not a and exists[conv] == false then a = 0 end
      if not a then
        local c = redis.call('HMGET', ckey[conv], 'held', 'w', 'q', 'n', 'cust')
        exists[conv] = (c[1] or c[4] or c[5]) and true or false
        -- nothing waits in a conversation that is in no queue
        local waiting = (c[3] and c[3] ~= '') and waiting_count(conv, c[2]) or 0
        a = (tonumber(c[1] or '0') or 0) + waiting
      end
      a = a + 1
      adding[conv] = a
      if a > tonumber(O.maxconv) then
        fail('invalid', 'conversation', 'conversation ' .. conv .. ' already holds ' ..
          O.maxconv .. ' messages not yet processed')
      end
    end
  end
end
-- A team has at most O.maxch distinct channels waiting at once (the index and /metrics stay
-- bounded); a channel leaves the index when its last waiting message does.
if O.maxch then
  local known, new = {}, 0
  for i = 1, N do
    local ch = F[i * 10 - 6]
    if not status[i] and not known[ch] then
      known[ch] = true
      if redis.call('SISMEMBER', K.channels, ch) == 0 then new = new + 1 end
    end
  end
  if new > 0 and redis.call('SCARD', K.channels) + new > tonumber(O.maxch) then
    fail('invalid', 'channel', 'a team has at most ' .. O.maxch .. ' channels with waiting messages')
  end
end

-- A message carrying its customer's new tags: stored, and the customer's waiting
-- conversations re-placed, the first page here (all of a customer's few), the rest by the
-- caller's customer_tags calls from the cursor this batch's answer gives (`retag`).
-- What the batch's end writes or answers besides (one table: the main chunk is at Lua's 200
-- locals): the bookkeeping written with the arrival order (`nm`, `nb`, `rs`, `rn`: field,
-- value, ...), the customers to go on re-placing.
local batch_end = {retag = {}, notes = {}}
local function set_customer_tags(cust, packed)
  local ck = K.cust(cust)
  if redis.call('HGET', ck, 'tags') == packed then return end
  redis.call('HSET', ck, 'tags', packed)
  local convs, cursor = customer_convs_page(cust, '0', O.retag_n or 50)
  for _, conv in ipairs(convs) do
    local q = redis.call('HGET', K.conv(conv), 'q')
    if q and q ~= '' then place_conv(cfg, conv) end
  end
  if cursor ~= '0' then batch_end.retag[#batch_end.retag + 1] = {cust, cursor} end
end

-- Add one new waiting message to its conversation's place in the stock: O(G + log N).
-- Returns the group the conversation now waits in (where the message arrived).
local function enqueue(id, conv)
  local ck = K.conv(conv)
  local c = redis.call('HMGET', ck, 'q', 'so', 'fw', 'lw', 'rsk', 'g', 'w', 'why')
  local qk = q_key(c[1])
  local cur_prefix = P .. 'q:' .. cfg.ver .. ':'
  if not qk or qk == '' or string.sub(qk, 1, #cur_prefix) ~= cur_prefix then
    local set = waiting_push(conv, id, c[7])
    if #set > 0 then redis.call('HSET', ck, unpack(set)) end
    return place_conv(cfg, conv)
  end
  local group = conv_group(cfg, c[1], c[6], c[8])
  local set = waiting_push(conv, id, c[7])
  local m = match_view(id)
  local gi, gn, why, pending = classify(cfg, m, conv_cust_tags(ck))
  -- a conversation opened into the stock keeps no fw / lw while they equal its start (so)
  local fw, lw = tonumber(c[3] or c[2]), math.max(tonumber(c[4] or c[2]), m.ord)
  local cur = queue_group(qk)
  local was = Q.conv_score(cfg, c[1], c[2], c[3], c[4])
  local sc = Q.score(cfg.order, tonumber(c[2]), fw, lw)
  if gi < cur then
    Q.rem(cfg, qk, was, conv)
    was = nil
    qk = group_queue(cfg, gi, c[5])
    local q = q_field(qk)
    local named, drop = group_fields(cfg, q, gn, why, c[6], c[8])
    redis.call('HSET', ck, 'q', q, unpack(named))
    if #drop > 0 then redis.call('HDEL', ck, unpack(drop)) end
    cur = gi
    group = gn
  end
  if pending then  -- only groups before where the conversation now waits
    local earlier = {}
    for _, p in ipairs(pending) do if p[1] < cur then earlier[#earlier + 1] = p end end
    schedule(cfg, conv, earlier)
  end
  redis.call('HSET', ck, 'lw', lw, unpack(set))
  if was ~= sc then  -- promoted, or its score follows its last arrival (newest_message)
    if was then Q.rem(cfg, qk, was, conv) end
    Q.add(cfg, qk, sc, conv)
  end
  return group
end

-- The first matching rule: its advisor (while logged in) and why, or the skill the message's
-- conversation is restricted to while it waits (a rule that targets a skill).
local function triage(id, cust)
  local rules = cfg_triage(cfg)
  if #rules == 0 then return nil end
  local m = match_view(id)
  local ct = cust_tags(cust)
  for _, r in ipairs(rules) do
    local why = match(r.m, m, ct)
    if why then
      if r.s then return nil, nil, r.s end
      local st = redis.call('HGET', K.adv(r.a), 'st')
      if st and st ~= 'off' then return r.a, 'triage rule ' .. r.n .. ': ' .. why end
      return nil
    end
  end
  return nil
end

-- A batch's tag lists and attribute maps, decoded once each (messages share them: a view
-- only reads them).
local tag_sets, attr_maps = {}, {}
local function decoded(memo, packed, as_set)
  local v = memo[packed]
  if not v then
    v = cmsgpack.unpack(packed)
    if as_set then v = toset(v) end
    memo[packed] = v
  end
  return v
end

-- Place a conversation created by this message alone: its view comes from the message in
-- hand, so nothing is read back (the common case: most messages open a conversation).
local function place_new(b, ck, ord, ord_s, skill)
  local id, conv, cust, ch, lang, mt, at = unpack(F, b + 1, b + 7)
  local need = group_needs(cfg)  -- (tags, attributes, customer's tags: what a group reads)
  local view = { id = id, ch = ch, lang = lang, re = false, ord = ord, cust = cust,
                 mt = need.mt and decoded(tag_sets, mt, true) or {},
                 at = need.at and decoded(attr_maps, at, false) or {} }
  local gi, gn, why, pending = classify(cfg, view, need.ct and cust_tags(cust) or {})
  schedule(cfg, conv, pending)
  local qk = group_queue(cfg, gi, skill)
  local sc = Q.score(cfg.order, ord, ord, ord)
  Q.add(cfg, qk, sc == ord and ord_s or int(sc), conv)
  -- its first and last waiting arrival are its start, nobody holds it, a skill restricts it
  -- only when triage said so, and its queue's key names its group and usual why: those
  -- fields are left out (114 bytes per waiting conversation), read as such (fw and lw
  -- default to so; owner, held and rsk to empty; the group index from `q`, its name and why
  -- from the settings: groupnames.lua)
  local q = q_field(qk)
  local named = group_fields(cfg, q, gn, why, false, false)
  if skill then named = {'rsk', skill, unpack(named)} end
  redis.call('HSET', ck, 'n', '1', 'cust', cust, 'so', ord_s, 'q', q, 'w', id,
    unpack(named))
  return gn
end

-- Arrival order: now in microseconds-like units, strictly after the last arrival of the team
-- whatever the batch size or rate (a burst of over 1,000 in a millisecond borrows from the
-- next one); below 2^53, so exact in Lua's doubles. Read with the messages the team stores
-- and their bodies' bytes (`nm`, `nb`) and its bounds of both (`mmax`, `bmax`, else O.maxmsg,
-- O.maxbytes; 0: none), and the new messages of this second (`rs`, `rn`) and the most it may
-- take a second (`rmax`, an operator's; none by default): a batch that would pass one is
-- refused whole, so one team's upstream can neither fill the Redis every team shares nor, when
-- capped, take its time.
local last_ord
do
  local book = redis.call('HMGET', K.cfg, 'lo', 'nm', 'mmax', 'nb', 'bmax', 'rmax', 'rs', 'rn')
  last_ord = tonumber(book[1] or '0') or 0
  local stored = tonumber(book[2])  -- nil: a team an earlier version created, not counted yet
  local adding, bytes = 0, 0
  for i = 1, N do
    if not status[i] then adding = adding + 1; bytes = bytes + #F[i * 10 - 2] end
  end
  local bound = tonumber(book[3] or O.maxmsg or 0) or 0
  if stored and bound > 0 and adding > 0 and stored + adding > bound then
    fail('too_many', 'messages', 'team ' .. TEAM .. ' stores ' .. stored .. ' messages of the ' ..
      bound .. ' it may (waiting, in hands, done within retention): ' .. adding ..
      ' more would pass it')
  end
  local held, bbound = tonumber(book[4] or '0') or 0, tonumber(book[5] or O.maxbytes or 0) or 0
  if stored and bbound > 0 and bytes > 0 and held + bytes > bbound then
    fail('too_many', 'messages', 'team ' .. TEAM .. ' stores ' .. held .. ' bytes of message ' ..
      'bodies of the ' .. bbound .. ' it may: ' .. bytes .. ' more would pass it')
  end
  local rmax = tonumber(book[6] or '0') or 0
  if rmax > 0 and adding > 0 then
    local sec = string.format('%d', math.floor(now / 1000))
    local rn = (book[7] == sec) and (tonumber(book[8]) or 0) or 0
    if rn + adding > rmax then
      fail('too_many', 'messages', 'team ' .. TEAM .. ' takes at most ' .. rmax ..
        ' new messages a second: ' .. rn .. ' this second, ' .. adding .. ' more would pass it')
    end
    local notes = batch_end.notes
    notes[#notes + 1] = 'rs'; notes[#notes + 1] = sec
    notes[#notes + 1] = 'rn'; notes[#notes + 1] = string.format('%d', rn + adding)
  end
  if stored then
    local notes = batch_end.notes
    notes[#notes + 1] = 'nm'; notes[#notes + 1] = string.format('%d', stored + adding)
    notes[#notes + 1] = 'nb'; notes[#notes + 1] = string.format('%d', held + bytes)
  end
end
local arrivals = {}
chan_batch()  -- the channels' stock counts are written once per channel and second, below
Q.batch()  -- the arrivals at each queue's last bucket are written together, below
for i = 1, N do
  if not status[i] then
    local b = i * 10 - 10
    local id, conv, cust, ch, lang, mt, at, body, sum, ctags = unpack(F, b + 1, b + 10)
    local ord = now * 1000
    if ord <= last_ord then ord = last_ord + 1 end
    last_ord = ord
    local ord_s = string.format('%d', ord)  -- written three times: formatted once (keys.lua's ms)
    if ctags ~= '' then set_customer_tags(cust, ctags) end
    local ck = ckey[conv]
    local fresh
    if exists[conv] == nil then fresh = redis.call('EXISTS', ck) == 0
    else fresh = not exists[conv] end
    exists[conv] = true
    -- `n` counts its messages (the purge forgets it with its last); a new one is written whole
    -- below, with n = 1
    if fresh then customer_add_conv(cust, conv)
    else redis.call('HINCRBY', ck, 'n', '1') end
    -- written whole, waiting (an assignment below rewrites what changes); the fields a waiting
    -- message has empty (advisor, via, group, why; a language, tags or attributes not given)
    -- or zero (requeues, reassigned) or repeated (the arrival's millisecond, in `ord`; the
    -- customer, its conversation's: views.lua) are left out, 121 bytes per waiting message:
    -- readers take a missing field for empty or zero
    local fields = {'conv', conv, 'ch', ch, 'body', body, 'sum', sum,
      'ord', ord_s, 'st', 'w'}
    -- the arrival is the millisecond of `ord` (keys.lua's arrival_ms), but in a burst that
    -- borrowed from the next millisecond
    if math.floor(ord / 1000) ~= now then
      fields[#fields + 1] = 'ts'
      fields[#fields + 1] = ms(now)
    end
    if lang ~= '' then fields[#fields + 1] = 'lang'; fields[#fields + 1] = lang end
    if mt ~= EMPTY_LIST then fields[#fields + 1] = 'mt'; fields[#fields + 1] = mt end
    if at ~= EMPTY_MAP then fields[#fields + 1] = 'at'; fields[#fields + 1] = at end
    redis.call('HSET', mkeys[i], unpack(fields))
    event(cfg, 'ingested', now, 'm', id, 'c', conv, 'ch', ch)
    local owner = not fresh and redis.call('HGET', ck, 'owner')
    local owner_st = owner and owner ~= '' and redis.call('HGET', K.adv(owner), 'st')
    if owner_st and owner_st ~= 'off' then
      local pushed = redis.call('HEXISTS', K.pconv(owner), conv) == 1
      give(cfg, owner, id, conv, 'affinity', now, pushed, 'conversation held by ' .. owner)
      status[i] = 'assigned:' .. owner
    else
      local adv, why, skill = nil, nil, nil
      local q = fresh and '' or redis.call('HGET', ck, 'q')
      if q == '' then
        adv, why, skill = triage(id, cust)
        -- the conversation waits restricted to the rule's skill, or no longer restricted
        if not fresh and not adv then redis.call('HSET', ck, 'rsk', skill or '') end
      end
      if adv then
        if fresh then
          redis.call('HSET', ck, 'n', '1', 'cust', cust, 'so', ord_s, 'owner', '', 'held', '0',
            'q', '')
        end
        give(cfg, adv, id, conv, 'triage', now, false, why)
        redis.call('HSET', mkeys[i], 'why', why)
        status[i] = 'assigned:' .. adv
      else
        to_waiting(id, conv, ch, now, true, true)  -- listed by place_new / enqueue
        local group
        if fresh then group = place_new(b, ck, ord, ord_s, skill) else group = enqueue(id, conv) end
        if group then arrivals[group] = (arrivals[group] or 0) + 1 end
        status[i] = 'queued'
      end
    end
  end
end
-- arrivals per group, for the reports and the team view: one write per group per batch
for group, n in pairs(arrivals) do
  rep_add(cfg, now, 'ga|' .. group, n)
  rep_recent(now, 'a|' .. group, n)
end
Q.flush()
cfg_note('lo', string.format('%d', last_ord), unpack(batch_end.notes))
chan_flush(cfg)
if #batch_end.retag > 0 then status[N + 1] = batch_end.retag end  -- (customers to go on with)
return reply(status)
