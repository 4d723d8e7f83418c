-- login: the advisor starts a session (a new session epoch fences jobs of the old one).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, touch_only? (a heartbeat: presence only, never logs in)}
-- Returns: msgpack {status = 'ok' | 'noop' (in session already, or a heartbeat), epoch}
-- Fails: conflict, not_found
-- Events: assigned, logged_in, quarantined, requeued
--@include keys
--@include events
--@include advisors
--@include handover
--@include requeue
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
if O.touch_only then
  require_logged_in(a)
  touch(a, now, true)
  return reply({status = 'noop', epoch = a.ep})
end
if a.st ~= 'off' then
  touch(a, now)
  return reply({status = 'noop', epoch = a.ep})
end
local ep = redis.call('HINCRBY', K.adv(a.id), 'ep', 1)
redis.call('HSET', K.adv(a.id), 'st', 'on', 'li', now, 'sn', ms(now))
redis.call('ZADD', K.online, now, a.id)
event(cfg, 'logged_in', now, 'a', a.id)
-- Back while the requeue of the last session was under way: for each conversation still in
-- the advisor's hands, one holder. When another logged-in advisor took the conversation up
-- meanwhile, what this advisor still holds of it goes to them; otherwise the advisor holds it
-- (its recorded holder from now on) with what arrived for it meanwhile.
-- Looks at the first 1,000 held messages (bounded work); a press hands over the rest.
local seen = {}
for _, id in ipairs(redis.call('ZRANGE', K.cur(a.id), 0, 999)) do
  local conv = redis.call('HGET', K.msg(id), 'conv')
  if conv and not seen[conv] then
    seen[conv] = true
    local ck = K.conv(conv)
    if holder_of(conv, a.id) then
      local msgs = by_arrival(held_ids(a.id, conv))
      for _, m in ipairs(msgs) do release(a.id, m.id, conv) end
      back_to_team(cfg, conv, msgs, now, 'conversation taken up by another advisor', a.id, true)
    else
      redis.call('HSET', ck, 'owner', a.id, 'ot', redis.call('ZSCORE', K.cur(a.id), id))
      local q = redis.call('HGET', ck, 'q')
      if q and q ~= '' then
        give_conv(cfg, a.id, conv, 'affinity', now,
          redis.call('HEXISTS', K.pconv(a.id), conv) == 1, false)
      end
    end
  end
end
return reply({status = 'ok', epoch = ep})
