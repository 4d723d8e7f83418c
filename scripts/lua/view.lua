-- view: read messages as clients see them (read-only): given ids, an advisor's current
-- messages, the help requests or the quarantine.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {ids? | adv? | place? ('help' | 'quarantine'), from?, n?}
-- Returns: msgpack the messages' views; for adv / place a page {items, more}
-- Fails: not_found
-- Events: none
-- Flags: no-writes
--@include keys
--@include advisors
--@include views
load_cfg()
local n = tonumber(O.n or 1000)
local from = tonumber(O.from or 0)
local ids
if O.ids then
  ids = {}
  for _, id in ipairs(O.ids) do
    if redis.call('EXISTS', K.msg(id)) == 1 then ids[#ids + 1] = id end
  end
  return reply(views(ids))
elseif O.adv then
  load_adv(O.adv)
  ids = ordered(K.cur(O.adv), from, from + n)
elseif O.place == 'help' then
  ids = redis.call('ZRANGE', K.help, from, from + n)
else
  ids = redis.call('ZRANGE', K.quar, from, from + n)
end
local more = #ids > n
if more then ids[#ids] = nil end
return reply({items = views(ids), more = more})
