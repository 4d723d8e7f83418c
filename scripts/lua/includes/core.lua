-- core.lua: helpers shared by every script (spliced in by dispatcher/scripts.py).
-- Every script is called with KEYS[1] = the team's cfg key and ARGV[1] = the team prefix
-- "pi:{team}:"; ARGV[2] = msgpack options. Every other key is built here from that prefix,
-- mirroring dispatcher/keys.py, so all keys share the team's cluster slot.

-- Effects replication (the default since Redis 5) lets scripts call TIME before writing.

local P = ARGV[1]
local O = {}
if ARGV[2] and ARGV[2] ~= '' then O = cmsgpack.unpack(ARGV[2]) end
local TEAM = string.match(P, '{(.*)}') or P
-- The prefix as a literal inside a SCAN MATCH glob. Team ids have no glob characters
-- (dispatcher/keys.py), so this is defence in depth: a pattern built from a team never
-- matches another team's keys.
-- A function, so the scripts that never scan pay nothing for it.
local function pglob() return (string.gsub(P, '[%*%?%[%]\\]', '\\%0')) end

-- Errors: "PI <code> <field> <message>"; Python maps code to an exception class.
-- Scripts validate before their first write, so an error leaves nothing half-done.
local function fail(code, field, msg)
  error('PI ' .. code .. ' ' .. (field or '-') .. ' ' .. msg, 0)
end

-- Integers as Redis arguments: Redis 7.0 formats every Lua number argument with "%.17g",
-- about 0.3 us each (measured; the largest single cost of our calls after the commands
-- themselves), so the scripts pass the call's timestamp as a string formatted once.
local ms_n, ms_s = nil, nil
local function ms(n)
  if n ~= ms_n then ms_n, ms_s = n, string.format('%d', n) end
  return ms_s
end

local function now_ms()
  if O.now then return tonumber(O.now) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local K = {}
K.cfg = KEYS[1]
function K.q(ver, i) return P .. 'q:' .. ver .. ':' .. i end
function K.conv(c) return P .. 'c:' .. c end
function K.cw(c) return P .. 'cw:' .. c end
function K.held(c) return P .. 'hd:' .. c end
function K.msg(m) return P .. 'm:' .. m end
function K.ch(ch) return P .. 'ch:' .. ch end
K.channels = P .. 'channels'
function K.adv(a) return P .. 'a:' .. a end
K.advisors = P .. 'advisors'
function K.cur(a) return P .. 'cur:' .. a end
function K.push(a) return P .. 'push:' .. a end
function K.pconv(a) return P .. 'pconv:' .. a end
function K.hold(a) return P .. 'hold:' .. a end
K.online = P .. 'online'
K.help = P .. 'help'
K.quar = P .. 'quar'
K.done = P .. 'done'
function K.role(r) return P .. 'role:' .. r end
K.roles = P .. 'roles'
function K.day(d) return P .. 'd:' .. d end
K.events = P .. 'events'
K.hooks = P .. 'hooks'
K.hookjobs = P .. 'hookjobs'
function K.cust(c) return P .. 'cu:' .. c end
function K.custconvs(c) return P .. 'cuv:' .. c end

local DAY_MS = 86400000

-- Team settings --------------------------------------------------------------------------
-- Groups and triage rules are decoded only by the scripts that match (cmsgpack decoding
-- is the largest fixed cost of a call); `ng` and `old` are all that `next` needs.
local EMPTY_LIST = cmsgpack.pack({})
local function load_cfg()
  local v = redis.call('HMGET', K.cfg, 'ver', 'ng', 'order', 'old', 'mreq', 'ret', 'evmax',
    'dttl')
  if not v[1] then fail('not_found', 'team', 'unknown team ' .. TEAM) end
  return {
    ver = tonumber(v[1]),
    ng = tonumber(v[2] or '0'),
    order = v[3],
    old = (v[4] == EMPTY_LIST) and {} or cmsgpack.unpack(v[4]),
    mreq = tonumber(v[5]),
    ret = tonumber(v[6]),
    evmax = v[7],  -- only ever an XADD argument: kept as Redis gave it
    dttl = tonumber(v[8]),
  }
end

local function cfg_groups(cfg)
  if not cfg.groups then cfg.groups = cmsgpack.unpack(redis.call('HGET', K.cfg, 'groups')) end
  return cfg.groups
end

local function cfg_triage(cfg)
  if not cfg.triage then cfg.triage = cmsgpack.unpack(redis.call('HGET', K.cfg, 'triage')) end
  return cfg.triage
end

-- The queue keys in push order: the current version's groups, then older versions still
-- being re-bucketed (their messages were sorted by the settings of their time).
local function queue_keys(cfg)
  local ks = {}
  for i = 0, cfg.ng do ks[#ks + 1] = K.q(cfg.ver, i) end
  for _, o in ipairs(cfg.old) do
    for i = 0, o[2] do ks[#ks + 1] = K.q(o[1], i) end
  end
  return ks
end

-- Events: the audit trail, analytics source and live-update feed ----------------------------
local function event(cfg, kind, now, fields)
  -- fields expanded as the call's last arguments: no table copied per event (measured)
  redis.call('XADD', K.events, 'MAXLEN', '~', cfg.evmax, '*', 'e', kind, 't', ms(now),
    unpack(fields))
end

-- Day figures expire after `dttl`; the expiry is set once, when the day's hash is created.
local function day_add(cfg, now, field, n)
  local dk = K.day(math.floor(now / DAY_MS))
  if redis.call('HINCRBY', dk, field, n) == n and redis.call('PTTL', dk) == -1 then
    redis.call('PEXPIRE', dk, cfg.dttl)
  end
end

-- Advisors ----------------------------------------------------------------------------------
local function load_adv(adv)
  local v = redis.call('HMGET', K.adv(adv), 'st', 'role', 'ep', 'bep', 'bs', 'req', 'bu')
  if not v[1] then fail('not_found', 'advisor', 'unknown advisor ' .. adv .. ' in team ' .. TEAM) end
  return { id = adv, st = v[1], role = v[2], ep = tonumber(v[3]), bep = tonumber(v[4]),
           bs = tonumber(v[5]), req = v[6], bu = tonumber(v[7]) }
end

local function load_role(name)
  local v = redis.call('HMGET', K.role(name), 'push', 'cap')
  if not v[1] then fail('not_found', 'role', 'unknown role ' .. name) end
  return { push = v[1] == '1', cap = tonumber(v[2]) }
end

local function require_logged_in(a)
  if a.st == 'off' then fail('conflict', 'advisor', 'advisor ' .. a.id .. ' is not logged in') end
end

-- Add a break's milliseconds to the UTC days it spans (a break over midnight is split).
local function add_break(cfg, adv, s, e)
  local t = s
  while t < e do
    local d = math.floor(t / DAY_MS)
    local seg = math.min((d + 1) * DAY_MS, e)
    local dk = K.day(d)
    day_add(cfg, t, 'b', seg - t)
    day_add(cfg, t, 'b:' .. adv, seg - t)
    t = seg
  end
end

-- End a running break at time `at`, or at its scheduled end when that came first (the end of
-- the working-hours range: a break never counts past it, whoever ends it and when); returns
-- its length in ms (0 when not on break).
local function end_break(cfg, a, at, why)
  if a.st ~= 'brk' then return 0 end
  local s = a.bs or at
  if a.bu and at > a.bu then at = a.bu end
  if at < s then at = s end
  add_break(cfg, a.id, s, at)
  redis.call('HSET', K.adv(a.id), 'st', 'on', 'bs', '', 'bu', '')
  a.st = 'on'
  -- The presence clock starts again where the break ended: the advisor was not away during
  -- it (silent after it, they are reaped as usual).
  if at > (tonumber(redis.call('ZSCORE', K.online, a.id)) or 0) then
    redis.call('ZADD', K.online, ms(at), a.id)
  end
  event(cfg, 'break_ended', at, {'a', a.id, 'ms', at - s, 'why', why})
  return at - s
end

local function touch(a, now)
  if a.st ~= 'off' then redis.call('ZADD', K.online, ms(now), a.id) end
end

-- Matching (priority groups and triage rules share one match language) --------------------
local function toset(arr)
  local s = {}
  if type(arr) == 'table' then for _, x in ipairs(arr) do s[x] = true end end
  return s
end

-- A rule's list as a set, built once per call (the decoded settings live for the call): a
-- team's groups are evaluated for every message, and rebuilding 32-entry sets per group per
-- message was most of a batch ingest's cost at the settings caps.
local SETS = setmetatable({}, {__mode = 'k'})
local function setof(list)
  local s = SETS[list]
  if not s then s = toset(list); SETS[list] = s end
  return s
end

local function cust_tags(cust)
  local raw = redis.call('HGET', K.cust(cust), 'tags')
  if not raw then return {} end
  return toset(cmsgpack.unpack(raw))
end

-- The fields a rule can look at, read from the message hash.
local function match_view(id)
  local v = redis.call('HMGET', K.msg(id), 'ch', 'lang', 're', 'mt', 'at', 'ord', 'cust')
  return { id = id, ch = v[1], lang = v[2], re = v[3] == '1', mt = toset(cmsgpack.unpack(v[4])),
           at = cmsgpack.unpack(v[5]), ord = tonumber(v[6]), cust = v[7] }
end

local function any_in(list, set)
  for _, x in ipairs(list) do if set[x] then return x end end
  return nil
end

-- Returns a human-readable criterion when `r` matches, nil otherwise. All conditions AND.
local function match(r, m, ct)
  local why = {}
  if r.ct_any then
    local t = any_in(r.ct_any, ct)
    if not t then return nil end
    why[#why + 1] = 'customer tag ' .. t
  end
  if r.ct_all then
    for _, t in ipairs(r.ct_all) do if not ct[t] then return nil end end
    why[#why + 1] = 'customer tags ' .. table.concat(r.ct_all, ' + ')
  end
  if r.ch then
    if not setof(r.ch)[m.ch] then return nil end
    why[#why + 1] = 'channel ' .. m.ch
  end
  if r.re ~= nil then
    if r.re ~= m.re then return nil end
    why[#why + 1] = m.re and 'automatically reassigned' or 'not reassigned'
  end
  if r.mt_any then
    local t = any_in(r.mt_any, m.mt)
    if not t then return nil end
    why[#why + 1] = 'message tag ' .. t
  end
  if r.mt_all then
    for _, t in ipairs(r.mt_all) do if not m.mt[t] then return nil end end
    why[#why + 1] = 'message tags ' .. table.concat(r.mt_all, ' + ')
  end
  if r.lang then
    if not setof(r.lang)[m.lang] then return nil end
    why[#why + 1] = 'language ' .. m.lang
  end
  if r.attr_eq then
    for k, val in pairs(r.attr_eq) do
      if m.at[k] ~= val then return nil end
      why[#why + 1] = k .. ' = ' .. tostring(val)
    end
  end
  if r.attr_in then
    for k, vals in pairs(r.attr_in) do
      local x = m.at[k]
      if x == nil or not setof(vals)[x] then return nil end
      why[#why + 1] = k .. ' = ' .. tostring(x)
    end
  end
  if #why == 0 then why[1] = 'matches every message' end
  return table.concat(why, ' and ')
end

-- Index of the first group matching (0-based), its name and the criterion; the last index
-- (#groups) is "everything else".
local function classify(cfg, m, ct)
  local groups = cfg_groups(cfg)
  for i, g in ipairs(groups) do
    local why = match(g.m, m, ct)
    if why then return i - 1, g.n, why end
  end
  return #groups, 'everything else', 'matched no priority group'
end

local function score(order, so, fw, lw)
  if order == 'newest_conversation' then return -so end
  if order == 'oldest_message' then return fw end
  if order == 'newest_message' then return -lw end
  return so
end

-- Conversations in the stock ----------------------------------------------------------------
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

-- Take a message out of an advisor's hands (any of cur / push / hold).
local function release(adv, id, conv)
  redis.call('ZREM', K.cur(adv), id)
  redis.call('SREM', K.held(conv), id)
  if redis.call('ZREM', K.push(adv), id) == 1 then
    if redis.call('HINCRBY', K.pconv(adv), conv, -1) <= 0 then
      redis.call('HDEL', K.pconv(adv), conv)
    end
  end
  redis.call('SREM', K.hold(adv), id)
  local ck = K.conv(conv)
  if redis.call('HINCRBY', ck, 'held', -1) <= 0 then
    redis.call('HSET', ck, 'owner', '', 'held', 0)
  end
end

-- A message as clients see it: `v` holds the VIEW_FIELDS of its hash, in that order.
local VIEW_FIELDS = {'conv', 'cust', 'ch', 'ts', 'st', 'adv', 'via', 'g', 'why', 're', 'rq', 'body',
  'lang', 'mt', 'at', 'dk'}
local function as_view(id, v, hold)
  return { id = id, conversation = v[1], customer = v[2], channel = v[3], ts = tonumber(v[4]),
           state = v[5], advisor = v[6], via = v[7], group = v[8], why = v[9],
           reassigned = v[10] == '1', requeues = tonumber(v[11] or '0'), body = v[12],
           language = v[13], tags = v[14], attrs = v[15], done = v[16], hold = hold }
end

local function msg_view(id)
  local v = redis.call('HMGET', K.msg(id), unpack(VIEW_FIELDS))
  return as_view(id, v, v[6] ~= nil and v[6] ~= '' and
                        redis.call('SISMEMBER', K.hold(v[6]), id) == 1)
end

-- Members of a sorted set from `start` to `stop`, by score then arrival: a conversation's
-- messages share a score in an advisor's hands, and ties would otherwise sort by id
-- ('msg-10' before 'msg-9').
local function ordered(zkey, start, stop)
  local raw = redis.call('ZRANGE', zkey, start, stop, 'WITHSCORES')
  local rows = {}
  for i = 1, #raw, 2 do
    rows[#rows + 1] = {id = raw[i], s = tonumber(raw[i + 1]),
                       ord = tonumber(redis.call('HGET', K.msg(raw[i]), 'ord')) or 0}
  end
  table.sort(rows, function(x, y)
    if x.s ~= y.s then return x.s < y.s end
    return x.ord < y.ord
  end)
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

local function views(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = msg_view(id) end
  return out
end

-- Give one message to an advisor: its hash, the advisor's indexes, the event. `pushed`: it
-- counts against the push capacity. `extra`: more message fields, written in the same HSET.
-- In the advisor's hands a message is scored by the time its conversation reached them
-- (`ot`), so a conversation's messages list together; `hd:<conv>` holds them for a requeue
-- batch or an expiry to find without reading the advisor's whole list.
local function hand_over(cfg, adv, id, conv, via, now, pushed, why, extra, ot)
  local t = ms(now)
  redis.call('HSET', K.msg(id), 'st', 'a', 'adv', adv, 'via', via, 'at_', t,
    'pt', pushed and t or '', unpack(extra or {}))
  redis.call('ZADD', K.cur(adv), ot or t, id)
  redis.call('SADD', K.held(conv), id)  -- a conversation's messages in hands: found together
  if pushed then redis.call('ZADD', K.push(adv), t, id) end
  event(cfg, 'assigned', now, {'m', id, 'a', adv, 'c', conv, 'via', via, 'why', why or ''})
end

-- When `adv` already holds the conversation, the time it reached them; else now.
local function owner_time(ck, adv, now)
  local o = redis.call('HMGET', ck, 'owner', 'held', 'ot')
  if o[1] == adv and (tonumber(o[2]) or 0) > 0 and o[3] then return o[3] end
  return ms(now)
end

-- Give one message to an advisor, and its conversation with it.
local function give(cfg, adv, id, conv, via, now, pushed, why)
  local ck = K.conv(conv)
  local ot = owner_time(ck, adv, now)
  hand_over(cfg, adv, id, conv, via, now, pushed, why, nil, ot)
  if pushed then redis.call('HINCRBY', K.pconv(adv), conv, 1) end
  redis.call('HSET', ck, 'owner', adv, 'ot', ot)
  redis.call('HINCRBY', ck, 'held', 1)
end

-- The advisor other than `except` who holds messages of a conversation, if logged in.
local function holder_of(conv, except)
  local o = redis.call('HMGET', K.conv(conv), 'owner', 'held')
  local owner = o[1]
  if owner and owner ~= '' and owner ~= except and (tonumber(o[2]) or 0) > 0 then
    local st = redis.call('HGET', K.adv(owner), 'st')
    if st and st ~= 'off' then return owner end
  end
  return nil
end

-- The messages of a conversation in an advisor's hands: the conversation's set of messages
-- in hands (`hd:<conv>`, at most MAX_CONVERSATION), those with this advisor. O(conversation).
local function held_ids(adv, conv)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', K.held(conv))) do
    if redis.call('HGET', K.msg(id), 'adv') == adv then out[#out + 1] = id end
  end
  return out
end

-- Move every waiting message of a conversation to an advisor. `popped`: the caller already
-- took the conversation out of its queue. Returns the messages as clients see them (read
-- while moving them: no second read per message).
local function give_conv(cfg, adv, conv, via, now, pushed, popped)
  local ck = K.conv(conv)
  local c = redis.call('HMGET', ck, 'q', 'g', 'why', 'owner', 'held', 'ot')
  if not popped and c[1] and c[1] ~= '' then redis.call('ZREM', c[1], conv) end
  local ot = (c[4] == adv and (tonumber(c[5]) or 0) > 0 and c[6]) or ms(now)
  local ids = redis.call('LRANGE', K.cw(conv), 0, -1)
  local g, cwhy = c[2] or '', c[3] or ''
  local out = {}
  local chans = {}
  for i, id in ipairs(ids) do
    local v = redis.call('HMGET', K.msg(id), unpack(VIEW_FIELDS))
    redis.call('ZREM', K.ch(v[3]), id)
    chans[v[3]] = true
    hand_over(cfg, adv, id, conv, via, now, pushed, g .. ': ' .. cwhy, {'g', g, 'why', cwhy},
      ot)
    v[5], v[6], v[7], v[8], v[9] = 'a', adv, via, g, cwhy  -- what hand_over just wrote
    out[i] = as_view(id, v, false)
  end
  redis.call('DEL', K.cw(conv))
  for ch in pairs(chans) do  -- a channel with nothing waiting leaves the index
    if redis.call('EXISTS', K.ch(ch)) == 0 then redis.call('SREM', K.channels, ch) end
  end
  if #ids == 0 then
    redis.call('HSET', ck, 'q', '')
    return out
  end
  if pushed then redis.call('HINCRBY', K.pconv(adv), conv, #ids) end
  redis.call('HSET', ck, 'q', '', 'owner', adv, 'ot', ot)
  redis.call('HINCRBY', ck, 'held', #ids)
  return out
end

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
    event(cfg, 'quarantined', now, {'m', id, 'c', conv, 'why', why, 'n', n})
    return 'q'
  end
  local v = redis.call('HMGET', mk, 'ch', 'ts')
  to_waiting(id, conv, v[1], tonumber(v[2]), listed)
  event(cfg, 'requeued', now, {'m', id, 'c', conv, 'why', why})
  return 'w'
end

-- Messages ({id, ord}, out of every place, sorted by ord) of one conversation go back to the
-- team: to the advisor who holds the rest of the conversation now (one conversation, one
-- holder), else to the stock in arrival order (or to quarantine, one by one). `from`: the
-- advisor they came from (never their new holder). `uncounted`: not a bounce (a release from
-- quarantine), the requeue count is left as it is. Returns 'held', 'w' or 'q' (all of them
-- quarantined).
local function back_to_team(cfg, conv, msgs, now, why, from, uncounted)
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

local function reply(t) return cmsgpack.pack(t) end
