-- reap: log out (up to n) advisors not heard from since `cutoff` (a closed laptop), so their
-- messages can be handed back; returns each one's new session epoch for requeue_batch.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n, why?, now?}
--@include core
local cfg = load_cfg()
local now = now_ms()
local out = {}
for _, adv in ipairs(redis.call('ZRANGEBYSCORE', K.online, '-inf', O.cutoff, 'LIMIT', 0, O.n)) do
  local a = load_adv(adv)
  if a.st ~= 'off' then
    end_break(cfg, a, now, O.why or 'not seen')
    local ep = redis.call('HINCRBY', K.adv(adv), 'ep', 1)
    redis.call('HSET', K.adv(adv), 'st', 'off', 'req', '')
    event(cfg, 'logged_out', now, {'a', adv, 'why', O.why or 'not seen'})
    out[#out + 1] = {adv, ep}
  end
  redis.call('ZREM', K.online, adv)
end
return reply(out)
