-- reply_next: the advisor answers a message in their hands and processes a new message, in one
-- call: what `reply` then `next` do, in that order (the answered conversation's place is free
-- for the press), atomically. Everything is checked before the first write: a message that is
-- not the advisor's, an advisor not logged in or not in a push role, refuse the whole call
-- (nothing answered, nothing pushed). A message already replied (a retry) is not answered
-- again; the press then answers as `next` does at capacity (the pushes again), so a retry is
-- safe.
-- Cost: a reply's and a press's work with one call's fixed cost (settings, clock, advisor).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?, req? (client request id, as next's), esc? (as next's)}
-- Returns: msgpack {replied = 'ok' | 'noop' (replied already), status = 'assigned' |
--          'pending' | 'empty', messages} (status and messages: as next's)
-- Fails: conflict, forbidden, not_found, not_yours
-- Events: replied, assigned, break_ended
--@include keys
--@include advisors
--@include actions
--@include press
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local role = press_allowed(a)
local conv, pushed_at, ho = own_message(a, O.msg, 'replied', 'replied')
if conv then done_writes(cfg, now, a, 'replied', 'r', conv, pushed_at, ho) end
local out = press(cfg, a, role, now)
out.replied = conv and 'ok' or 'noop'
return reply(out)
