-- hook_set: register (or replace) a webhook of the team. Deliveries read the team's event
-- stream through the consumer group 'hooks', created here; when the team had no hook, the
-- group starts at the stream's end, so a new hook never receives a backlog.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {id, hook (msgpack record), now?}
--@include core
local cfg = load_cfg()
local now = now_ms()
local had = redis.call('HLEN', K.hooks)
local made = redis.pcall('XGROUP', 'CREATE', K.events, 'hooks', '$', 'MKSTREAM')
if type(made) == 'table' and made.err and had == 0 then
  redis.call('XGROUP', 'SETID', K.events, 'hooks', '$')
end
redis.call('HSET', K.hooks, O.id, O.hook)
event(cfg, 'hook_set', now, {'hook', O.id})
return reply({status = 'ok'})
