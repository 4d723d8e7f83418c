-- team_delete: remove a team and everything it holds, one batch of keys per call (a team can
-- hold millions of keys; one call must not block Redis for long). The first call deletes the
-- team's settings, so from then on every other script for the team fails with "unknown team";
-- the caller repeats with the returned cursor until it is "0" (a deletion cut short is
-- finished by deleting again: the id cannot be created again before). All the team's keys share its
-- hash slot, so in a cluster they all live on the node that runs this script.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cursor, n, first}
-- Returns: msgpack {cursor (0: done), deleted (keys unlinked by this call)}
-- Fails: not_found
-- Events: none
-- Flags: allow-oom
--@include keys
--@include scan
-- Until the last call, the key `deleting` stays (skipped below): team_create refuses the id
-- meanwhile, so a later batch can never unlink keys of a team created again under it.
local marker = P .. 'deleting'
if O.first then
  if redis.call('EXISTS', K.cfg) == 0 and redis.call('EXISTS', marker) == 0 then
    fail('not_found', 'team', 'unknown team ' .. TEAM)
  end
  -- (the unlink first: on the EVALSHA path, where no flag says allow-oom, Redis refuses a
  -- script's first write while it is over its maxmemory unless an earlier one freed memory)
  redis.call('UNLINK', K.cfg)
  redis.call('SET', marker, '1')
end
local res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. '*', 'COUNT', O.n)
local found = {}
for _, k in ipairs(res[2]) do
  if k ~= marker then found[#found + 1] = k end
end
for i = 1, #found, 1000 do
  redis.call('UNLINK', unpack(found, i, math.min(i + 999, #found)))
end
if res[1] == '0' then redis.call('UNLINK', marker) end
return reply({cursor = res[1], deleted = #found + (O.first and 1 or 0)})
