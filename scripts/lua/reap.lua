-- reap: log out (up to n) advisors not heard from since `cutoff` (a closed laptop), so their
-- messages can be handed back; returns each one's new session epoch for requeue_batch.
-- An advisor on a break that ends by itself later (working hours) is left alone until then.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n, why?, now?}
-- Returns: msgpack [{adv, epoch}] of the advisors logged out
-- Fails: not_found
-- Events: break_ended, logged_out
--@include keys
--@include events
--@include advisors
local cfg = load_cfg()
local now = now_ms()
local out = {}
for _, adv in ipairs(redis.call('ZRANGEBYSCORE', K.online, '-inf', O.cutoff, 'LIMIT', 0, O.n)) do
  local a = load_adv(adv)
  local bu = tonumber(redis.call('HGET', K.adv(adv), 'bu') or '')
  if a.st == 'brk' and bu and bu > now then
    -- on a scheduled break: not reaped before it ends
  elseif a.st ~= 'off' then
    end_break(cfg, a, math.min(now, bu or now), O.why or 'not seen')
    local ep = redis.call('HINCRBY', K.adv(adv), 'ep', 1)
    redis.call('HSET', K.adv(adv), 'st', 'off', 'req', '')
    event(cfg, 'logged_out', now, 'a', adv, 'why', O.why or 'not seen')
    out[#out + 1] = {adv, ep}
    redis.call('ZREM', K.online, adv)
  else
    redis.call('ZREM', K.online, adv)
  end
end
return reply(out)
