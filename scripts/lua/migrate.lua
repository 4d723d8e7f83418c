-- migrate: one step of moving a team's conversations between the two layouts of their waiting
-- messages (includes/waiting.lua): up (the default) folds each waiting list of one message into
-- its conversation's record (`w`) and deletes the list, reclaiming a key per conversation of
-- a deployment upgraded from the list-only layout; down puts every such id back in a list, the
-- layout a version before it reads (a downgrade), and writes back the fields this version
-- leaves out of new records while they are empty or repeat another (a conversation's `fw`,
-- `lw`, `owner`, `held`, `rsk`, a waiting one's `gi`, its queue's whole key `q` (keys.lua)
-- and its group's name and why `g`, `why` (groupnames.lua): O.what 'c'; a message's `adv`,
-- `via`, `pt`, `g`, `why`, `lang` and its conversation's `cust`: O.what 'm'), as a version
-- before it wrote them, and moves a conversation's message in hands from its record (`h`)
-- back into its set `hd:<conv>` (includes/handover.lua); a
-- message's zero `rq` and `re`, empty `mt` and `at`, its `ts` (the millisecond of its `ord`)
-- and its checksum as hex digits, too.
-- O.what 'u' moves the customers' conversations between an earlier version's sets
-- (`cuv:<cust>`) and this version's hashes (`cc:<cust>`, includes/customers.lua), up or down.
-- O.what 'q' moves each queue an earlier version kept whole (one sorted set `q:<ver>:<i>`) into
-- buckets (includes/queue.lua), about O.n conversations a call from its end, and marks the
-- team done (`bq` in its settings) once none is left; down, every bucket back into its
-- queue's one set, and the indexes and the mark dropped.
-- O.what 'k' moves each channel's waiting messages from an earlier version's per-message
-- index (`ch:<ch>`) into this version's counts per second (includes/channels.lua), about O.n
-- a call, and marks the team done (`chb` in its settings, which gives a team an earlier
-- version made a settings generation: keys.lua) once none is left; down, the 'm'
-- pass indexes every waiting message one by one again and 'k' then drops the counts.
-- Both layouts are valid meanwhile, so it runs
-- on a live team; each call looks at one SCAN step (about O.n keys of the team), so Redis is
-- never blocked for long; the caller repeats with the returned cursor until it is "0".
-- A conversation that keeps its messages in both places is left to repair.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cursor, n, down?, what? ('c' conversations, default; 'm' messages: down
--         only; 'u' customers; 'k' channels; 'q' queues)}
-- Returns: msgpack {cursor (0: done unless again), moved (conversations, customers or waiting
--          messages changed by this call), again (a queue only partly moved: call again with
--          the same cursor)}
-- Fails: not_found
-- Events: none
--@include keys
--@include scan
--@include channels
--@include groupnames
--@include queue
if redis.call('EXISTS', K.cfg) == 0 then fail('not_found', 'team', 'unknown team ' .. TEAM) end
local moved = 0
local again = false  -- a queue half moved: the same SCAN step again ('q')

-- The names of the current settings' groups, for a team an earlier version made (its waiting
-- conversations keep theirs in their records until then: groupnames.lua).
local function names_missing()
  local v = redis.call('HMGET', K.cfg, 'ver', 'ng')
  if redis.call('HEXISTS', K.cfg, 'gn:' .. v[1] .. ':' .. v[2]) == 1 then return {} end
  return group_names_fields(tonumber(v[1]), cmsgpack.unpack(redis.call('HGET', K.cfg, 'groups')))
end
local res
if O.what == 'u' then
  -- a customer's conversations: sets into hashes (up) or back (down); a customer found in
  -- both layouts (an earlier and this version ran side by side) gets the union
  local from = O.down and 'cc:' or 'cuv:'
  res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. from .. '*', 'COUNT', O.n)
  local plen = #(P .. from)
  for _, k in ipairs(res[2]) do
    local cust = string.sub(k, plen + 1)
    if O.down then
      local convs = redis.call('HKEYS', k)
      for i = 1, #convs, 500 do
        redis.call('SADD', K.custconvs_set(cust), unpack(convs, i, math.min(i + 499, #convs)))
      end
    else
      local convs = redis.call('SMEMBERS', k)
      for i = 1, #convs, 500 do
        local pairs_ = {}
        for j = i, math.min(i + 499, #convs) do
          pairs_[#pairs_ + 1] = convs[j]
          pairs_[#pairs_ + 1] = ''
        end
        redis.call('HSET', K.custconvs(cust), unpack(pairs_))
      end
    end
    redis.call('DEL', k)
    moved = moved + 1
  end
elseif O.what == 'q' then
  local cfg = load_cfg()
  local budget = tonumber(O.n)
  if O.down then  -- every bucket back into its queue's one set (the bucket '')
    res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. 'qx:*', 'COUNT', O.n)
    for _, qx in ipairs(res[2]) do
      local qk = P .. 'q:' .. string.sub(qx, #(P .. 'qx:') + 1)
      local _, qbp = Q.keys(qk)
      for _, b in ipairs(redis.call('ZRANGE', qx, 0, -1)) do
        if budget <= 0 then break end
        if b ~= '' then
          local r = redis.call('ZRANGE', qbp .. b, 0, -1, 'WITHSCORES')
          for i = 1, #r, 2 do redis.call('ZADD', qk, r[i + 1], r[i]) end
          moved = moved + #r / 2
          budget = budget - #r / 2
          redis.call('DEL', qbp .. b)
        end
        redis.call('ZREM', qx, b)
      end
      if redis.call('EXISTS', qx) == 1 then res[1] = O.cursor; again = true; break end  -- the rest next call
    end
    if res[1] == '0' and not again and cfg.bq then cfg_delete('bq') end
  else  -- each whole set into buckets, from its end (the set is the bucket '' meanwhile)
    res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. 'q:*', 'COUNT', O.n)
    for _, qk in ipairs(res[2]) do
      local qx, qbp = Q.keys(qk)
      if redis.call('ZCARD', qx) == 0 then Q.legacy_indexed({}, qk, qx) end
      while budget > 0 and redis.call('EXISTS', qk) == 1 do
        local r = redis.call('ZRANGE', qk, -Q.MAX, -1, 'WITHSCORES')
        local b = Q.new_bucket(qx, r[2])
        local args = {}
        for i = 1, #r, 2 do args[#args + 1] = r[i + 1]; args[#args + 1] = r[i] end
        redis.call('ZADD', qbp .. b, unpack(args))
        redis.call('ZREMRANGEBYRANK', qk, -Q.MAX, -1)
        moved = moved + #r / 2
        budget = budget - #r / 2
      end
      if redis.call('EXISTS', qk) == 1 then res[1] = O.cursor; again = true; break end  -- the rest next call
      redis.call('ZREM', qx, '')
    end
    if res[1] == '0' and not again and not cfg.bq then cfg_write('bq', '1') end
  end
elseif O.what == 'k' then
  local chans = redis.call('SMEMBERS', K.channels)
  if O.down then  -- the 'm' pass indexed every waiting message one by one: drop the counts
    for _, ch in ipairs(chans) do redis.call('DEL', K.cn(ch), K.cb(ch)) end
    cfg_delete('chb')
    res = {'0'}
  else
    local budget = tonumber(O.n)
    for _, ch in ipairs(chans) do
      while budget > 0 do
        local popped = redis.call('ZPOPMIN', K.ch(ch), math.min(budget, 500))
        if #popped == 0 then break end
        for i = 1, #popped, 2 do chan_in(ch, tonumber(popped[i + 1])) end
        moved = moved + #popped / 2
        budget = budget - #popped / 2
      end
      if budget <= 0 then break end
    end
    if budget > 0 then
      cfg_write('chb', '1', unpack(names_missing()))
      res = {'0'}
    else
      res = {'1'}
    end
  end
elseif O.down and O.what == 'm' then
  res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. 'm:*', 'COUNT', O.n)
  for _, k in ipairs(res[2]) do
    for _, f in ipairs({'adv', 'via', 'pt', 'g', 'why', 'lang'}) do redis.call('HSETNX', k, f, '') end
    for f, empty in pairs({rq = '0', re = '0', mt = EMPTY_LIST, at = EMPTY_MAP}) do
      redis.call('HSETNX', k, f, empty)
    end
    local v = redis.call('HMGET', k, 'st', 'ch', 'ts', 'sum', 'ord', 'cust', 'conv')
    if not v[6] and v[7] then  -- its customer, its conversation's (views.lua)
      local cust = redis.call('HGET', K.conv(v[7]), 'cust')
      if cust then redis.call('HSET', k, 'cust', cust) end
    end
    if not v[3] and v[5] then  -- the arrival as an earlier version wrote it
      v[3] = string.format('%d', arrival_ms(nil, v[5]))
      redis.call('HSET', k, 'ts', v[3])
    end
    if v[4] and #v[4] == 12 then  -- the checksum as an earlier version wrote it: hex digits
      redis.call('HSET', k, 'sum', hex(v[4]))
    end
    if v[1] == 'w' and v[2] and redis.call('ZADD', K.ch(v[2]), v[3], string.sub(k, #(P .. 'm:') + 1)) == 1 then
      moved = moved + 1  -- indexed one by one again, where an earlier version counts it
    end
  end
elseif O.down then
  res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. 'c:*', 'COUNT', O.n)
  local plen = #(P .. 'c:')
  local names = {}  -- the groups' names this call read (groupnames.lua)
  for _, k in ipairs(res[2]) do
    local c = redis.call('HMGET', k, 'w', 'so', 'h')
    local conv = string.sub(k, plen + 1)
    local list = K.cw(conv)
    local changed = false
    if c[1] and c[1] ~= '' and redis.call('EXISTS', list) == 0 then
      redis.call('RPUSH', list, c[1])
      redis.call('HDEL', k, 'w')
      changed = true
    end
    if c[3] then  -- the message in hands back in the set, where an earlier version looks
      if c[3] ~= '' then redis.call('SADD', K.held(conv), c[3]) end
      redis.call('HDEL', k, 'h')
      changed = changed or c[3] ~= ''
    end
    if changed then moved = moved + 1 end
    if c[2] then
      redis.call('HSETNX', k, 'fw', c[2])
      redis.call('HSETNX', k, 'lw', c[2])
    end
    local q = redis.call('HGET', k, 'q')
    if q and q ~= '' then  -- the group index, and the whole queue key an earlier version reads
      redis.call('HSETNX', k, 'gi', queue_group(q))
      if q_key(q) ~= q then redis.call('HSET', k, 'q', q_key(q)) end
      local gw = redis.call('HMGET', k, 'g', 'why')  -- its group's name and why (groupnames.lua)
      if not gw[1] or not gw[2] then
        local g, why = conv_group(names, q, gw[1], gw[2])
        redis.call('HSET', k, 'g', g, 'why', why)
      end
    end
    redis.call('HSETNX', k, 'owner', '')
    redis.call('HSETNX', k, 'held', 0)
    redis.call('HSETNX', k, 'rsk', '')
  end
else
  res = redis.call('SCAN', O.cursor, 'MATCH', pglob() .. 'cw:*', 'COUNT', O.n)
  local plen = #(P .. 'cw:')
  for _, k in ipairs(res[2]) do
    local ck = K.conv(string.sub(k, plen + 1))
    local w = redis.call('HGET', ck, 'w')
    if redis.call('LLEN', k) == 1 and (not w or w == '') and redis.call('EXISTS', ck) == 1 then
      redis.call('HSET', ck, 'w', redis.call('LINDEX', k, 0))
      redis.call('DEL', k)
      moved = moved + 1
    end
  end
end
return reply({cursor = res[1], moved = moved, again = again})
