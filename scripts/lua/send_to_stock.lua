-- send_to_stock: a supervisor sends a message back to the team's waiting stock, marked
-- reassigned: from an advisor's hands (with the rest of that conversation there), from the
-- help requests, or out of quarantine (its requeue count starts again).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {msg, now?}
--@include core
local cfg = load_cfg()
local now = now_ms()
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'conv', 'adv')
if not v[1] then fail('not_found', 'message', 'unknown message ' .. O.msg) end
local st, conv, holder = v[1], v[2], v[3]
if st == 'd' then fail('conflict', 'message', 'message ' .. O.msg .. ' is already done') end
if st == 'w' then return reply({status = 'noop'}) end
if st == 'a' then
  local ids = {}
  for _, id in ipairs(redis.call('ZRANGE', K.cur(holder), 0, -1)) do
    if redis.call('HGET', K.msg(id), 'conv') == conv then ids[#ids + 1] = id end
  end
  requeue_from(cfg, holder, ids, now, 'sent back to the stock by a supervisor')
  return reply({status = 'ok'})
elseif st == 'h' then
  redis.call('ZREM', K.help, O.msg)
  requeue_msg(cfg, O.msg, conv, now, 'help request sent back to the stock')
else
  redis.call('ZREM', K.quar, O.msg)
  redis.call('HSET', K.msg(O.msg), 'rq', 0)
  requeue_msg(cfg, O.msg, conv, now, 'released from quarantine')
end
place_conv(cfg, conv)
return reply({status = 'ok'})
