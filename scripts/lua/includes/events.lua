-- events.lua: the team's event stream (the audit trail, analytics source and live-update feed)
-- and the day figures (responses, archives, break time, per advisor: the team's totals are
-- their sum, read when asked).
--@include keys

-- `...`: the event's fields and values, passed on as the call's last arguments (no table
-- made per event: an ingest writes one a message, a press one a message pushed)
local function event(cfg, kind, now, ...)
  redis.call('XADD', K.events, 'MAXLEN', '~', cfg.evmax, '*', 'e', kind, 't', ms(now), ...)
end

-- Figures (day hashes, report hours) expire after `dttl`; the expiry is set once, when the
-- hash is created.
local function add_figure(cfg, key, field, n)
  if redis.call('HINCRBY', key, field, int(n)) == n and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, int(cfg.dttl))
  end
end

local function day_add(cfg, now, field, n)
  add_figure(cfg, K.day(math.floor(now / DAY_MS)), field, n)
end
