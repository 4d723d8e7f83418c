-- break_start: the advisor takes a break (server state: a refresh shows the running timer).
-- `until` is the end of the current working-hours range, when a job ends the break.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, until?}
-- Returns: msgpack {status = 'ok', epoch (of the break), since, until}
-- Fails: conflict, not_found
-- Events: break_started
--@include keys
--@include events
--@include advisors
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
require_logged_in(a)
touch(a, now)
if a.st == 'brk' then
  return reply({status = 'noop', epoch = a.bep, since = a.bs,
                ['until'] = tonumber(redis.call('HGET', K.adv(a.id), 'bu'))})
end
local bep = redis.call('HINCRBY', K.adv(a.id), 'bep', 1)
redis.call('HSET', K.adv(a.id), 'st', 'brk', 'bs', now, 'bu', O['until'] or '')
event(cfg, 'break_started', now, 'a', a.id)
return reply({status = 'ok', epoch = bep, since = now, ['until'] = O['until']})
