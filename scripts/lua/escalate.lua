-- escalate: re-place waiting conversations whose wait crossed the threshold of a priority
-- group with `waiting_longer_than` (the worker's escalator, every second, and the
-- reconciler), up to n per call, earliest due first. Each batch is atomic: a conversation is
-- always in exactly one queue. Presses and previews re-place what is due themselves too.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {n, now?}
-- Returns: msgpack {moved (conversations re-placed), left (still due after this batch)}
-- Fails: not_found
-- Events: none
--@include keys
--@include stock
local cfg = load_cfg()
local moved = escalate_due(cfg, tonumber(O.n))
return reply({moved = moved, left = due_count(cfg)})
