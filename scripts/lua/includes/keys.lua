-- keys.lua: what every script starts from. The call's team prefix P ("pi:{team}:", ARGV[1])
-- and options O (msgpack, ARGV[2]); errors (`fail`); the clock; every key of the team, built
-- from P and mirroring dispatcher/keys.py so all keys share the team's cluster slot; the
-- team's settings (`load_cfg`, groups and triage decoded only when asked) and queue keys;
-- the reply (msgpack).
-- Effects replication (the default since Redis 5) lets scripts call TIME before writing.

-- The call's state, set by `begin` before a script's body runs (the loader writes that call
-- first, as EVAL's chunk or as each function of a library: the helpers below are then defined
-- once per library load, not per call).
local P, O, TEAM = '', {}, ''
local CALL = 0  -- counts calls: per-call caches of other includes start afresh

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

-- The same for the other integers a call passes (a count, a delta, a field's new value, a
-- histogram bucket) or joins into a name: the small ones are formatted once per library load
-- and kept (a cached string is 0.2-0.36 us cheaper an argument than a number, measured; a
-- number joined into a string costs 0.27 us for its "%.14g"), the others with "%d" (an
-- integer's digits, as Redis would have written them).
local INTS = {}
local function int(n)
  local s = INTS[n]
  if s then return s end
  s = string.format('%d', n)
  if type(n) == 'number' and n >= -64 and n <= 4096 then INTS[n] = s end
  return s
end

-- The call's clock: read once per call (matching by waiting time asks for it again).
local NOW, NOW_CALL = 0, nil
local function now_ms()
  if NOW_CALL == CALL then return NOW end
  if O.now then
    NOW = tonumber(O.now)
  else
    local t = redis.call('TIME')
    NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  NOW_CALL = CALL
  return NOW
end

-- Bytes as hex digits (a message's checksum as an earlier version stored it).
local function hex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

-- A message's arrival (ms): its `ts`, written only when it differs from its arrival order's
-- millisecond (`ord` is the arrival in ms times 1,000 plus a tie-breaker; a burst of over a
-- thousand in a millisecond borrows from the next): nil when the record has neither.
local function arrival_ms(ts, ord)
  if ts then return tonumber(ts) end
  if ord then return math.floor(tonumber(ord) / 1000) end
  return nil
end

local K = {}
-- A group's queue key, built once per team, settings version and group while they stay the
-- same (a press names one per group it looks at).
local QK, QK_P, QK_VER = {}, nil, nil
function K.q(ver, i)
  if P ~= QK_P or ver ~= QK_VER then QK, QK_P, QK_VER = {}, P, ver end
  local k = QK[i]
  if not k then
    k = P .. 'q:' .. int(ver) .. ':' .. int(i)
    QK[i] = k
  end
  return k
end
-- A conversation's queue as its record keeps it (field `q`): the queue's key without the
-- team's prefix and "q:" ("<ver>:<i>", or "<ver>:<i>~<skill>" for K.qs), '' when it is not
-- waiting. The prefix in every waiting conversation's record cost 16 bytes of it at the
-- benchmark's team id, more for a longer one. A record an earlier version wrote keeps the
-- whole key (it starts with the prefix, never a digit) and is read as it is.
local q_field  -- (kept per queue key while the team is the same: a batch names a few; at
do             -- most 256, so a long-lived library's memory does not grow with versions)
  local fields, fields_p, fields_n = {}, nil, 0
  q_field = function(qk)
    if P ~= fields_p or fields_n >= 256 then fields, fields_p, fields_n = {}, P, 0 end
    local f = fields[qk]
    if not f then
      f = string.sub(qk, #P + 3)
      fields[qk], fields_n = f, fields_n + 1
    end
    return f
  end
end
local function q_key(v)
  if not v or v == '' then return v end
  local b = string.byte(v, 1)
  if b < 48 or b > 57 then return v end
  return P .. 'q:' .. v
end
-- The settings version and group index a conversation's `q` names (either form): what its
-- record would otherwise repeat beside its queue.
local function queue_place(q)
  if not q or q == '' then return nil end
  local b = string.byte(q, 1)
  if b < 48 or b > 57 then q = q_field(q) end
  local v, i = string.match(q, '^(%d+):(%d+)')
  return tonumber(v), tonumber(i)
end
local function queue_group(q)
  local _, i = queue_place(q)
  return i
end
function K.esc(ver, i) return P .. 'esc:' .. ver .. ':' .. i end
function K.qs(ver, i, skill) return K.q(ver, i) .. '~' .. skill end
function K.rsk(ver) return P .. 'rsk:' .. ver end
-- Keys named by a number (an hour, a minute, a day), kept while the team and the number stay
-- the same: a cycle names its hour's report key six times.
local function numbered(name)
  local p, n, k = nil, nil, nil
  return function(x)
    if x ~= n or P ~= p then p, n, k = P, x, P .. name .. int(x) end
    return k
  end
end
K.rep = numbered('rh:')
K.repmax = numbered('rx:')
K.recent = numbered('rm:')
function K.conv(c) return P .. 'c:' .. c end
function K.cw(c) return P .. 'cw:' .. c end
function K.held(c) return P .. 'hd:' .. c end
function K.msg(m) return P .. 'm:' .. m end
function K.ch(ch) return P .. 'ch:' .. ch end  -- an earlier version's (channels.lua)
function K.cn(ch) return P .. 'cn:' .. ch end
function K.cb(ch) return P .. 'cb:' .. ch end
function K.adv(a) return P .. 'a:' .. a end
function K.cur(a) return P .. 'cur:' .. a end
function K.push(a) return P .. 'push:' .. a end
function K.pconv(a) return P .. 'pconv:' .. a end
function K.hold(a) return P .. 'hold:' .. a end
function K.role(r) return P .. 'role:' .. r end
K.day = numbered('d:')
function K.cust(c) return P .. 'cu:' .. c end
function K.custconvs(c) return P .. 'cc:' .. c end
function K.custconvs_set(c) return P .. 'cuv:' .. c end  -- an earlier version's

-- Start a call: KEYS[1] is the team's cfg hash, ARGV[1] the team prefix, ARGV[2] the options.
local GEN = nil  -- the call's team generation, once load_cfg read it (below)
local function begin(keys, args)
  CALL = CALL + 1
  GEN = nil
  P = args[1]
  O = {}
  if args[2] and args[2] ~= '' then O = cmsgpack.unpack(args[2]) end
  TEAM = string.match(P, '{(.*)}') or P
  K.cfg = keys[1]
  K.channels = P .. 'channels'
  K.advisors = P .. 'advisors'
  K.online = P .. 'online'
  K.help = P .. 'help'
  K.quar = P .. 'quar'
  K.done = P .. 'done'
  K.roles = P .. 'roles'
  K.events = P .. 'events'
  K.hooks = P .. 'hooks'
  K.hookjobs = P .. 'hookjobs'
end

local DAY_MS = 86400000

-- Groups and triage rules are decoded only by the scripts that match (cmsgpack decoding
-- is the largest fixed cost of a call); `ng` and `old` are all that `next` needs.
local EMPTY_LIST = '\144'  -- msgpack's empty array (no library call when a function library loads)
local EMPTY_MAP = '\128'  -- and its empty map

-- Settings kept between calls. A function library (FCALL, Redis >= 7) keeps its Lua state
-- while it stays loaded, so load_cfg keeps each team's settings as it made them, under the
-- team's generation: field `gen` of its cfg hash, a number made anew (and never made twice
-- for one team id: the clock's microseconds, or one more than the last) by every write of
-- a setting or a role (`cfg_write`, `cfg_delete`: the only writers of the hash but for
-- `cfg_note`'s bookkeeping fields, which no call keeps; a test holds every script to it). A
-- call then reads that one field instead of thirteen, and a press its role from the same
-- generation. EVAL runs its chunk afresh each call (PERSISTENT false, Redis 6.2): it reads
-- the fields every time, as a team without `gen` is read (one an earlier version made, until
-- a change of its settings or `pushinbox migrate` gives it one). What is kept is bounded:
-- the settings' scalar fields and small lists (a couple of kilobytes a team; the groups and
-- triage rules, up to 32 KB packed each, are decoded per call as before: call_memo), for at
-- most 1,000 teams and 10,000 roles (`kept`); past either the cache starts afresh (a team
-- deleted leaves an entry no generation matches again).
local PERSISTENT = redis.register_function ~= nil

-- A table kept between calls that starts afresh rather than hold more than `max` entries.
local function kept(max)
  local t, n = {}, 0
  return {
    get = function(k) return t[k] end,
    put = function(k, v)
      if t[k] == nil then
        if n >= max then t, n = {}, 0 end
        n = n + 1
      end
      t[k] = v
    end,
    drop = function(k)
      if t[k] ~= nil then t[k], n = nil, n - 1 end
    end,
  }
end
local CFGS, ROLES = kept(1000), kept(10000)  -- teams' settings by prefix; roles by key
-- Teams found without a generation (an earlier version's, until migrate): read whole at once,
-- as before, not after a read of `gen` that cannot match (one command more a call).
local NOGEN = kept(1000)

-- What one call decodes once and drops after it (the next call starts afresh): a field of
-- the settings unpacked from msgpack (matching asks for the groups once per message).
local MEMO, MEMO_CALL = {}, nil
local function call_memo(field, packed)
  if MEMO_CALL ~= CALL then MEMO, MEMO_CALL = {}, CALL end
  local v = MEMO[field]
  if v == nil then
    v = cmsgpack.unpack(packed or redis.call('HGET', K.cfg, field))
    MEMO[field] = v
  end
  return v
end

local function load_cfg()
  if PERSISTENT and not NOGEN.get(P) then
    local g = redis.call('HGET', K.cfg, 'gen')
    local c = g and CFGS.get(P)
    if c and c.gen == g then
      GEN = g
      return c
    end
  end
  local v = redis.call('HMGET', K.cfg, 'ver', 'ng', 'order', 'old', 'mreq', 'ret', 'evmax',
    'dttl', 'gsk', 'tg', 'rsq', 'gtw', 'chb', 'gen', 'bq')
  if not v[1] then fail('not_found', 'team', 'unknown team ' .. TEAM) end
  local cfg = {
    ver = tonumber(v[1]),
    ng = tonumber(v[2] or '0'),
    order = v[3],
    old = (v[4] == EMPTY_LIST) and {} or cmsgpack.unpack(v[4]),
    mreq = tonumber(v[5]),
    ret = tonumber(v[6]),
    evmax = v[7],  -- only ever an XADD argument: kept as Redis gave it
    dttl = tonumber(v[8]),
    gsk = v[9],  -- the skills each group requires (msgpack), EMPTY_LIST or nil when none do
    tg = v[10],  -- the groups that escalate by waiting time (msgpack indexes), or none
    rsq = v[11],  -- set once a triage rule first restricted a conversation to a skill
    gtw = v[12],  -- each group's target_wait (msgpack, by index; 0 for none), or none
    chb = v[13],  -- set once no earlier version's per-message channel index is left (channels.lua)
    gen = v[14],  -- the settings' generation (above), or nil
    bq = v[15],  -- set once every queue is kept in buckets (queue.lua)
  }
  GEN = cfg.gen
  if PERSISTENT then
    if cfg.gen then
      CFGS.put(P, cfg)
      NOGEN.drop(P)
    elseif v[1] then
      NOGEN.put(P, true)
    end
  end
  return cfg
end

-- The settings a call that only records what happened needs (a reply, an archive): how long
-- figures are kept and how long the event stream is. Three fields instead of twelve (each
-- field of a reply costs a Lua string); where settings are kept between calls, all of them
-- (one field read).
local function load_cfg_recording()
  if PERSISTENT then return load_cfg() end
  local v = redis.call('HMGET', K.cfg, 'ver', 'evmax', 'dttl')
  if not v[1] then fail('not_found', 'team', 'unknown team ' .. TEAM) end
  return { ver = tonumber(v[1]), evmax = v[2], dttl = tonumber(v[3]) }
end

-- A new generation for the team's settings: none kept under an earlier one is used again.
local function new_gen()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('HGET', K.cfg, 'gen') or '0') or 0
  CFGS.drop(P)
  return string.format('%d', math.max(last + 1, us))
end

-- Write settings (field, value, ...; none: a role changed) with a new generation.
local function cfg_write(...)
  redis.call('HSET', K.cfg, 'gen', new_gen(), ...)
end

-- Remove settings, with a new generation.
local function cfg_delete(...)
  redis.call('HDEL', K.cfg, ...)
  redis.call('HSET', K.cfg, 'gen', new_gen())
end

-- The cfg hash's bookkeeping fields, which no call keeps (load_cfg reads none): the last
-- arrival order given (`lo`, ingest), the newest purged (`pw`, the purge) and the messages
-- the team stores and their bodies' bytes (`nm`, `nb`: ingest adds, the purge takes away;
-- absent for a team an earlier version created until `repair` counts them), and the new
-- messages of the current second (`rs`, `rn`: ingest, where an operator capped the rate).
-- Written without a new generation: every batch of arrivals writes `lo`, `nm` and `nb`
-- (tests/test_settings_cache.py holds every caller to these six).
local function cfg_note(...)
  redis.call('HSET', K.cfg, ...)
end

local function cfg_count(field, delta)
  redis.call('HINCRBY', K.cfg, field, delta)
end

local function cfg_groups(cfg)
  return call_memo('groups')
end

local function cfg_triage(cfg)
  return call_memo('triage')
end

-- The skills with restricted queues in a settings version (triage rules that target a
-- skill); read only once the team ever had one (cfg.rsq), so most presses read nothing.
local function restricted_skills(cfg, ver)
  if not cfg.rsq then return {} end
  return redis.call('SMEMBERS', K.rsk(ver))
end

-- The skills each group of the current settings requires: a list by group index (1-based),
-- or nil when no group requires any (the common case: nothing decoded).
local function group_skills(cfg)
  if not cfg.gsk or cfg.gsk == EMPTY_LIST or cfg.gsk == '' then return nil end
  return call_memo('gsk', cfg.gsk)
end

-- A group's target_wait in seconds (reports: the share pushed within it), or nil.
local function group_target(cfg, gi)
  if not cfg.gtw or cfg.gtw == EMPTY_LIST or cfg.gtw == '' then return nil end
  if not cfg.gtw_list then cfg.gtw_list = cmsgpack.unpack(cfg.gtw) end
  local t = cfg.gtw_list[(tonumber(gi) or -1) + 1]
  if t and t > 0 then return t end
  return nil
end

local function covers(needs, has)
  for _, s in ipairs(needs or {}) do if not has[s] then return false end end
  return true
end

-- The waiting stock in push order as slots, one per group: the current version's groups,
-- then older versions still being re-bucketed (their messages were sorted by the settings of
-- their time). A slot lists the group's queue and its restricted queues (a conversation a
-- triage rule restricted to a skill), merged by score when read. With `has` (an advisor's
-- skills as a set), only what that advisor may be pushed: the groups whose required skills
-- they have (older versions keep the requirements of their time), and of those the
-- restricted queues of their own skills.
-- `visit(slot)`, when given, is called slot by slot instead, until it returns true: a press
-- builds only the slots it looks at (most find a conversation in the first).
local function version_slots(cfg, ver, ng, needs, has, visit, slots)
  local rs = restricted_skills(cfg, ver)
  for i = 0, ng do
    if not has or not needs or covers(needs[i + 1], has) then
      local slot = {K.q(ver, i)}
      for _, s in ipairs(rs) do
        if not has or has[s] then slot[#slot + 1] = K.qs(ver, i, s) end
      end
      if visit then
        if visit(slot) then return true end
      else
        slots[#slots + 1] = slot
      end
    end
  end
  return false
end

local function queue_slots(cfg, has, visit)
  local slots = {}
  if version_slots(cfg, cfg.ver, cfg.ng, group_skills(cfg), has, visit, slots) then
    return slots
  end
  for _, o in ipairs(cfg.old) do
    if version_slots(cfg, o[1], o[2], o[3], has, visit, slots) then return slots end
  end
  return slots
end

-- Every queue key of one settings version (its groups' queues and restricted queues).
local function version_keys(cfg, ver, ng)
  local rs = restricted_skills(cfg, ver)
  local ks = {}
  for i = 0, ng do
    ks[#ks + 1] = K.q(ver, i)
    for _, s in ipairs(rs) do ks[#ks + 1] = K.qs(ver, i, s) end
  end
  return ks
end

-- Every queue key of the stock, for what reads it whole (check, repair, counts).
local function queue_keys(cfg)
  local ks = {}
  for _, slot in ipairs(queue_slots(cfg, nil)) do
    for _, k in ipairs(slot) do ks[#ks + 1] = k end
  end
  return ks
end

-- What an advisor may be pushed: `sk` is their skills as stored (msgpack or empty).
local function push_slots(cfg, sk, visit)
  local has = {}
  if sk and sk ~= '' then for _, s in ipairs(cmsgpack.unpack(sk)) do has[s] = true end end
  return queue_slots(cfg, has, visit)
end

local function reply(t) return cmsgpack.pack(t) end
