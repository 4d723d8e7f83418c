-- rebucket_batch: move waiting conversations of older settings versions into the current
-- version's groups, oldest version and highest group first, until n conversations or n
-- waiting messages have been placed (placing a conversation reads each of its waiting
-- messages, so both bound the work of one call). Each batch is atomic: a conversation is
-- always in exactly one queue.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {n, now?}
-- Returns: msgpack {moved (conversations), left (conversations still in older versions)}
-- Fails: not_found
-- Events: none
--@include keys
--@include stock
--@include waiting
--@include groupnames
--@include queue
local cfg = load_cfg()
local n = tonumber(O.n)
local moved, work = 0, 0
while moved < n and work < n and #cfg.old > 0 do
  local v, g = cfg.old[1][1], cfg.old[1][2]
  local empty = true
  for _, qk in ipairs(version_keys(cfg, v, g)) do
    while moved < n and work < n do
      local conv = Q.head(cfg, qk)
      if not conv then break end
      work = work + math.max(1, waiting_count(conv))
      place_conv(cfg, conv)
      moved = moved + 1
    end
    if Q.head(cfg, qk) then empty = false; break end
  end
  if empty then
    for i = 0, g do redis.call('UNLINK', K.esc(v, i)) end  -- its escalation index too
    for _, qk in ipairs(version_keys(cfg, v, g)) do redis.call('UNLINK', (Q.keys(qk))) end
    redis.call('UNLINK', K.rsk(v))
    table.remove(cfg.old, 1)  -- (cfg_write drops the settings kept between calls)
    cfg_delete(unpack(group_names_keys(v, g)))  -- and its groups' names
    cfg_write('old', cmsgpack.pack(cfg.old))
  end
end
-- What is left: counted bucket by bucket where the older stock has few, else its buckets
-- times half their size (a count of a million would read every bucket each batch).
local left = 0
for _, o in ipairs(cfg.old) do
  for _, qk in ipairs(version_keys(cfg, o[1], o[2])) do left = left + Q.estimate(cfg, qk) end
end
return reply({moved = moved, left = left})
