-- hook_set: register a webhook of the team, with its own consumer group 'h:<id>' on the
-- team's event stream starting at the stream's end: a new hook never receives a backlog,
-- and each hook reads at its own pace (workers/hooks.py).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {id, hook (msgpack record), max (hooks per team), now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: invalid, not_found
-- Events: hook_set
--@include keys
--@include events
local cfg = load_cfg()
local now = now_ms()
if redis.call('HEXISTS', K.hooks, O.id) == 0 and O.max
    and redis.call('HLEN', K.hooks) >= tonumber(O.max) then
  fail('invalid', 'url', 'a team has at most ' .. O.max .. ' webhooks')
end
redis.pcall('XGROUP', 'CREATE', K.events, 'h:' .. O.id, '$', 'MKSTREAM')
redis.call('HSET', K.hooks, O.id, O.hook)
event(cfg, 'hook_set', now, 'hook', O.id)
return reply({status = 'ok'})
