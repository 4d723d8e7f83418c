-- hold: put a message on hold. It stays in the advisor's current messages but no longer
-- blocks the next push. With {off = true}, takes it off hold (it does not block again).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, off?, now?}
-- Returns: msgpack {status = 'ok' | 'noop' (already in that state)}
-- Fails: conflict, not_found, not_yours
-- Events: held, unheld
--@include keys
--@include events
--@include advisors
--@include actions
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local conv = own_message(a, O.msg, O.off and 'taken off hold' or 'put on hold', nil)
touch(a, now)
if O.off then
  if redis.call('SREM', K.hold(a.id), O.msg) == 0 then return reply({status = 'noop'}) end
  redis.call('HSET', K.msg(O.msg), 'ho', '2')  -- held, then taken off: in neither list
  event(cfg, 'unheld', now, 'm', O.msg, 'a', a.id, 'c', conv)
  return reply({status = 'ok'})
end
if redis.call('SADD', K.hold(a.id), O.msg) == 0 then return reply({status = 'noop'}) end
redis.call('HSET', K.msg(O.msg), 'ho', '1')  -- the record says so: a reply skips the lists
if redis.call('ZREM', K.push(a.id), O.msg) == 1 then
  if redis.call('HINCRBY', K.pconv(a.id), conv, -1) <= 0 then
    redis.call('HDEL', K.pconv(a.id), conv)
  end
end
event(cfg, 'held', now, 'm', O.msg, 'a', a.id, 'c', conv)
return reply({status = 'ok'})
