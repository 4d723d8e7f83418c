-- actions.lua: what reply / archive / help / hold share: finding the advisor's own message;
-- a reply or an archive counted in the day figures and the reports.
--@include keys
--@include events
--@include advisors
--@include handover
--@include reports

-- Returns the message's conversation, or nil when the same action was already done (a no-op).
local function own_message(a, id, action, done_kind)
  local v = redis.call('HMGET', K.msg(id), 'st', 'adv', 'conv', 'dk', 'by', 'pt', 'ho')
  if not v[1] then fail('not_found', 'message', 'unknown message ' .. id) end
  if v[1] == 'd' and v[5] == a.id then
    if done_kind and v[4] == done_kind then return nil end
    fail('conflict', 'message', 'message ' .. id .. ' is already ' .. v[4])
  end
  if v[1] ~= 'a' or v[2] ~= a.id then
    fail('not_yours', 'message', 'message ' .. id .. ' is not assigned to advisor ' .. a.id)
  end
  -- and when it was pushed (nil: not by a press), and its hold story (release)
  return v[3], tonumber(v[6]), v[7]
end

-- The writes of a reply or an archive of the advisor's message `O.msg` of conversation `conv`
-- (own_message's answers): the message is done, counted in today's figures (`field`) and
-- the reports, and the event is named by the kind ('replied' or 'archived').
local function done_writes(cfg, now, a, kind, field, conv, pushed_at, ho)
  rep_add(cfg, now, (field == 'r' and 'r|' or 'a|') .. a.id, 1)  -- responses, archives
  if pushed_at then rep_add(cfg, now, 'ht|' .. a.id .. '|' .. int(bucket(now - pushed_at)), 1) end
  release(a.id, O.msg, conv, ho, pushed_at ~= nil)
  redis.call('HSET', K.msg(O.msg), 'st', 'd', 'dk', kind, 'dt', ms(now), 'by', a.id)
  redis.call('ZADD', K.done, ms(now), O.msg)
  day_add(cfg, now, field .. ':' .. a.id, 1)  -- the team's total is their sum, when read
  event(cfg, kind, now, 'm', O.msg, 'a', a.id, 'c', conv)
end

-- Reply or archive, the whole call.
local function finish(kind, field)
  local cfg = load_cfg_recording()
  local now = now_ms()
  local a = load_adv_presence(O.adv)
  local conv, pushed_at, ho = own_message(a, O.msg, kind, kind)
  touch(a, now)
  if not conv then return reply({status = 'noop'}) end
  done_writes(cfg, now, a, kind, field, conv, pushed_at, ho)
  return reply({status = 'ok'})
end
