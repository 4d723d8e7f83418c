-- repair: put a team back in order after drift that `check` reports (a bug, a hand edit, a
-- restore from an old backup). The message records are the truth: every place and counter
-- is made to agree with them, in one atomic call (O(messages), like check: an ops tool, not
-- for the hot path). A message in no place goes where its state says; one that an advisor
-- should hold but does not goes back to the team's stock, marked reassigned. Messages
-- stranded with a logged-out advisor are left to the reconciler (`tick`), which hands them
-- back in batches. Returns how many fixes were made.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {now?}
-- Returns: msgpack {fixed (how many fixes were made)}
-- Fails: not_found
-- Events: assigned, requeued
--@include keys
--@include scan
--@include events
--@include stock
--@include handover
--@include requeue
--@include waiting
--@include channels
local cfg = load_cfg()
local now = now_ms()
local fixed = 0
local function fix(n) fixed = fixed + (n or 1) end

-- The truth: every message record.
local msgs = {}
local plen = #(P .. 'm:')
scan('m:*', function(k)
  local v = redis.call('HMGET', k, 'st', 'adv', 'conv', 'ch', 'ts', 'dt', 'ord')
  msgs[string.sub(k, plen + 1)] = { st = v[1], adv = v[2], conv = v[3], ch = v[4],
                                    ts = arrival_ms(v[5], v[7]) or now, dt = tonumber(v[6]) or now }
end)

-- 0. The messages the team stores and their bodies' bytes (`nm`, `nb`: the bounds ingest
-- keeps) are its records'; a team an earlier version created starts counting here.
do
  local n, b = 0, 0
  for id in pairs(msgs) do n = n + 1; b = b + redis.call('HSTRLEN', K.msg(id), 'body') end
  local book = redis.call('HMGET', K.cfg, 'nm', 'nb')
  if tonumber(book[1]) ~= n or tonumber(book[2]) ~= b then cfg_note('nm', n, 'nb', b); fix() end
end

-- 1. Presence agrees with each advisor's state.
local advisors = redis.call('SMEMBERS', K.advisors)
for _, adv in ipairs(advisors) do
  local st = redis.call('HGET', K.adv(adv), 'st')
  local seen = redis.call('ZSCORE', K.online, adv)
  if st ~= 'off' and not seen then redis.call('ZADD', K.online, now, adv); fix() end
  if st == 'off' and seen then redis.call('ZREM', K.online, adv); fix() end
end

-- 2. The waiting stock: each conversation once, in the queue it records, holding only its own
-- waiting messages; waiting lists in no queue are queued again.
local queued = {}
local touched = {}
-- A conversation keeps its waiting messages in its record (`w`) or in a list, never both:
-- one that has both keeps the list (put back in arrival order below).
local inline = {}
local cplen = #(P .. 'c:')
scan('c:*', function(k)
  local w = redis.call('HGET', k, 'w')
  if w and w ~= '' then inline[string.sub(k, cplen + 1)] = true end
end)
for conv in pairs(inline) do
  if redis.call('EXISTS', K.cw(conv)) == 1 then
    local w = redis.call('HGET', K.conv(conv), 'w')
    if not redis.call('LPOS', K.cw(conv), w) then redis.call('LPUSH', K.cw(conv), w) end
    redis.call('HSET', K.conv(conv), 'w', '')
    inline[conv] = nil
    fix()
  end
end
-- Each queue's conversations, bucket by bucket (queue.lua): one out of its bucket's range or
-- scored otherwise than its record says is placed again (below), as one in two queues is.
local rows = {}
for _, qk in ipairs(queue_keys(cfg)) do
  Q.buckets(cfg, qk, function(bk, from, to)
    local r = redis.call('ZRANGE', bk, 0, -1, 'WITHSCORES')
    for i = 1, #r, 2 do rows[#rows + 1] = {r[i], qk, bk, tonumber(r[i + 1]), from, to} end
  end)
end
for _, row in ipairs(rows) do
  local conv, qk, bk, sc = row[1], row[2], row[3], row[4]
  do
    local c = redis.call('HMGET', K.conv(conv), 'q', 'so', 'fw', 'lw')
    local want = q_key(c[1]) == qk and Q.conv_score(cfg, c[1], c[2], c[3], c[4])
    if queued[conv] then
      redis.call('ZREM', bk, conv); fix()
    else
      if (row[5] and sc < row[5]) or (row[6] and sc >= row[6]) or (want and want ~= sc) then
        redis.call('ZREM', bk, conv)
        Q.add(cfg, qk, want or sc, conv); fix()
      end
      queued[conv] = qk
      for _, id in ipairs(waiting_ids(conv)) do
        local m = msgs[id]
        if not m or m.st ~= 'w' or m.conv ~= conv then
          waiting_remove(conv, id); fix()
        end
      end
      if q_key(redis.call('HGET', K.conv(conv), 'q')) ~= qk then  -- record where it really is
        redis.call('HSET', K.conv(conv), 'q', q_field(qk)); touched[conv] = true; fix()
      end
      if waiting_count(conv) == 0 then touched[conv] = true end
    end
  end
end
local cwlen = #(P .. 'cw:')
local lists = {}
scan('cw:*', function(k) lists[#lists + 1] = string.sub(k, cwlen + 1) end)
for conv in pairs(inline) do lists[#lists + 1] = conv end
for _, conv in ipairs(lists) do
  if not queued[conv] then
    for _, id in ipairs(waiting_ids(conv)) do
      local m = msgs[id]
      if not m or m.st ~= 'w' or m.conv ~= conv then waiting_remove(conv, id); fix() end
    end
    touched[conv] = true  -- queued again by place_conv below (or dropped when now empty)
    fix()
  end
end
-- Which waiting messages are in their conversation's list now.
local listed = {}
for conv in pairs(queued) do
  for _, id in ipairs(waiting_ids(conv)) do listed[id] = true end
end
for _, conv in ipairs(lists) do
  for _, id in ipairs(waiting_ids(conv)) do listed[id] = true end
end

-- 3. An earlier version's per-message channel index holds only waiting messages of the
-- channel (the counts per second are rebuilt where they disagree, in 6b).
local indexed = {}
for _, ch in ipairs(redis.call('SMEMBERS', K.channels)) do
  for _, id in ipairs(redis.call('ZRANGE', K.ch(ch), 0, -1)) do
    local m = msgs[id]
    if not m or m.st ~= 'w' or m.ch ~= ch then redis.call('ZREM', K.ch(ch), id); fix()
    else indexed[id] = true end
  end
end

-- 4. Advisors' hands: only messages recorded with them; pushed and on-hold within them;
-- capacity counts and conversation held counts recomputed.
local held = {}
local in_hands = {}  -- message -> the advisor holding it
local hands_of = {}  -- conversation -> the ids advisors hold of it
for _, adv in ipairs(advisors) do
  for _, id in ipairs(redis.call('ZRANGE', K.cur(adv), 0, -1)) do
    local m = msgs[id]
    if not m or m.st ~= 'a' or m.adv ~= adv or in_hands[id] then
      redis.call('ZREM', K.cur(adv), id); fix()
    else
      in_hands[id] = adv
      held[m.conv] = (held[m.conv] or 0) + 1
      hands_of[m.conv] = hands_of[m.conv] or {}
      table.insert(hands_of[m.conv], id)
    end
  end
  local pc = {}
  for _, id in ipairs(redis.call('ZRANGE', K.push(adv), 0, -1)) do
    if in_hands[id] ~= adv then redis.call('ZREM', K.push(adv), id); fix()
    else pc[msgs[id].conv] = (pc[msgs[id].conv] or 0) + 1 end
  end
  local rec = redis.call('HGETALL', K.pconv(adv))
  local same, nrec, npc = true, 0, 0
  for i = 1, #rec, 2 do
    nrec = nrec + 1
    if tonumber(rec[i + 1]) ~= pc[rec[i]] then same = false end
  end
  for _ in pairs(pc) do npc = npc + 1 end
  if not same or nrec ~= npc then
    redis.call('DEL', K.pconv(adv))
    for conv, n in pairs(pc) do redis.call('HSET', K.pconv(adv), conv, n) end
    fix()
  end
  for _, id in ipairs(redis.call('SMEMBERS', K.hold(adv))) do
    if in_hands[id] ~= adv then redis.call('SREM', K.hold(adv), id); fix() end
  end
end

-- 5. Help requests, quarantine and done hold only messages in that state.
local in_set = {}
for _, spec in ipairs({{K.help, 'h'}, {K.quar, 'q'}, {K.done, 'd'}}) do
  for _, id in ipairs(redis.call('ZRANGE', spec[1], 0, -1)) do
    local m = msgs[id]
    if not m or m.st ~= spec[2] then redis.call('ZREM', spec[1], id); fix()
    else in_set[id] = true end
  end
end

-- 6. Every message where its state says, exactly once.
for id, m in pairs(msgs) do
  if m.st == 'w' then
    if not listed[id] then
      local set = waiting_push(m.conv, id)
      if #set > 0 then redis.call('HSET', K.conv(m.conv), unpack(set)) end
      touched[m.conv] = true; fix()
    end
  elseif m.st == 'a' then
    if not in_hands[id] then  -- nobody holds it: back to the team, marked reassigned
      redis.call('HSET', K.msg(id), 're', '1')
      to_waiting(id, m.conv, m.ch, m.ts)
      m.back = true
      touched[m.conv] = true
      event(cfg, 'requeued', now, 'm', id, 'c', m.conv, 'why', 'repair')
      fix()
    end
  elseif (m.st == 'h' or m.st == 'q' or m.st == 'd') and not in_set[id] then
    local key = (m.st == 'h' and K.help) or (m.st == 'q' and K.quar) or K.done
    redis.call('ZADD', key, m.st == 'd' and m.dt or now, id); fix()
  end
end
for conv in pairs(touched) do place_conv(cfg, conv) end

-- 6b. Each channel's counts per second (channels.lua) equal its waiting messages that an
-- earlier version's index does not hold; a channel's are rebuilt whole where they do not.
-- The team's index of channels lists exactly the channels with something waiting.
local by_ch = {}
for id, m in pairs(msgs) do
  if (m.st == 'w' or m.back) and not indexed[id] and m.ch then
    by_ch[m.ch] = by_ch[m.ch] or {}
    table.insert(by_ch[m.ch], m.ts)
  end
end
local chs = {}
for _, ch in ipairs(redis.call('SMEMBERS', K.channels)) do chs[ch] = true end
for ch in pairs(by_ch) do chs[ch] = true end
for ch in pairs(chs) do
  local ts = by_ch[ch] or {}
  local e, ne = {}, 0
  for _, t in ipairs(ts) do
    local s = chan_second(t)
    if not e[s] then ne = ne + 1 end
    e[s] = (e[s] or 0) + 1
  end
  local rec = redis.call('HGETALL', K.cn(ch))
  local same, nf = (#ts == 0) == (#rec == 0), 0
  for i = 1, #rec, 2 do
    local n = tonumber(rec[i + 1])
    if rec[i] == 'n' then same = same and n == #ts
    else nf = nf + 1; same = same and n == e[rec[i]] end
  end
  local ordered = redis.call('ZRANGE', K.cb(ch), 0, -1)
  same = same and nf == ne and #ordered == ne
  for _, s in ipairs(ordered) do same = same and e[s] ~= nil end
  if not same then
    redis.call('DEL', K.cn(ch), K.cb(ch))
    table.sort(ts)  -- each second scored by its first arrival
    for _, t in ipairs(ts) do chan_in(ch, t) end
    fix()
  end
  local waits = #ts > 0 or redis.call('EXISTS', K.ch(ch)) == 1
  if waits and redis.call('SADD', K.channels, ch) == 1 then fix() end
  if not waits and redis.call('SREM', K.channels, ch) == 1 then fix() end
end

-- 7. Conversations' held counts equal what advisors hold, and each conversation lists
-- exactly those in hands: the first in its record (`h`), the others in its set (rebuilt).
local clen = #(P .. 'c:')
scan('c:*', function(k)
  local conv = string.sub(k, clen + 1)
  local n = held[conv] or 0
  local c = redis.call('HMGET', k, 'held', 'h')
  if tonumber(c[1] or '0') ~= n then
    redis.call('HSET', k, 'held', n)
    if n == 0 then redis.call('HSET', k, 'owner', '') end
    fix()
  end
  -- valid: `h` (when not empty) and the set's members are the ids in hands, none twice
  local ids = hands_of[conv] or {}
  local want = {}
  for _, id in ipairs(ids) do want[id] = true end
  local sk = K.held(conv)
  local listed = redis.call('SMEMBERS', sk)
  local h = c[2] or ''
  if h ~= '' then listed[#listed + 1] = h end
  local ok = #listed == #ids
  for _, id in ipairs(listed) do
    if not want[id] then ok = false end
    want[id] = nil  -- a second listing of the same id finds it gone
  end
  if not ok then
    redis.call('DEL', sk)
    if ids[1] or c[2] then redis.call('HSET', k, 'h', ids[1] or '') end
    for i = 2, #ids do redis.call('SADD', sk, ids[i]) end
    fix()
  end
end)
scan('hd:*', function(k)  -- a set left behind by a conversation that is gone
  if redis.call('EXISTS', K.conv(string.sub(k, #(P .. 'hd:') + 1))) == 0 then
    redis.call('DEL', k)
  end
end)

-- 7b. One conversation, one holder, in arrival order. A conversation that two advisors hold
-- goes whole to one of them (its recorded owner when logged in, else the first logged-in one);
-- waiting messages of a conversation a logged-in advisor holds go to them; waiting lists are
-- put back in arrival order.
local by_conv = {}
for _, adv in ipairs(advisors) do
  local live = redis.call('HGET', K.adv(adv), 'st') ~= 'off'
  for _, id in ipairs(redis.call('ZRANGE', K.cur(adv), 0, -1)) do
    local conv = msgs[id] and msgs[id].conv
    if conv then
      by_conv[conv] = by_conv[conv] or {}
      by_conv[conv][adv] = live
    end
  end
end
for conv, by in pairs(by_conv) do
  local owner = redis.call('HGET', K.conv(conv), 'owner')
  local keeper = (owner and by[owner]) and owner or nil
  local names = {}
  for adv, live in pairs(by) do
    names[#names + 1] = adv
    if live and not keeper then keeper = adv end
  end
  table.sort(names)
  if keeper then
    for _, adv in ipairs(names) do
      if adv ~= keeper then
        for _, m in ipairs(by_arrival(held_ids(adv, conv))) do
          release(adv, m.id, conv)
          give(cfg, keeper, m.id, conv, 'affinity', now, false, 'repair: one holder per conversation')
          fix()
        end
      end
    end
    local q = redis.call('HGET', K.conv(conv), 'q')
    if q and q ~= '' then
      give_conv(cfg, keeper, conv, 'affinity', now, false, false)
      fix()
    end
  end
end
for _, qk in ipairs(queue_keys(cfg)) do
  for _, conv in ipairs(Q.slot_range(cfg, {qk}, 1000000000)) do
    local ids = waiting_ids(conv)
    local sorted = by_arrival(ids)
    for i, m in ipairs(sorted) do
      if m.id ~= ids[i] then
        redis.call('DEL', K.cw(conv))
        merge_waiting(conv, sorted)
        place_conv(cfg, conv)
        fix()
        break
      end
    end
  end
end

-- 8. Today's figures equal today's done messages.
local today = math.floor(now / DAY_MS)
local figures = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.done, today * DAY_MS, (today + 1) * DAY_MS - 1)) do
  local v = redis.call('HMGET', K.msg(id), 'dk', 'by')
  local f = ((v[1] == 'replied') and 'r:' or 'x:') .. tostring(v[2])
  figures[f] = (figures[f] or 0) + 1
end
local dk = K.day(today)
-- Figures are never lowered from done messages the purge removed (retention under a day).
local purged_today = (tonumber(redis.call('HGET', K.cfg, 'pw') or '0') or 0) >= today * DAY_MS
local rec = redis.call('HGETALL', dk)
for i = 1, #rec, 2 do
  local f = rec[i]
  local kind = string.sub(f, 1, 1)
  if (kind == 'r' or kind == 'x') and #f > 2 and string.sub(f, 2, 2) == ':' then
    if figures[f] == nil and tonumber(rec[i + 1]) ~= 0 and not purged_today then
      redis.call('HDEL', dk, f); fix()
    end
  end
end
for f, n in pairs(figures) do
  local r = tonumber(redis.call('HGET', dk, f) or '0')
  if r ~= n and not (purged_today and r > n) then
    redis.call('HSET', dk, f, n); fix()
    if redis.call('PTTL', dk) == -1 then redis.call('PEXPIRE', dk, cfg.dttl) end
  end
end

return reply({fixed = fixed})
