-- logout: the advisor is offline at once (a running break ends). Their messages go back to the
-- stock in batches by requeue_batch, fenced by the epoch returned here.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, why?}
-- Returns: msgpack {status = 'ok' | 'noop' (logged out already), epoch (fences the requeue), held}
-- Fails: not_found
-- Events: break_ended, logged_out
--@include keys
--@include events
--@include advisors
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local held = redis.call('ZCARD', K.cur(a.id))
if a.st == 'off' then return reply({status = 'noop', epoch = a.ep, held = held}) end
end_break(cfg, a, now, 'logged out')
local ep = redis.call('HINCRBY', K.adv(a.id), 'ep', 1)
redis.call('HSET', K.adv(a.id), 'st', 'off', 'req', '')
redis.call('ZREM', K.online, a.id)
event(cfg, 'logged_out', now, 'a', a.id, 'why', O.why or 'logged out')
return reply({status = 'ok', epoch = ep, held = held})
