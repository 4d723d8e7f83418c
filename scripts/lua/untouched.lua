-- untouched: pushed messages left unprocessed since `cutoff` go back to the stock, marked
-- reassigned (a team option, off by default). At most n messages per call.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n, now?}
--@include core
local cfg = load_cfg()
local now = now_ms()
local moved = 0
local convs, order = {}, {}
for _, adv in ipairs(redis.call('SMEMBERS', K.advisors)) do
  if moved >= O.n then break end
  local ids = redis.call('ZRANGEBYSCORE', K.push(adv), '-inf', O.cutoff, 'LIMIT', 0, O.n - moved)
  for _, id in ipairs(ids) do
    local conv = redis.call('HGET', K.msg(id), 'conv')
    release(adv, id, conv)
    if requeue_msg(cfg, id, conv, now, 'left untouched by ' .. adv) == 'w' and not convs[conv] then
      convs[conv] = true
      order[#order + 1] = conv
    end
    moved = moved + 1
  end
end
for _, conv in ipairs(order) do place_conv(cfg, conv) end
return reply({moved = moved})
