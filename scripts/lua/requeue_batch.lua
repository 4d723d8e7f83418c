-- requeue_batch: move the conversations of about n messages of a logged-out advisor back to
-- the team, marked automatically reassigned: whole conversations (never split between two
-- batches), in arrival order, to whoever holds the rest of a conversation now, else to the
-- stock (or to quarantine past the team's requeue limit). Fenced: does nothing unless the
-- advisor is still logged out in the session epoch the job carries.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, epoch, n, now?, why?}
-- Returns: msgpack {moved, left (still in the advisor's hands), fenced (an old session: nothing done)}
-- Fails: not_found
-- Events: assigned, quarantined, requeued
--@include keys
--@include advisors
--@include requeue
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
if a.st ~= 'off' or a.ep ~= tonumber(O.epoch) then
  return reply({moved = 0, left = 0, fenced = true})
end
local ids, convs = whole_convs(a.id, redis.call('ZRANGE', K.cur(a.id), 0, tonumber(O.n) - 1))
chan_batch()  -- the channels' stock counts are written once per channel and second, below
local moved = requeue_from(cfg, a.id, ids, now, O.why or ('advisor ' .. a.id .. ' logged out'),
  convs)
chan_flush(cfg)
return reply({moved = moved, left = redis.call('ZCARD', K.cur(a.id)), fenced = false})
