-- advisor_set: create an advisor (logged out) or change their name / role / skills.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, role, name, skills? (replace them; validated by the caller), max, now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: invalid, not_found
-- Events: advisor_set
--@include keys
--@include events
--@include advisors
local cfg = load_cfg()
local now = now_ms()
load_role(O.role)
if O.skills and #O.skills > tonumber(O.max) then  -- validated before the first write
  fail('invalid', 'skills', 'at most ' .. O.max .. ' skills are allowed')
end
local ak = K.adv(O.adv)
if redis.call('EXISTS', ak) == 0 then
  redis.call('HSET', ak, 'st', 'off', 'ep', 0, 'bep', 0, 'bs', '', 'bu', '', 'req', '')
end
redis.call('HSET', ak, 'role', O.role, 'name', O.name)
if O.skills then write_skills(O.adv, nil, O.skills) end
redis.call('SADD', K.advisors, O.adv)
event(cfg, 'advisor_set', now, 'a', O.adv, 'role', O.role)
return reply({status = 'ok'})
