-- next: "Process a new message". Assigns the first conversation of the team's ordered list
-- (priority groups in order, then the team's order inside a group) with all its waiting
-- messages. Ends a running break. While the advisor holds as many unprocessed pushed
-- conversations as their role allows, answers those again (so a retry is safe).
-- Only the groups whose required skills the advisor has are looked at, and of the
-- conversations triage restricted to a skill, those of the advisor's skills. Conversations whose
-- wait crossed a `waiting_longer_than` threshold are re-placed first (up to O.esc; the
-- worker's escalator moves the rest), so the press sees the list as it stands now.
-- Cost: per group at most the index's head and its bucket's pop (queue.lua), O(G + log N);
-- never a scan of the stock.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, req? (client request id: a repeat returns the same answer),
--         esc? (due escalations re-placed first, default 10)}
-- Returns: msgpack {status = 'assigned' | 'pending' (at capacity: the pushes again) | 'empty', messages}
-- Fails: conflict, forbidden, not_found
-- Events: assigned, break_ended
--@include keys
--@include advisors
--@include press
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local role = press_allowed(a)
return reply(press(cfg, a, role, now))
