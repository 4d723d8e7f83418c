-- team_create: a new team with default settings (no priority group: everything FIFO).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {name, order, mreq, ret, evmax, dttl, pto, now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: conflict, not_found
-- Events: team_created
--@include keys
--@include events
--@include groupnames
if redis.call('EXISTS', K.cfg) == 1 then fail('conflict', 'team', 'team ' .. TEAM .. ' already exists') end
if redis.call('EXISTS', P .. 'deleting') == 1 then
  fail('conflict', 'team', 'team ' .. TEAM .. ' is being deleted; finish the deletion first ' ..
    '(pushinbox team delete ' .. TEAM .. ' --yes)')
end
local now = now_ms()
cfg_write('name', O.name, 'ver', 1, 'groups', cmsgpack.pack({}), 'ng', 0,
  'order', O.order,
  'triage', cmsgpack.pack({}), 'old', cmsgpack.pack({}), 'mreq', O.mreq, 'ret', O.ret,
  'evmax', O.evmax, 'dttl', O.dttl, 'pto', O.pto, 'uto', 0, 'lae', 0,
  'hours', cmsgpack.pack({}), 'seq', 0, 'created', now, 'chb', 1, 'bq', 1, 'nm', 0, 'nb', 0,
  unpack(group_names_fields(1, {})))
event(load_cfg(), 'team_created', now, 'name', O.name)
return reply({status = 'ok'})
