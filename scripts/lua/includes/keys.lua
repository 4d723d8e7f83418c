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

local K = {}
function K.q(ver, i) return P .. 'q:' .. ver .. ':' .. i end
function K.esc(ver, i) return P .. 'esc:' .. ver .. ':' .. i end
function K.conv(c) return P .. 'c:' .. c end
function K.cw(c) return P .. 'cw:' .. c end
function K.held(c) return P .. 'hd:' .. c end
function K.msg(m) return P .. 'm:' .. m end
function K.ch(ch) return P .. 'ch:' .. ch end
function K.adv(a) return P .. 'a:' .. a end
function K.cur(a) return P .. 'cur:' .. a end
function K.push(a) return P .. 'push:' .. a end
function K.pconv(a) return P .. 'pconv:' .. a end
function K.hold(a) return P .. 'hold:' .. a end
function K.role(r) return P .. 'role:' .. r end
function K.day(d) return P .. 'd:' .. d end
function K.cust(c) return P .. 'cu:' .. c end
function K.custconvs(c) return P .. 'cuv:' .. c end

-- Start a call: KEYS[1] is the team's cfg hash, ARGV[1] the team prefix, ARGV[2] the options.
local function begin(keys, args)
  CALL = CALL + 1
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
local function load_cfg()
  local v = redis.call('HMGET', K.cfg, 'ver', 'ng', 'order', 'old', 'mreq', 'ret', 'evmax',
    'dttl', 'gsk', 'tg')
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
    gsk = v[9],  -- the skills each group requires (msgpack), EMPTY_LIST or nil when none do
    tg = v[10],  -- the groups that escalate by waiting time (msgpack indexes), or none
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

-- The skills each group of the current settings requires: a list by group index (1-based),
-- or nil when no group requires any (the common case: nothing decoded).
local function group_skills(cfg)
  if not cfg.gsk or cfg.gsk == EMPTY_LIST or cfg.gsk == '' then return nil end
  return cmsgpack.unpack(cfg.gsk)
end

local function covers(needs, has)
  for _, s in ipairs(needs or {}) do if not has[s] then return false end end
  return true
end

-- The queue keys an advisor may be pushed from, in push order: `queue_keys` without the
-- groups whose required skills the advisor lacks (older settings versions keep the skills of
-- their time until re-bucketed). `sk`: the advisor's skills as stored (msgpack or empty).
local function push_queue_keys(cfg, sk)
  local needs = group_skills(cfg)
  local old_needs = false
  for _, o in ipairs(cfg.old) do if o[3] then old_needs = true end end
  if not needs and not old_needs then return queue_keys(cfg) end
  local has = {}
  if sk and sk ~= '' then for _, s in ipairs(cmsgpack.unpack(sk)) do has[s] = true end end
  local ks = {}
  for i = 0, cfg.ng do
    if not needs or covers(needs[i + 1], has) then ks[#ks + 1] = K.q(cfg.ver, i) end
  end
  for _, o in ipairs(cfg.old) do
    for i = 0, o[2] do
      if not o[3] or covers(o[3][i + 1], has) then ks[#ks + 1] = K.q(o[1], i) end
    end
  end
  return ks
end

local function reply(t) return cmsgpack.pack(t) end
