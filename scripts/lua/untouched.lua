-- untouched: pushed conversations left unprocessed since `cutoff` go back to the team with
-- every message of theirs in the advisor's hands (those that arrived since too), marked
-- reassigned (a team option, off by default). About n messages per call.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n, now?}
-- Returns: msgpack {moved (messages handed back)}
-- Fails: not_found
-- Events: assigned, quarantined, requeued
--@include keys
--@include requeue
local cfg = load_cfg()
local now = now_ms()
local moved = 0
for _, adv in ipairs(redis.call('SMEMBERS', K.advisors)) do
  if moved >= O.n then break end
  local ids = redis.call('ZRANGEBYSCORE', K.push(adv), '-inf', O.cutoff, 'LIMIT', 0, O.n - moved)
  local convs
  ids, convs = whole_convs(adv, ids)
  moved = moved + requeue_from(cfg, adv, ids, now, 'left untouched by ' .. adv, convs)
end
return reply({moved = moved})
