-- role_set: create or change a role. Push mode is a property of the role; `cap` is how many
-- pushed conversations an advisor of the role may hold unprocessed.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {role, push (bool), cap, now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: not_found
-- Events: role_set
--@include keys
--@include events
local cfg = load_cfg()
local now = now_ms()
redis.call('HSET', K.role(O.role), 'push', O.push and '1' or '0', 'cap', O.cap)
cfg_write()  -- a new settings generation: no call keeps the role as it was
redis.call('SADD', K.roles, O.role)
event(cfg, 'role_set', now, 'role', O.role, 'push', O.push and '1' or '0', 'cap', O.cap)
return reply({status = 'ok'})
