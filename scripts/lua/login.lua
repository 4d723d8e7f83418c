-- login: the advisor starts a session (a new session epoch fences jobs of the old one).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, touch_only? (a heartbeat: presence only, never logs in)}
--@include core
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
if O.touch_only then
  require_logged_in(a)
  touch(a, now)
  return reply({status = 'noop', epoch = a.ep})
end
if a.st ~= 'off' then
  touch(a, now)
  return reply({status = 'noop', epoch = a.ep})
end
local ep = redis.call('HINCRBY', K.adv(a.id), 'ep', 1)
redis.call('HSET', K.adv(a.id), 'st', 'on', 'li', now)
redis.call('ZADD', K.online, now, a.id)
event(cfg, 'logged_in', now, {'a', a.id})
return reply({status = 'ok', epoch = ep})
