-- take: an advisor whose role has push mode off picks a specific waiting message, as in a
-- classic inbox; its whole conversation comes along. Push-mode advisors may not pick.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?}
-- Returns: msgpack {status = 'assigned' | 'noop' (theirs already), messages}
-- Fails: conflict, forbidden, not_found
-- Events: assigned
--@include keys
--@include advisors
--@include handover
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
require_logged_in(a)
if load_role(a.role).push then
  fail('forbidden', 'advisor', 'advisor ' .. a.id .. ' works in push mode and cannot pick messages')
end
local v = redis.call('HMGET', K.msg(O.msg), 'st', 'conv', 'adv')
if not v[1] then fail('not_found', 'message', 'unknown message ' .. O.msg) end
if v[1] == 'a' and v[3] == a.id then return reply({status = 'noop', messages = {}}) end
if v[1] ~= 'w' then fail('conflict', 'message', 'message ' .. O.msg .. ' is not waiting') end
touch(a, now)
local messages = give_conv(cfg, a.id, v[2], 'take', now, false)
return reply({status = 'assigned', messages = messages})
