-- hook_delete: remove a webhook of the team and its consumer group (a delivery job already
-- queued finds the hook gone and stops).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {id, now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: not_found
-- Events: hook_deleted
--@include keys
--@include events
local cfg = load_cfg()
local now = now_ms()
if redis.call('HDEL', K.hooks, O.id) == 0 then
  fail('not_found', 'hook', 'unknown webhook ' .. O.id)
end
redis.pcall('XGROUP', 'DESTROY', K.events, 'h:' .. O.id)
redis.call('HDEL', K.hookjobs, O.id)
event(cfg, 'hook_deleted', now, 'hook', O.id)
return reply({status = 'ok'})
