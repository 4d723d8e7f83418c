-- advisors.lua: an advisor's record and role, presence, and breaks (which end at the end of
-- the working-hours range whoever ends them). Emits break_ended.
--@include keys
--@include events
--@include reports

local function load_adv(adv)
  local v = redis.call('HMGET', K.adv(adv), 'st', 'role', 'ep', 'bep', 'bs', 'req', 'bu', 'sk',
    'sn')
  if not v[1] then fail('not_found', 'advisor', 'unknown advisor ' .. adv .. ' in team ' .. TEAM) end
  return { id = adv, st = v[1], role = v[2], ep = tonumber(v[3]), bep = tonumber(v[4]),
           bs = tonumber(v[5]), req = v[6], bu = tonumber(v[7]), sk = v[8], sn = tonumber(v[9]) }
end

-- What a call that acts on a message already in the advisor's hands needs of them: their
-- state and presence (touch). Two fields instead of nine.
local function load_adv_presence(adv)
  local v = redis.call('HMGET', K.adv(adv), 'st', 'sn')
  if not v[1] then fail('not_found', 'advisor', 'unknown advisor ' .. adv .. ' in team ' .. TEAM) end
  return { id = adv, st = v[1], sn = tonumber(v[2]) }
end

-- Change an advisor's skills: replace them (`replace`, a list or nil), then add and remove
-- some; refused past `max` (nothing written). Stored sorted, as msgpack ('' for none).
-- Returns the new list.
local function write_skills(adv, current, replace, add, rm, max)
  local has = {}
  local from = replace or ((current and current ~= '') and cmsgpack.unpack(current) or {})
  for _, s in ipairs(from) do has[s] = true end
  for _, s in ipairs(add or {}) do has[s] = true end
  for _, s in ipairs(rm or {}) do has[s] = nil end
  local list = {}
  for s in pairs(has) do list[#list + 1] = s end
  table.sort(list)
  if max and #list > tonumber(max) then
    fail('invalid', 'skills', 'advisor ' .. adv .. ' would have ' .. #list ..
      ' skills; at most ' .. max .. ' are allowed')
  end
  redis.call('HSET', K.adv(adv), 'sk', #list > 0 and cmsgpack.pack(list) or '')
  return list
end

-- A role, kept between calls under the settings' generation of the call (keys.lua: role_set
-- makes a new one), where load_cfg read it first.
local function load_role(name)
  local key = K.role(name)
  local r = GEN and ROLES.get(key)
  if r and r.gen == GEN then return r end
  local v = redis.call('HMGET', key, 'push', 'cap')
  if not v[1] then fail('not_found', 'role', 'unknown role ' .. name) end
  r = { push = v[1] == '1', cap = tonumber(v[2]), gen = GEN }
  if PERSISTENT and GEN then ROLES.put(key, r) end
  return r
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
    day_add(cfg, t, 'b:' .. adv, seg - t)  -- the team's total is their sum, when read
    t = seg
  end
  t = s  -- and per hour, for the reports (any time zone's day is whole hours)
  while t < e do
    local seg = math.min((math.floor(t / HOUR_MS) + 1) * HOUR_MS, e)
    rep_add(cfg, t, 'b|' .. adv, seg - t)
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
  event(cfg, 'break_ended', at, 'a', a.id, 'ms', at - s, 'why', why)
  return at - s
end

-- Presence: the advisor was heard now. Written at most once per PRESENCE_STEP_MS
-- (defaults.PRESENCE_STEP_S, held equal by a test) unless `always` (a heartbeat): `sn` in the
-- advisor's record mirrors the last write, so calls within the step cost no command. Whoever
-- else writes the presence (a break's end, repair) leaves `sn` older, never newer: a call
-- after them writes again.
local PRESENCE_STEP_MS = 1000
local function touch(a, now, always)
  if a.st == 'off' then return end
  if not always and a.sn and now >= a.sn and now - a.sn < PRESENCE_STEP_MS then return end
  redis.call('ZADD', K.online, ms(now), a.id)
  redis.call('HSET', K.adv(a.id), 'sn', ms(now))
  a.sn = now
end
