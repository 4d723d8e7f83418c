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
