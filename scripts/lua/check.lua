-- check: verify a team's invariants in one atomic snapshot (read-only; O(messages), for ops
-- and tests, not for the hot path). Every message is in exactly one place that agrees with its
-- state; every index and counter equals what the sets hold. Returns counts and problems.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {now?, max? (problems reported at most)}
-- Returns: msgpack {ok, problems (at most `max`), nproblems, counts (messages per state)}
-- Fails: not_found
-- Events: none
-- Flags: no-writes
--@include keys
--@include scan
--@include waiting
--@include channels
--@include groupnames
--@include queue
local cfg = load_cfg()
local now = now_ms()
local max = tonumber(O.max or 100)
local problems = {}
local nproblems = 0
local function bad(s)
  nproblems = nproblems + 1
  if #problems < max then problems[#problems + 1] = s end
end

-- 1. Every message hash, by SCAN (the team's keys all live on this node), in the one walk of
-- the node's keyspace this call makes: the conversations' records and waiting lists, read
-- below, are listed in the same walk.
local msgs = {}
local plen = #(P .. 'm:')
local team_keys = scan_kinds({m = function(k)
  local v = redis.call('HMGET', k, 'st', 'adv', 'conv', 'ch', 'dk', 'dt', 'by', 'ord', 'ts')
  msgs[string.sub(k, plen + 1)] = { st = v[1], adv = v[2], conv = v[3], ch = v[4], dk = v[5],
                                    dt = tonumber(v[6]), by = v[7], ord = tonumber(v[8]),
                                    ts = arrival_ms(v[9], v[8]), places = {} }
end, c = true, cw = true})
local function each_key(kind, f) for _, k in ipairs(team_keys[kind]) do f(k) end end
do  -- the messages and body bytes the team counts as stored (`nm`, `nb`: ingest's bounds) are
  -- its records' (a team an earlier version created counts none until `repair` starts)
  local book = redis.call('HMGET', K.cfg, 'nm', 'nb')
  if book[1] then
    local n, b = 0, 0
    for id in pairs(msgs) do n = n + 1; b = b + redis.call('HSTRLEN', K.msg(id), 'body') end
    if tonumber(book[1]) ~= n then
      bad('the team counts ' .. book[1] .. ' stored messages, its message records are ' .. n)
    end
    if tonumber(book[2] or '0') ~= b then
      bad('the team counts ' .. (book[2] or '0') .. ' bytes of stored bodies, its records hold ' ..
        b)
    end
  end
end

local counts = { messages = 0, waiting = 0, assigned = 0, help = 0, quarantine = 0, done = 0,
                 conversations_waiting = 0 }
local function place(id, name, st)
  local m = msgs[id]
  if not m then bad(name .. ' holds ' .. id .. ', which has no message record'); return nil end
  m.places[#m.places + 1] = name
  if m.st ~= st then bad('message ' .. id .. ' is in ' .. name .. ' but its state is ' .. tostring(m.st)) end
  return m
end

-- 2. The waiting stock: each queued conversation, its waiting messages (its group's name read
-- from the settings as stored, not as a library keeps them: groupnames.lua).
local names = {}
local convs_in_queue = {}
local queued = {}  -- {conversation, queue, score, its bucket's bound, the next bucket's}
for _, qk in ipairs(queue_keys(cfg)) do
  Q.buckets(cfg, qk, function(bk, from, to)
    local r = redis.call('ZRANGE', bk, 0, -1, 'WITHSCORES')
    for i = 1, #r, 2 do queued[#queued + 1] = {r[i], qk, tonumber(r[i + 1]), from, to} end
  end)
end
for _, row in ipairs(queued) do
  local conv, qk, sc = row[1], row[2], row[3]
  do
    if convs_in_queue[conv] then bad('conversation ' .. conv .. ' is in two queues') end
    convs_in_queue[conv] = qk
    counts.conversations_waiting = counts.conversations_waiting + 1
    local c = redis.call('HMGET', K.conv(conv), 'q', 'w', 'g', 'so', 'fw', 'lw')
    local q = q_key(c[1])
    if q ~= qk then bad('conversation ' .. conv .. ' is in ' .. qk .. ' but records ' .. tostring(q)) end
    -- where a conversation is found from: its score and its bucket's range (queue.lua)
    if (row[4] and sc < row[4]) or (row[5] and sc >= row[5]) then
      bad('conversation ' .. conv .. ' is in a bucket of ' .. qk .. ' that does not hold its score')
    end
    local want = q == qk and Q.conv_score(cfg, c[1], c[4], c[5], c[6])
    if want and want ~= sc then
      bad('conversation ' .. conv .. ' is scored ' .. string.format('%d', sc) .. ' in ' .. qk ..
        ' but its record says ' .. string.format('%d', want))
    end
    if not c[3] and q == qk and conv_group(names, c[1], false, '') == '' then
      bad('conversation ' .. conv .. ' waits in ' .. qk .. ', whose group the settings do not name')
    end
    if waiting_w(conv, c[2]) and redis.call('EXISTS', K.cw(conv)) == 1 then
      bad('conversation ' .. conv .. ' keeps waiting messages in its record and in a list')
    end
    local ids = waiting_ids(conv, c[2])
    if #ids == 0 then bad('conversation ' .. conv .. ' is queued with no waiting message') end
    local last = nil
    for _, id in ipairs(ids) do
      local m = place(id, 'waiting stock', 'w')
      if m and m.conv ~= conv then bad('message ' .. id .. ' waits under conversation ' .. conv .. ' but belongs to ' .. tostring(m.conv)) end
      if m and m.ord then
        if last and m.ord < last then
          bad('conversation ' .. conv .. ' waits out of arrival order (' .. id .. ')')
        end
        last = m.ord
      end
    end
  end
end
-- Waiting lists whose conversation is in no queue (stranded).
each_key('cw', function(k)
  local conv = string.sub(k, #(P .. 'cw:') + 1)
  if not convs_in_queue[conv] then
    bad('conversation ' .. conv .. ' has waiting messages but is in no queue')
  end
end)
each_key('c', function(k)
  local conv = string.sub(k, #(P .. 'c:') + 1)
  if not convs_in_queue[conv] and waiting_w(conv, redis.call('HGET', k, 'w') or false) then
    bad('conversation ' .. conv .. ' has a waiting message in its record but is in no queue')
  end
end)

-- 3. Per-channel stock counts (channels.lua) equal the waiting messages: per second of
-- arrival and in all, and the seconds ordered are those with any; an earlier version's
-- per-message index holds only waiting messages of its channel, none also counted per second.
local expect = {}  -- channel -> second -> waiting messages not in an earlier version's index
local indexed = {}
for _, ch in ipairs(redis.call('SMEMBERS', K.channels)) do
  indexed[ch] = true
  if redis.call('EXISTS', K.ch(ch), K.cn(ch)) == 0 then
    bad('channel ' .. ch .. ' is indexed with no waiting message')
  end
  for _, id in ipairs(redis.call('ZRANGE', K.ch(ch), 0, -1)) do
    local m = msgs[id]
    if not m or m.st ~= 'w' or m.ch ~= ch then
      bad('channel ' .. ch .. ' counts ' .. id .. ', which is not waiting on that channel')
    else  -- (a sorted set holds an id once: no message is counted twice in one channel)
      m.counted = true
    end
  end
end
for _, m in pairs(msgs) do
  if m.st == 'w' and not m.counted and m.ch then
    local e = expect[m.ch] or {}
    expect[m.ch] = e
    local s = chan_second(m.ts or 0)
    e[s] = (e[s] or 0) + 1
  end
end
local chans = {}
for ch in pairs(indexed) do chans[ch] = true end
for ch in pairs(expect) do
  chans[ch] = true
  if not indexed[ch] then bad('channel ' .. ch .. ' has waiting messages but is not indexed') end
end
for ch in pairs(chans) do
  local e = expect[ch] or {}
  local total = 0
  for _, n in pairs(e) do total = total + n end
  local rec = redis.call('HGETALL', K.cn(ch))
  local seen, n_all = {}, nil
  for i = 1, #rec, 2 do
    local f, n = rec[i], tonumber(rec[i + 1])
    if f == 'n' then n_all = n
    else
      seen[f] = true
      if n ~= (e[f] or 0) then
        bad('the ' .. ch .. ' stock count says ' .. rec[i + 1] .. ' waiting of second ' .. f ..
          ', ' .. (e[f] or 0) .. ' wait')
      end
    end
  end
  for s, n in pairs(e) do
    if not seen[s] then
      bad('the ' .. ch .. ' stock count says 0 waiting of second ' .. s .. ', ' .. n .. ' wait')
    end
  end
  if (n_all or 0) ~= total then
    bad('the ' .. ch .. ' stock count says ' .. (n_all or 0) .. ' waiting, ' .. total .. ' wait')
  end
  local secs = {}
  for _, s in ipairs(redis.call('ZRANGE', K.cb(ch), 0, -1)) do
    secs[s] = true
    if not e[s] then
      bad('the ' .. ch .. ' stock orders second ' .. s .. ', where nothing waits')
    end
  end
  for s, n in pairs(e) do
    if not secs[s] then
      bad('the ' .. ch .. ' stock does not order second ' .. s .. ', where ' .. n .. ' wait')
    end
  end
end

-- 4. Advisors: current messages, pushed, on hold, presence, capacity bookkeeping.
local held_by_conv = {}
local in_hands = {}  -- conversation -> {id -> the advisor holding it}
local holders = {}  -- conversation -> advisors holding some of its messages
local online = {}
for _, adv in ipairs(redis.call('ZRANGE', K.online, 0, -1)) do online[adv] = true end
for _, adv in ipairs(redis.call('SMEMBERS', K.advisors)) do
  local st = redis.call('HGET', K.adv(adv), 'st')
  if (st ~= 'off') ~= (online[adv] == true) then
    bad('advisor ' .. adv .. ' is ' .. tostring(st) .. ' but presence says ' .. (online[adv] and 'online' or 'offline'))
  end
  local cur = {}
  local ncur = 0
  for _, id in ipairs(redis.call('ZRANGE', K.cur(adv), 0, -1)) do
    local m = place(id, 'current messages of ' .. adv, 'a')
    cur[id] = true
    ncur = ncur + 1
    if m then
      if m.adv ~= adv then bad('message ' .. id .. ' is with ' .. adv .. ' but records advisor ' .. tostring(m.adv)) end
      held_by_conv[m.conv] = (held_by_conv[m.conv] or 0) + 1
      in_hands[m.conv] = in_hands[m.conv] or {}
      in_hands[m.conv][id] = adv
      holders[m.conv] = holders[m.conv] or {}
      holders[m.conv][adv] = st ~= 'off' and 'on' or 'off' 
    end
  end
  if st == 'off' and ncur > 0 then
    bad('advisor ' .. adv .. ' is logged out but still holds ' .. ncur .. ' messages (stranded)')
  end
  local pc = {}
  for _, id in ipairs(redis.call('ZRANGE', K.push(adv), 0, -1)) do
    if not cur[id] then bad('pushed message ' .. id .. ' of ' .. adv .. ' is not in their current messages') end
    local m = msgs[id]
    if m then pc[m.conv] = (pc[m.conv] or 0) + 1 end
  end
  local rec = redis.call('HGETALL', K.pconv(adv))
  local seen = {}
  for i = 1, #rec, 2 do
    seen[rec[i]] = true
    if tonumber(rec[i + 1]) ~= pc[rec[i]] then
      bad('advisor ' .. adv .. ' capacity counts ' .. rec[i + 1] .. ' for ' .. rec[i] .. ', pushed holds ' .. tostring(pc[rec[i]] or 0))
    end
  end
  for conv, n in pairs(pc) do
    if not seen[conv] then bad('advisor ' .. adv .. ' capacity misses conversation ' .. conv) end
  end
  for _, id in ipairs(redis.call('SMEMBERS', K.hold(adv))) do
    if not cur[id] then bad('message ' .. id .. ' is on hold for ' .. adv .. ' but not in their hands') end
  end
end

-- 4b. One conversation, one holder: never two logged-in advisors, never waiting while a
-- logged-in advisor holds some of it (what a logged-out advisor still holds is reported as
-- stranded above: the reconciler hands it to the holder or the stock).
for conv, by in pairs(holders) do
  local names, live = {}, nil
  for adv, state in pairs(by) do
    if state == 'on' then names[#names + 1] = adv; live = adv end
  end
  if #names > 1 then
    table.sort(names)
    bad('conversation ' .. conv .. ' is held by ' .. table.concat(names, ' and '))
  end
  if live and convs_in_queue[conv] then
    bad('conversation ' .. conv .. ' is waiting while ' .. live .. ' holds it')
  end
end

-- 5. Help requests, quarantine, done.
for _, id in ipairs(redis.call('ZRANGE', K.help, 0, -1)) do place(id, 'help requests', 'h') end
for _, id in ipairs(redis.call('ZRANGE', K.quar, 0, -1)) do place(id, 'quarantine', 'q') end
local today = math.floor(now / DAY_MS)
local day_start = today * DAY_MS
local figures = {}
for _, id in ipairs(redis.call('ZRANGE', K.done, 0, -1)) do
  local m = place(id, 'done', 'd')
  if m and m.dt and m.dt >= day_start and m.dt < day_start + DAY_MS then
    local f = ((m.dk == 'replied') and 'r:' or 'x:') .. tostring(m.by)
    figures[f] = (figures[f] or 0) + 1
  end
end

-- 6. Exactly one place per message.
for id, m in pairs(msgs) do
  counts.messages = counts.messages + 1
  if #m.places == 0 then
    bad('message ' .. id .. ' (state ' .. tostring(m.st) .. ') is in no place')
  elseif #m.places > 1 then
    bad('message ' .. id .. ' is in ' .. #m.places .. ' places: ' .. table.concat(m.places, ', '))
  end
  if m.st == 'w' then
    counts.waiting = counts.waiting + 1
  elseif m.st == 'a' then counts.assigned = counts.assigned + 1
  elseif m.st == 'h' then counts.help = counts.help + 1
  elseif m.st == 'q' then counts.quarantine = counts.quarantine + 1
  elseif m.st == 'd' then counts.done = counts.done + 1
  end
end

-- 7. Conversation ownership counts, and each conversation lists the messages advisors hold
-- of it (its record's `h` and its set `hd:<conv>`, none twice: what a requeue or a move of
-- the conversation finds).
each_key('c', function(k)
  local conv = string.sub(k, #(P .. 'c:') + 1)
  local c = redis.call('HMGET', k, 'held', 'h')
  local held = tonumber(c[1] or '0')
  if held ~= (held_by_conv[conv] or 0) then
    bad('conversation ' .. conv .. ' records ' .. held .. ' messages held, advisors hold ' .. (held_by_conv[conv] or 0))
  end
  local hands = in_hands[conv] or {}
  local listed = {}
  for _, id in ipairs(redis.call('SMEMBERS', K.held(conv))) do listed[id] = true end
  if c[2] and c[2] ~= '' then
    if listed[c[2]] then
      bad('conversation ' .. conv .. ' lists ' .. c[2] .. ' in hands in its record and in its set')
    end
    listed[c[2]] = true
  end
  for id in pairs(listed) do
    if not hands[id] then
      bad('conversation ' .. conv .. ' lists ' .. id .. ' in hands, which no advisor holds of it')
    end
  end
  for id, adv in pairs(hands) do
    if not listed[id] then
      bad('conversation ' .. conv .. ' does not list ' .. id .. ', which ' .. adv .. ' holds')
    end
  end
end)

-- 8. Today's figures equal today's done messages (while retention keeps them): each
-- advisor's (the team's totals are their sum when read; a total an older version wrote is
-- not looked at).
local dk = redis.call('HGETALL', K.day(today))
local recorded = {}
for i = 1, #dk, 2 do
  local f = dk[i]
  local kind = string.sub(f, 1, 1)
  if (kind == 'r' or kind == 'x') and #f > 2 and string.sub(f, 2, 2) == ':' then
    recorded[f] = tonumber(dk[i + 1])
  end
end
-- Once the purge removed some of today's done messages (retention under a day), a figure may
-- exceed what is left, never fall short of it.
local purged_today = (tonumber(redis.call('HGET', K.cfg, 'pw') or '0') or 0) >= day_start
for f, n in pairs(figures) do
  local r = recorded[f] or 0
  if r ~= n and not (purged_today and r > n) then
    bad('figure ' .. f .. ' today is ' .. r .. ', done messages say ' .. n)
  end
end
for f, n in pairs(recorded) do
  if figures[f] == nil and n ~= 0 and not purged_today then
    bad('figure ' .. f .. ' today is ' .. n .. ', done messages say 0')
  end
end

return reply({ok = nproblems == 0, problems = problems, nproblems = nproblems, counts = counts})
