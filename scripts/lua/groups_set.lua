-- groups_set: new priority groups and order inside groups (validated and compiled by the
-- caller). Starts a new settings version; the waiting stock of older versions is re-bucketed
-- by rebucket_batch, and until then is pushed after the new version's queues.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {groups (msgpack list of {n, m, rs? (required skills), tw? (target wait
--         s)}), order, now?}
-- Returns: msgpack {status = 'ok', version (the new settings version), rebucket (older stock left)}
-- Fails: not_found
-- Events: groups_changed
--@include keys
--@include events
--@include groupnames
--@include queue
local cfg = load_cfg()
local now = now_ms()
local ver = cfg.ver + 1
local old = {unpack(cfg.old)}  -- a copy: the settings kept between calls stay as read
local waiting = 0
for _, qk in ipairs(version_keys(cfg, cfg.ver, cfg.ng)) do
  if Q.head(cfg, qk) then waiting = 1; break end
end
-- Older stock keeps the skills its groups required and its order (what finds a conversation
-- in its queue: queue.lua) until it is re-bucketed.
if waiting > 0 then old[#old + 1] = {cfg.ver, cfg.ng, group_skills(cfg) or false, cfg.order} end
-- An older version with nothing waiting has no use for its escalation index, its queues'
-- indexes or its groups' names.
if waiting == 0 then
  for i = 0, cfg.ng do redis.call('UNLINK', K.esc(cfg.ver, i)) end
  for _, qk in ipairs(version_keys(cfg, cfg.ver, cfg.ng)) do redis.call('UNLINK', (Q.keys(qk))) end
  redis.call('UNLINK', K.rsk(cfg.ver))
  cfg_delete(unpack(group_names_keys(cfg.ver, cfg.ng)))
end
local groups = cmsgpack.unpack(O.groups)
local needs, any = {}, false
local timed = {}  -- groups escalating by waiting time, by index
local targets, any_target = {}, false  -- each group's target_wait (0: none), for the reports
for i, g in ipairs(groups) do
  needs[i] = g.rs or {}
  if g.rs and #g.rs > 0 then any = true end
  if g.m and g.m.wt then timed[#timed + 1] = i - 1 end
  targets[i] = g.tw or 0
  if g.tw then any_target = true end
end
cfg_write('ver', ver, 'groups', O.groups, 'ng', #groups,
  'order', O.order, 'old', cmsgpack.pack(old), 'gsk', any and cmsgpack.pack(needs) or EMPTY_LIST,
  'tg', #timed > 0 and cmsgpack.pack(timed) or EMPTY_LIST,
  'gtw', any_target and cmsgpack.pack(targets) or EMPTY_LIST,
  unpack(group_names_fields(ver, groups)))
event(cfg, 'groups_changed', now, 'ver', ver)
return reply({status = 'ok', version = ver, rebucket = #old > 0})
