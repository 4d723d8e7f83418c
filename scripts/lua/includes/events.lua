-- events.lua: the team's event stream (the audit trail, analytics source and live-update feed)
-- and the day figures (responses, archives, break time, per team and per advisor).
--@include keys

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
