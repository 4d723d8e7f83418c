-- advisor_skills: change an advisor's skills (routing: the groups whose required skills they
-- have are the ones pushed to them, from their next press). Replace, then add and remove, in
-- one step, so two supervisors editing at once lose nothing.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, skills? (replace), add, rm (validated by the caller), max, now?}
-- Returns: msgpack {status = 'ok', skills (the new list, sorted)}
-- Fails: invalid, not_found
-- Events: advisor_set
--@include keys
--@include events
--@include advisors
local cfg = load_cfg()
local now = now_ms()
local a = load_adv(O.adv)
local skills = write_skills(a.id, a.sk, O.skills, O.add, O.rm, O.max)
event(cfg, 'advisor_set', now, 'a', a.id, 'role', a.role, 'skills', table.concat(skills, ' '))
return reply({status = 'ok', skills = skills})
