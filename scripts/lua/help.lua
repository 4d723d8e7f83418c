-- help: the advisor asks for help; the message goes to the team's help requests (supervisors
-- take it or hand it to an advisor) and the advisor is free for the next push.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?, note?}
-- Returns: msgpack {status = 'ok' | 'noop' (asked already)}
-- Fails: conflict, not_found, not_yours
-- Events: help_requested
--@include keys
--@include events
--@include advisors
--@include handover
--@include actions
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'hb')
if v[1] == 'h' and v[2] == a.id then return reply({status = 'noop'}) end
local conv = own_message(a, O.msg, 'help requested', nil)
touch(a, now)
release(a.id, O.msg, conv)
redis.call('HSET', K.msg(O.msg), 'st', 'h', 'adv', '', 'hb', a.id, 'note', O.note or '')
redis.call('ZADD', K.help, now, O.msg)
rep_add(cfg, now, 'h|' .. a.id, 1)
event(cfg, 'help_requested', now, 'm', O.msg, 'a', a.id, 'c', conv, 'note', O.note or '')
return reply({status = 'ok'})
