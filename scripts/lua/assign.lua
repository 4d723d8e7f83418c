-- assign: a supervisor hands a message to an advisor, whatever its place (waiting with its
-- whole conversation, in help requests, in quarantine, or with another advisor together with
-- the rest of that conversation in their hands). Not counted against push capacity.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?, by?}
-- Returns: msgpack {status = 'assigned' | 'noop' (theirs already), messages (the views moved)}
-- Fails: conflict, not_found
-- Events: assigned
--@include keys
--@include advisors
--@include views
--@include handover
--@include requeue
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
require_logged_in(a)
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'conv', 'adv')
if not v[1] then fail('not_found', 'message', 'unknown message ' .. O.msg) end
local st, conv, holder = v[1], v[2], v[3]
if st == 'd' then fail('conflict', 'message', 'message ' .. O.msg .. ' is already done') end
if st == 'a' and holder == a.id then return reply({status = 'noop', messages = {}}) end
-- The whole conversation goes: its waiting messages, what another advisor holds of it, and
-- the message itself when it was in the help requests or the quarantine.
local given = {}
local owner = redis.call('HGET', K.conv(conv), 'owner')  -- before this message joins a.id
if st == 'h' or st == 'q' then
  redis.call('ZREM', st == 'h' and K.help or K.quar, O.msg)
  if st == 'q' then redis.call('HSET', K.msg(O.msg), 'rq', 0) end  -- released: count afresh
  give(cfg, a.id, O.msg, conv, 'manual', now, false, 'assigned by ' .. (O.by or 'a supervisor'))
  given[1] = O.msg
end
local from = (st == 'a') and holder or owner
if from and from ~= '' and from ~= a.id then
  for _, m in ipairs(by_arrival(held_ids(from, conv))) do
    release(from, m.id, conv)
    give(cfg, a.id, m.id, conv, 'manual', now, false, 'moved from ' .. from)
    given[#given + 1] = m.id
  end
end
local messages = views(given)
for _, m in ipairs(give_conv(cfg, a.id, conv, 'manual', now, false)) do
  messages[#messages + 1] = m
end
return reply({status = 'assigned', messages = messages})
