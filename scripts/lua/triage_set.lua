-- triage_set: the team's ordered triage rules; each names an advisor, who must exist, or a
-- skill (the message waits in its group for advisors with that skill).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {rules (msgpack list of {n, m, a | s}), now?}
-- Returns: msgpack {status = 'ok'}
-- Fails: not_found
-- Events: triage_changed
--@include keys
--@include events
local cfg = load_cfg()
local now = now_ms()
for i, r in ipairs(cmsgpack.unpack(O.rules)) do
  if r.a and redis.call('SISMEMBER', K.advisors, r.a) == 0 then
    fail('not_found', 'rules[' .. (i - 1) .. '].advisor', 'unknown advisor ' .. r.a)
  end
end
cfg_write('triage', O.rules)
event(cfg, 'triage_changed', now)
return reply({status = 'ok'})
