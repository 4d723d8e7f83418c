-- scan.lua: reading a team's keys by pattern (check, repair, team deletion: ops tools, never
-- the hot path).
--@include keys

-- The prefix as a literal inside a SCAN MATCH glob. Team ids have no glob characters
-- (dispatcher/keys.py), so this is defence in depth: a pattern built from a team never
-- matches another team's keys.
local function pglob() return (string.gsub(P, '[%*%?%[%]\\]', '\\%0')) end

-- Call `each(key)` for every key of the team matching `pattern` (after the prefix).
local function scan(pattern, each)
  local cursor = '0'
  repeat
    local r = redis.call('SCAN', cursor, 'MATCH', pglob() .. pattern, 'COUNT', 1000)
    cursor = r[1]
    for _, k in ipairs(r[2]) do each(k) end
  until cursor == '0'
end

-- The team's keys of several kinds (what follows the prefix up to its first ':': 'm', 'c',
-- 'cw', …) in one walk of the node's keyspace: SCAN walks every team's keys, so a call that
-- reads several kinds walks once rather than once a kind. `kinds`: kind -> a function called
-- with each key during the walk, or true for the keys to be returned, as {kind = {key, …}}.
local function scan_kinds(kinds)
  local out = {}
  for kind, want in pairs(kinds) do if want == true then out[kind] = {} end end
  local from = #P + 1
  scan('*', function(k)
    local kind = string.match(k, '^([^:]*):', from)
    local want = kind and kinds[kind]
    if want == true then
      local list = out[kind]
      list[#list + 1] = k
    elseif want then
      want(k)
    end
  end)
  return out
end
