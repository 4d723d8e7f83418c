-- purge_done: forget up to n done messages older than `cutoff` (the retention period).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n}
--@include core
load_cfg()
local ids = redis.call('ZRANGEBYSCORE', K.done, '-inf', O.cutoff, 'LIMIT', 0, O.n)
for _, id in ipairs(ids) do
  redis.call('DEL', K.msg(id))
  redis.call('ZREM', K.done, id)
end
return reply({purged = #ids})
