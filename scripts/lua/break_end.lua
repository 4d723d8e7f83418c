-- break_end: the break ends (the advisor's choice, or the end of the working-hours range).
-- A scheduled end carries the break epoch and is a no-op when that break already ended.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, now?, epoch?, at? (end time, not later than now), why?}
-- Returns: msgpack {status = 'ok' | 'noop' (no break, or that break already ended), ms (its length)}
-- Fails: not_found
-- Events: break_ended
--@include keys
--@include advisors
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
if a.st ~= 'brk' or (O.epoch and tonumber(O.epoch) ~= a.bep) then
  return reply({status = 'noop', ms = 0})
end
local at = now
if O.at and tonumber(O.at) < now then at = tonumber(O.at) end
if not O.epoch then touch(a, now) end  -- a scheduled end is not the advisor being there
local ms = end_break(cfg, a, at, O.why or 'ended by the advisor')
return reply({status = 'ok', ms = ms})
