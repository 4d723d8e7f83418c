-- groupnames.lua: the name and why of the group a waiting conversation waits in, read from its
-- queue. The record keeps neither where the settings tell them: each settings version names
-- its groups (`gn:<ver>:<i>` in the team's settings hash, the last index "everything else")
-- and the why each group gives most messages (`gw:<ver>:<i>`: its criterion met through the
-- first value of each of its lists); a conversation whose why is another keeps its own.
-- 32 bytes a waiting conversation at 1M, the benchmark's groups (docs/performance.md). A
-- version's names are written with it (groups_set, team_create; migrate for a team an
-- earlier version made, whose records keep both until then) and dropped with its last
-- waiting conversation (groups_set, rebucket_batch). A record an earlier version wrote keeps
-- `g` and `why`, read as they are.
--@include keys
--@include matching

local DEFAULT_GROUP, DEFAULT_WHY = 'everything else', 'matched no priority group'

-- The why a group's criterion `r` gives a message meeting it through the first value of each
-- of its lists ('' where none can: then every conversation of the group keeps its own).
local function usual_why(r)
  r = r or {}
  local m = {ch = r.ch and r.ch[1], re = r.re, lang = r.lang and r.lang[1], mt = {}, at = {},
             ord = 0}
  local ct = {}
  if r.ct_any then ct[r.ct_any[1] or ''] = true end
  for _, t in ipairs(r.ct_all or {}) do ct[t] = true end
  if r.mt_any then m.mt[r.mt_any[1] or ''] = true end
  for _, t in ipairs(r.mt_all or {}) do m.mt[t] = true end
  for k, vals in pairs(r.attr_in or {}) do m.at[k] = vals[1] end
  for k, v in pairs(r.attr_eq or {}) do m.at[k] = v end
  return match(r, m, ct) or ''
end

local function names_suffix(ver, i) return ':' .. int(ver) .. ':' .. int(i) end

-- The settings fields naming the groups of version `ver` (its groups as decoded, in order),
-- {field, value, ...} for cfg_write.
local function group_names_fields(ver, groups)
  local out = {}
  local function add(i, name, why)
    local s = names_suffix(ver, i)
    out[#out + 1] = 'gn' .. s; out[#out + 1] = name
    out[#out + 1] = 'gw' .. s; out[#out + 1] = why
  end
  for i, g in ipairs(groups) do add(i - 1, g.n, usual_why(g.m)) end
  add(#groups, DEFAULT_GROUP, DEFAULT_WHY)
  return out
end

-- The same fields' names for a version of `ng` groups (and everything else), for cfg_delete.
local function group_names_keys(ver, ng)
  local out = {}
  for i = 0, ng do
    local s = names_suffix(ver, i)
    out[#out + 1] = 'gn' .. s; out[#out + 1] = 'gw' .. s
  end
  return out
end

-- What a queue's record text `q` ("<ver>:<i>[~skill]", or an earlier version's whole key)
-- names: {name or false (none in the settings: a team an earlier version made), usual why,
-- group index}. Read with one HMGET and kept with the settings (keys.lua's CFGS: dropped
-- with their generation, which every write of the names changes), at most QN_MAX queues a
-- team and only short texts (a press and an arrival then read nothing; a longer name or why
-- is read once a call).
local QN_MAX, QN_BYTES = 16, 160
local function q_names(cfg, q)
  local kept = cfg.qn
  if not kept then kept = {n = 0}; cfg.qn = kept end
  local e = kept[q]
  if e then return e end
  local ver, gi = queue_place(q)
  local s = names_suffix(ver, gi)
  local v = redis.call('HMGET', K.cfg, 'gn' .. s, 'gw' .. s)
  e = {v[1], v[2] or '', gi}
  if kept.n < QN_MAX and #(v[1] or '') + #(v[2] or '') <= QN_BYTES then
    kept[q] = e
    kept.n = kept.n + 1
  end
  return e
end

-- A waiting conversation's group and why as clients see them, from its record's `q`, `g` and
-- `why` (false where it has none): what it keeps, else what its queue and the settings say.
local function conv_group(cfg, q, g, why)
  if g and g ~= '' then return g, why or '' end
  if not q or q == '' then return '', why or '' end
  local e = q_names(cfg, q)
  return e[1] or '', why or e[2]
end

-- The record's fields naming its group, for a conversation placed in the queue its record
-- calls `q` (`name`, `why` from the matching): what to set and what to drop ({field, value,
-- ...}, {field, ...}; NONE, shared, when nothing), `had_g` and `had_why` whether the record
-- has them now.
local NONE = {}
local function group_fields(cfg, q, name, why, had_g, had_why)
  local e = q_names(cfg, q)
  if not e[1] then return {'g', name, 'why', why}, NONE end
  local drop = NONE
  if had_g then drop = {'g'} end
  if why ~= e[2] then return {'why', why}, drop end
  if had_why then
    if drop == NONE then drop = {} end
    drop[#drop + 1] = 'why'
  end
  return NONE, drop
end
