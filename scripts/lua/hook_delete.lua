-- hook_delete: remove a webhook of the team (deliveries already queued find it gone and stop).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {id, now?}
--@include core
local cfg = load_cfg()
local now = now_ms()
if redis.call('HDEL', K.hooks, O.id) == 0 then
  fail('not_found', 'hook', 'unknown webhook ' .. O.id)
end
event(cfg, 'hook_deleted', now, {'hook', O.id})
return reply({status = 'ok'})
