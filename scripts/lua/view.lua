-- view: read messages as clients see them (read-only): given ids, an advisor's current
-- messages, the help requests or the quarantine.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {ids? | adv? | place? ('help' | 'quarantine'), n?}
--@include core
load_cfg()
local n = tonumber(O.n or 1000) - 1
local ids
if O.ids then
  ids = {}
  for _, id in ipairs(O.ids) do
    if redis.call('EXISTS', K.msg(id)) == 1 then ids[#ids + 1] = id end
  end
elseif O.adv then
  load_adv(O.adv)
  ids = redis.call('ZRANGE', K.cur(O.adv), 0, n)
elseif O.place == 'help' then
  ids = redis.call('ZRANGE', K.help, 0, n)
else
  ids = redis.call('ZRANGE', K.quar, 0, n)
end
return reply(views(ids))
