-- settings_set: change team options (validated by the caller): presence timeout, untouched
-- push timeout, logout at the end of working hours, requeue limit, retention, working hours,
-- the messages the team may store.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {fields = {name = value}, now?}
-- Returns: msgpack {status = 'ok' | 'noop' (nothing changed)}
-- Fails: invalid, not_found
-- Events: settings_changed
--@include keys
--@include events
local cfg = load_cfg()
local now = now_ms()
local allowed = {name = 1, pto = 1, uto = 1, lae = 1, mreq = 1, ret = 1, hours = 1, evmax = 1,
  mmax = 1, bmax = 1, rmax = 1}
local args = {}
local names = {}
for k, v in pairs(O.fields) do
  if not allowed[k] then fail('invalid', k, 'unknown team setting ' .. k) end
  args[#args + 1] = k
  args[#args + 1] = v
  names[#names + 1] = k
end
if #names == 0 then return reply({status = 'noop'}) end
cfg_write(unpack(args))
table.sort(names)
event(cfg, 'settings_changed', now, 'fields', table.concat(names, ','))
return reply({status = 'ok'})
