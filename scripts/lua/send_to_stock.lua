-- send_to_stock: a supervisor sends a message back to the team's waiting stock, marked
-- reassigned: from an advisor's hands (with the rest of that conversation there), from the
-- help requests, or out of quarantine (its requeue count starts again).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {msg, now?}
-- Returns: msgpack {status = 'ok' | 'assigned' (to the conversation's holder) | 'quarantined' | 'noop' (waiting already)}
-- Fails: conflict, not_found
-- Events: assigned, quarantined, requeued
--@include keys
--@include handover
--@include requeue
local cfg = load_cfg()
local now = now_ms()
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'conv', 'adv')
if not v[1] then fail('not_found', 'message', 'unknown message ' .. O.msg) end
local st, conv, holder = v[1], v[2], v[3]
if st == 'd' then fail('conflict', 'message', 'message ' .. O.msg .. ' is already done') end
if st == 'w' then return reply({status = 'noop'}) end
local where
if st == 'a' then
  local ids = held_ids(holder, conv)
  local msgs = by_arrival(ids)
  for _, m in ipairs(msgs) do release(holder, m.id, conv) end
  where = back_to_team(cfg, conv, msgs, now, 'sent back to the stock by a supervisor', holder)
elseif st == 'h' then
  redis.call('ZREM', K.help, O.msg)
  where = back_to_team(cfg, conv, by_arrival({O.msg}), now, 'help request sent back to the stock')
else
  redis.call('ZREM', K.quar, O.msg)
  redis.call('HSET', K.msg(O.msg), 'rq', 0)
  where = back_to_team(cfg, conv, by_arrival({O.msg}), now, 'released from quarantine', nil,
    true)  -- a release starts the bounce count afresh
end
local status = {w = 'ok', q = 'quarantined', held = 'assigned'}
return reply({status = status[where]})
