-- assign: a supervisor hands a message to an advisor, whatever its place (waiting with its
-- whole conversation, in help requests, in quarantine, or with another advisor together with
-- the rest of that conversation in their hands). Not counted against push capacity.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?, by?}
--@include core
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
require_logged_in(a)
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'conv', 'adv')
if not v[1] then fail('not_found', 'message', 'unknown message ' .. O.msg) end
local st, conv, holder = v[1], v[2], v[3]
if st == 'd' then fail('conflict', 'message', 'message ' .. O.msg .. ' is already done') end
if st == 'a' and holder == a.id then return reply({status = 'noop', messages = {}}) end
local ids = {}
if st == 'w' then
  local messages = give_conv(cfg, a.id, conv, 'manual', now, false)
  return reply({status = 'assigned', messages = messages})
elseif st == 'h' or st == 'q' then
  redis.call('ZREM', st == 'h' and K.help or K.quar, O.msg)
  give(cfg, a.id, O.msg, conv, 'manual', now, false, 'assigned by ' .. (O.by or 'a supervisor'))
  ids = {O.msg}
else
  for _, id in ipairs(redis.call('ZRANGE', K.cur(holder), 0, -1)) do
    if redis.call('HGET', K.msg(id), 'conv') == conv then
      release(holder, id, conv)
      give(cfg, a.id, id, conv, 'manual', now, false, 'moved from ' .. holder)
      ids[#ids + 1] = id
    end
  end
end
return reply({status = 'assigned', messages = views(ids)})
