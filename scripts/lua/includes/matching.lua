-- matching.lua: the match language priority groups and triage rules share: a message's
-- fields, its customer's tags, and the first group a message falls in.
--@include keys

local function toset(arr)
  local s = {}
  if type(arr) == 'table' then for _, x in ipairs(arr) do s[x] = true end end
  return s
end

-- A rule's list as a set, built once per call (the decoded settings live for the call): a
-- team's groups are evaluated for every message, and rebuilding 32-entry sets per group per
-- message was most of a batch ingest's cost at the settings caps.
local SETS, SETS_CALL = {}, nil  -- per call: a library keeps its state between calls
local function setof(list)
  if SETS_CALL ~= CALL then SETS, SETS_CALL = {}, CALL end
  local s = SETS[list]
  if not s then s = toset(list); SETS[list] = s end
  return s
end

-- A customer's tags as a set, read at the first look: most teams' rules never look at them,
-- and classifying a message then reads no customer record (a command fewer per message).
local function lazy_tags(load)
  return setmetatable({}, {__index = function(t, k)
    setmetatable(t, nil)
    local raw = load()
    if raw then for _, x in ipairs(cmsgpack.unpack(raw)) do t[x] = true end end
    return rawget(t, k)
  end})
end

local function cust_tags(cust)
  return lazy_tags(function() return redis.call('HGET', K.cust(cust), 'tags') end)
end

-- The same for the customer of a conversation (its record read at the first look too).
local function conv_cust_tags(ck)
  return lazy_tags(function()
    return redis.call('HGET', K.cust(redis.call('HGET', ck, 'cust')), 'tags')
  end)
end

-- The fields a rule can look at, read from the message hash.
local function match_view(id)
  local v = redis.call('HMGET', K.msg(id), 'ch', 'lang', 're', 'mt', 'at', 'ord')
  -- tags and attributes are left out of a message that has none (ingest.lua)
  return { id = id, ch = v[1], lang = v[2], re = v[3] == '1',
           mt = v[4] and toset(cmsgpack.unpack(v[4])) or {},
           at = v[5] and cmsgpack.unpack(v[5]) or {},
           ord = tonumber(v[6]) }
end

local function any_in(list, set)
  for _, x in ipairs(list) do if set[x] then return x end end
  return nil
end

local function duration(s)
  if s % 3600 == 0 then return (s / 3600) .. ' h' end
  if s % 60 == 0 then return (s / 60) .. ' min' end
  return s .. ' s'
end

-- `list` with `x` added: the first criterion met is kept as it is (no table: most groups
-- a message meets name one), a second makes the list.
local function with(list, x)
  if not list then return x end
  if type(list) == 'string' then return {list, x} end
  list[#list + 1] = x
  return list
end

-- Returns a human-readable criterion when `r` matches, nil otherwise. All conditions AND.
-- When only the waiting time is missing, returns nil and the moment (ms) it will match.
local function match(r, m, ct)
  local why = nil  -- made at the first condition met: most rules a message meets fail first
  if r.ct_any then
    local t = any_in(r.ct_any, ct)
    if not t then return nil end
    why = with(why, 'customer tag ' .. t)
  end
  if r.ct_all then
    for _, t in ipairs(r.ct_all) do if not ct[t] then return nil end end
    why = with(why, 'customer tags ' .. table.concat(r.ct_all, ' + '))
  end
  if r.ch then
    if not setof(r.ch)[m.ch] then return nil end
    why = with(why, 'channel ' .. m.ch)
  end
  if r.re ~= nil then
    if r.re ~= m.re then return nil end
    why = with(why, m.re and 'automatically reassigned' or 'not reassigned')
  end
  if r.mt_any then
    local t = any_in(r.mt_any, m.mt)
    if not t then return nil end
    why = with(why, 'message tag ' .. t)
  end
  if r.mt_all then
    for _, t in ipairs(r.mt_all) do if not m.mt[t] then return nil end end
    why = with(why, 'message tags ' .. table.concat(r.mt_all, ' + '))
  end
  if r.lang then
    if not setof(r.lang)[m.lang] then return nil end
    why = with(why, 'language ' .. m.lang)
  end
  if r.attr_eq then
    for k, val in pairs(r.attr_eq) do
      if m.at[k] ~= val then return nil end
      why = with(why, k .. ' = ' .. tostring(val))
    end
  end
  if r.attr_in then
    for k, vals in pairs(r.attr_in) do
      local x = m.at[k]
      if x == nil or not setof(vals)[x] then return nil end
      why = with(why, k .. ' = ' .. tostring(x))
    end
  end
  if r.wt then  -- last: the other conditions decide whether the message ever matches
    local due = m.ord / 1000 + r.wt * 1000
    if now_ms() < due then return nil, due end
    why = with(why, 'waiting longer than ' .. duration(r.wt))
  end
  if not why then return 'matches every message' end
  if type(why) == 'string' then return why end
  return table.concat(why, ' and ')
end

-- What the team's groups look at (per call): a message's tags (`mt`), its attributes (`at`),
-- its customer's tags (`ct`). A view made for them alone (ingest's, one a message) leaves out
-- what none reads: most teams' groups look at one or two things.
local NEEDS, NEEDS_CALL = nil, nil
local function group_needs(cfg)
  if NEEDS_CALL ~= CALL then
    NEEDS, NEEDS_CALL = {}, CALL
    for _, g in ipairs(cfg_groups(cfg)) do
      local r = g.m
      if r.mt_any or r.mt_all then NEEDS.mt = true end
      if r.attr_eq or r.attr_in then NEEDS.at = true end
      if r.ct_any or r.ct_all then NEEDS.ct = true end
    end
  end
  return NEEDS
end

-- Index of the first group matching (0-based), its name and the criterion; the last index
-- (#groups) is "everything else". Fourth: the earlier groups the message will match once it
-- has waited long enough, as {index, due ms} (nil when none).
local function classify(cfg, m, ct)
  local groups = cfg_groups(cfg)
  local pending = nil
  for i, g in ipairs(groups) do
    local why, due = match(g.m, m, ct)
    if why then return i - 1, g.n, why, pending end
    if due then
      pending = pending or {}
      pending[#pending + 1] = {i - 1, due}
    end
  end
  return #groups, 'everything else', 'matched no priority group', pending
end
