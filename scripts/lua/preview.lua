-- preview: the first n conversations of the ordered list with their waiting messages and
-- group: exactly what the next n presses would get (read-only, one consistent snapshot); with
-- an advisor, what their next presses get (the groups whose required skills they have).
-- Like a press, it first re-places conversations whose wait crossed a threshold (up to
-- O.esc), so what it shows is what presses get now: its only writes.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {n, m? (messages shown per conversation, default 20), total? (messages
--         shown in all, default 200: the views are most of the cost), adv?, esc?}
-- Returns: msgpack [{conversation, group, why, waiting, messages (the first m, while the total lasts)}]
-- Fails: not_found
-- Events: none
--@include keys
--@include views
--@include advisors
--@include stock
--@include waiting
local cfg = load_cfg()
escalate_due(cfg, tonumber(O.esc or 10))
local slots = O.adv and push_slots(cfg, load_adv(O.adv).sk) or queue_slots(cfg, nil)
local n = tonumber(O.n)
local per = tonumber(O.m or 20)
local budget = tonumber(O.total or 200)
local out = {}
for _, slot in ipairs(slots) do
  if #out >= n then break end
  for _, conv in ipairs(Q.slot_range(cfg, slot, n - #out)) do
    local c = redis.call('HMGET', K.conv(conv), 'g', 'why', 'w', 'q')
    c[1], c[2] = conv_group(cfg, c[4], c[1], c[2])
    local shown = math.min(per, budget)
    local ids = shown > 0 and waiting_head(conv, shown, c[3]) or {}
    budget = budget - #ids
    local msgs = views(ids)
    for _, m in ipairs(msgs) do view_in_group(m, c[1], c[2]) end
    out[#out + 1] = {conversation = conv, group = c[1], why = c[2], messages = msgs,
                     waiting = (#ids < shown) and #ids or waiting_count(conv, c[3])}
  end
end
return reply(out)
