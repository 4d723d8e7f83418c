-- channels.lua: each channel's waiting stock, its count and its oldest message's age (what
-- every advisor's screen and /metrics show), counted per second of arrival rather than
-- indexed per message: `cn:<ch>` (hash) holds how many waiting messages arrived in each
-- second (field: the second, unix time) and in all (field `n`); `cb:<ch>` (sorted set) holds
-- the seconds that have any, each scored by the arrival (ms) of the message that opened it,
-- so its first entry is the oldest waiting message's arrival to within that second. A busy
-- channel's index costs a few entries a second instead of a sorted-set entry per waiting
-- message (~105 bytes each at 1M waiting; docs/performance.md). A message's second comes
-- from its record's `ts`, which never changes while it waits (a requeue keeps it).
-- An earlier version indexed every waiting message in the sorted set `ch:<ch>`; a team not
-- migrated since (no `chb` in its settings) may still have some there: each leaves it as it
-- leaves the stock, `pushinbox migrate` moves the rest (and back with --down), and the
-- readers add both. Every writer of the index is here (and check's and repair's reads).
--@include keys

-- (the last one kept: a batch's arrivals share their second)
local chan_second
do
  local last_ts, last_s = nil, nil
  chan_second = function(ts)
    if ts ~= last_ts then
      last_ts, last_s = ts, string.format('%d', math.floor(tonumber(ts) / 1000))
    end
    return last_s
  end
end

-- A batch (ingest) keeps its changes to the counts in Lua and writes each channel's and
-- second's once, at its end (`chan_flush`): a hundred arrivals on four channels in one second
-- cost eight commands instead of two hundred. Tied to the call (CALL): a call that failed
-- before its flush leaves nothing for the next one.
local BATCH, BATCH_CALL = nil, nil
local function chan_batch() BATCH, BATCH_CALL = {}, CALL end
local function batched(ch)
  if not BATCH or BATCH_CALL ~= CALL then return nil end
  local c = BATCH[ch]
  if not c then c = {n = 0, s = {}}; BATCH[ch] = c end
  return c
end

-- The channel's count in all changes by `delta`; a channel with nothing waiting leaves the
-- team's index of channels (with delta 0: only looked at, after messages left an earlier
-- version's index).
local function chan_total(cfg, ch, delta)
  local k = K.cn(ch)
  local left
  if delta ~= 0 then left = redis.call('HINCRBY', k, 'n', int(delta))
  else left = tonumber(redis.call('HGET', k, 'n') or '0') end
  if left > 0 then return end
  if delta ~= 0 then redis.call('DEL', k, K.cb(ch)) end
  if cfg.chb or redis.call('EXISTS', K.ch(ch)) == 0 then redis.call('SREM', K.channels, ch) end
end

-- A message of channel `ch` that arrived at `ts` (ms) starts waiting. Two commands (three
-- when it opens its second); none until the flush in a batch.
local function chan_in(ch, ts)
  local s = chan_second(ts)
  local c = batched(ch)
  if c then
    local e = c.s[s]
    if not e then c.s[s] = {d = 1, first = tonumber(ts)}
    else
      e.d = e.d + 1
      if not e.first or tonumber(ts) < e.first then e.first = tonumber(ts) end
    end
    c.n = c.n + 1
    return
  end
  local k = K.cn(ch)
  if redis.call('HINCRBY', k, s, '1') == 1 then redis.call('ZADD', K.cb(ch), ms(ts), s) end
  redis.call('HINCRBY', k, 'n', '1')
end

-- The waiting message `id` of channel `ch` that arrived at `ts` leaves the stock: one command
-- (three when it was the last of its second). `cfg`: the team's settings (whether an earlier
-- version's index may still hold it). Returns 1 when it was counted here (for chan_left),
-- 0 when it left the earlier index.
local function chan_out(cfg, ch, ts, id)
  if not cfg.chb and redis.call('ZREM', K.ch(ch), id) == 1 then return 0 end
  local s = chan_second(ts)
  local c = batched(ch)
  if c then
    local e = c.s[s]
    if not e then c.s[s] = {d = -1} else e.d = e.d - 1 end
    return 1
  end
  local k = K.cn(ch)
  if redis.call('HINCRBY', k, s, '-1') <= 0 then
    redis.call('HDEL', k, s)
    redis.call('ZREM', K.cb(ch), s)
  end
  return 1
end

-- After messages of `ch` left (chan_out returned `n` in all): the channel's count, once per
-- channel; a channel with nothing waiting leaves the team's index of channels.
local function chan_left(cfg, ch, n)
  local c = batched(ch)
  if c then
    c.n = c.n - n
    c.looked = true
    return
  end
  chan_total(cfg, ch, -n)
end

-- The end of a batch: each second's and channel's count written once.
local function chan_flush(cfg)
  if not BATCH or BATCH_CALL ~= CALL then return end
  local b = BATCH
  BATCH = nil
  for ch, c in pairs(b) do
    local k = K.cn(ch)
    for s, e in pairs(c.s) do
      if e.d ~= 0 then
        local now = redis.call('HINCRBY', k, s, int(e.d))
        if now <= 0 then
          redis.call('HDEL', k, s)
          redis.call('ZREM', K.cb(ch), s)
        elseif now == e.d and e.first then  -- the second is new: its first arrival orders it
          redis.call('ZADD', K.cb(ch), ms(e.first), s)
        end
      end
    end
    if c.n ~= 0 or c.looked then chan_total(cfg, ch, c.n) end
  end
end
