-- queue.lua: a group's queue of waiting conversations, ordered by score (the team's order),
-- kept in small sorted sets ("buckets" of at most Q.MAX conversations: one listpack each, ~20
-- bytes an entry where one large sorted set costs ~100) under an index `qx:<ver>:<i>` of each
-- bucket's lower bound. Bucket b holds the conversations scored from its bound up to the
-- next bucket's, so a conversation is found from its score (conv_score: the order of its
-- queue's settings version over its record's so, fw, lw). The code names a queue by its key
-- `q:<ver>:<i>[~skill]` (K.q, K.qs): what an earlier version kept whole as one sorted set,
-- and what this one keeps as the bucket named '' while `migrate` moves it into buckets (the
-- team's `bq` setting once none is left; a team this version made has it from the start).
-- A bucket emptied leaves the index then (a pop's, or a conversation taken out: Q.rem); one
-- an earlier version left there empty is skipped by readers and dropped by the next pop.
-- Cost: a pop is 2 commands (the index's head, its bucket's); an arrival 3 (the last bucket,
-- its size, the add), and the next ones of a batch in the same queue one ZADD a bucket
-- together at the batch's end (Q.batch), 4 where it is not the newest (the bucket by its
-- score), plus a split once in ~64 of those; a removal 3 (the bucket by its score, the
-- ZREM, whether it emptied the bucket).
--@include keys

-- Redis keeps a sorted set of up to 128 entries (zset-max-listpack-entries) as one listpack.
local Q = {}  -- the queue helpers: one local (a script's main function has at most 200)
Q.MAX = 128

-- The index's key and the prefix of its buckets' keys, per queue key, kept while the team is
-- the same (a press names each group's).
Q.names, Q.names_p = {}, nil
function Q.keys(qk)
  if Q.pend_call == CALL then Q.flush() end  -- every other look at a queue comes here first
  if P ~= Q.names_p then Q.names, Q.names_p = {}, P end
  local k = Q.names[qk]
  if not k then
    local s = string.sub(qk, #P + 3)
    k = {P .. 'qx:' .. s, P .. 'qb:' .. s .. ':'}
    Q.names[qk] = k
  end
  return k[1], k[2]
end
function Q.bucket_key(qk, qbp, b)
  if b == '' then return qk end
  return qbp .. b
end

function Q.score(order, so, fw, lw)
  if order == 'newest_conversation' then return -so end
  if order == 'oldest_message' then return fw end
  if order == 'newest_message' then return -lw end
  return so
end

-- The order of settings version `ver`: the current one's, or an older one's as groups_set
-- kept it (nil for one an earlier version replaced: its queue is one set, found without).
function Q.version_order(cfg, ver)
  if ver == cfg.ver then return cfg.order end
  for _, o in ipairs(cfg.old) do if o[1] == ver then return o[4] end end
  return nil
end

-- The score a waiting conversation has in the queue its record names (`q`), from the
-- record's so, fw and lw (fw and lw left out while they are so); nil when unknown.
function Q.conv_score(cfg, q, so, fw, lw)
  local ver = queue_place(q)
  local order = ver and Q.version_order(cfg, ver)
  so = tonumber(so)
  if not order or not so then return nil end
  return Q.score(order, so, tonumber(fw) or so, tonumber(lw) or so)
end

-- A team an earlier version made may keep a queue as one sorted set not yet in an index:
-- the index then gets it as the bucket '' (from its first score).
function Q.legacy_indexed(cfg, qk, qx)
  if cfg.bq or redis.call('EXISTS', qk) == 0 then return false end
  local first = redis.call('ZRANGE', qk, 0, 0, 'WITHSCORES')
  redis.call('ZADD', qx, 'NX', first[2], '')
  return true
end

-- The bucket holding score s: the last whose bound is at most s, else the first (s below
-- every bound: `below`). nil when the queue has none.
function Q.bucket_of(qx, s)
  local b = redis.call('ZREVRANGEBYSCORE', qx, s, '-inf', 'LIMIT', 0, 1)[1]
  if b then return b, false end
  return redis.call('ZRANGE', qx, 0, 0)[1], true
end

-- A new bucket from score `bound` (a number, or a score as Redis wrote it); named by it
-- (scores are unique in a team: an arrival order; a bucket whose bound was lowered may
-- still carry the name, then another is found).
function Q.new_bucket(qx, bound)
  local b = type(bound) == 'string' and bound or int(bound)
  while redis.call('ZSCORE', qx, b) do b = b .. '+' end
  redis.call('ZADD', qx, bound, b)
  return b
end

-- Room for score s in full bucket b: a new bucket from s where s comes after all of it (the
-- common case: an arrival is the newest) or before the first bucket, else b split in two at
-- its middle score. Returns the bucket s goes in. The bucket '' (an earlier version's whole
-- set) is never split: migrate moves it.
function Q.make_room(qx, qbp, b, bk, s, below)
  if below then return Q.new_bucket(qx, s) end
  local last = redis.call('ZRANGE', bk, -1, -1, 'WITHSCORES')
  if tonumber(s) > tonumber(last[2]) then return Q.new_bucket(qx, s) end
  if b == '' then return b end
  local mid = redis.call('ZRANGE', bk, Q.MAX / 2, Q.MAX / 2, 'WITHSCORES')[2]
  local upper = redis.call('ZRANGEBYSCORE', bk, mid, '+inf', 'WITHSCORES')
  local nb = Q.new_bucket(qx, mid)
  local args = {}
  for i = 1, #upper, 2 do
    args[#args + 1] = upper[i + 1]
    args[#args + 1] = upper[i]
  end
  redis.call('ZADD', qbp .. nb, unpack(args))
  redis.call('ZREMRANGEBYSCORE', bk, mid, '+inf')
  if tonumber(s) >= tonumber(mid) then return nb end
  return b
end

-- Add `member` with score s (a number, or its digits formatted once by the caller).
-- An arrival is most often the newest of its queue (the oldest-first orders): it goes into
-- the last bucket, found from the index's end, and a call remembers that bucket per queue
-- ({key, bound, size}) so the rest of a batch's arrivals there are one ZADD each. Any other
-- change of the queue in the call forgets it (a new bucket may follow it, or a pop drop it).
Q.tail, Q.tail_call = {}, nil
function Q.forget(qk)
  if Q.tail_call == CALL then Q.tail[qk] = nil end  -- (another call's is never read)
end

-- A batch (ingest: Q.batch() before its arrivals, Q.flush() after them) writes those that go
-- into a last bucket remembered above with one ZADD per bucket at the flush, rather than one
-- each; any other look at a queue in the call (Q.keys) flushes them first, so every reader,
-- the batch's own included, sees them where they belong.
Q.pend, Q.pend_call = {}, nil
function Q.batch() Q.pend, Q.pend_call = {}, CALL end
function Q.flush()
  if Q.pend_call ~= CALL then return end
  local pend = Q.pend
  Q.pend = {}
  for bk, args in pairs(pend) do redis.call('ZADD', bk, unpack(args)) end
end

function Q.add(cfg, qk, s, member)
  if Q.tail_call ~= CALL then Q.tail, Q.tail_call = {}, CALL end
  local sn = tonumber(s)
  local t = Q.tail[qk]
  if t and sn >= t[2] and t[3] < Q.MAX then
    if Q.pend_call == CALL then
      local args = Q.pend[t[1]]
      if not args then args = {}; Q.pend[t[1]] = args end
      args[#args + 1] = s
      args[#args + 1] = member
    else
      redis.call('ZADD', t[1], s, member)
    end
    t[3] = t[3] + 1
    return
  end
  Q.tail[qk] = nil
  local qx, qbp = Q.keys(qk)
  local b, below = nil, false
  if string.sub(cfg.order, 1, 6) ~= 'newest' then
    local last = redis.call('ZRANGE', qx, -1, -1, 'WITHSCORES')
    if last[1] and sn >= tonumber(last[2]) then
      local bk = Q.bucket_key(qk, qbp, last[1])
      local n = redis.call('ZCARD', bk)
      if n < Q.MAX then
        redis.call('ZADD', bk, s, member)
        Q.tail[qk] = {bk, tonumber(last[2]), n + 1}
        return
      end
      b = last[1]
    end
  end
  if not b then b, below = Q.bucket_of(qx, s) end
  if not b and Q.legacy_indexed(cfg, qk, qx) then b, below = Q.bucket_of(qx, s) end
  if not b then
    b = Q.new_bucket(qx, s)
  else
    local bk = Q.bucket_key(qk, qbp, b)
    if redis.call('ZCARD', bk) >= Q.MAX then
      b = Q.make_room(qx, qbp, b, bk, s, below)
    elseif below then
      redis.call('ZADD', qx, s, b)  -- the first bucket now starts at s
    end
  end
  redis.call('ZADD', Q.bucket_key(qk, qbp, b), s, member)
end

-- Take `member` out of bucket b (key bk); a bucket it empties leaves the index (Redis drops
-- the emptied set itself), as a pop's does: otherwise every reader of the queue's front (a
-- re-bucketing's batches, a slot's head) would read past each bucket emptied before it.
function Q.rem_from(qx, b, bk, member)
  if redis.call('ZREM', bk, member) == 0 then return false end
  if b and redis.call('EXISTS', bk) == 0 then redis.call('ZREM', qx, b) end
  return true
end

-- Take `member` out (its score s from conv_score, or nil). Returns whether it was there.
function Q.rem(cfg, qk, s, member)
  Q.forget(qk)
  local qx, qbp = Q.keys(qk)
  if s then
    local b = Q.bucket_of(qx, s)
    if b and Q.rem_from(qx, b, Q.bucket_key(qk, qbp, b), member) then return true end
  end
  if not cfg.bq and redis.call('ZREM', qk, member) == 1 then return true end
  -- not where its score says: a queue of older settings an earlier version set (their order
  -- was not kept), or a record out of step with its queue (check reports it); bucket by
  -- bucket from the first (a re-bucketing takes the first)
  return Q.buckets(cfg, qk, function(bk, _, _, b) return Q.rem_from(qx, b, bk, member) end)
end

-- Take the first conversation out: it and its score, nil when the queue is empty.
function Q.pop(cfg, qk)
  Q.forget(qk)
  local qx, qbp = Q.keys(qk)
  while true do
    local b = redis.call('ZRANGE', qx, 0, 0)[1]
    if not b then
      if not Q.legacy_indexed(cfg, qk, qx) then return nil end
      b = ''
    end
    local top = redis.call('ZPOPMIN', Q.bucket_key(qk, qbp, b))
    if top[1] then return top[1], top[2] end
    redis.call('ZREM', qx, b)  -- emptied: the next bucket is the first
  end
end

-- Each bucket in order, from its bound: visit(bucket key, bound, next bound or nil, name)
-- until it answers true. A queue not yet in an index is its one set.
function Q.buckets(cfg, qk, visit)
  local qx, qbp = Q.keys(qk)
  local from = 0
  local seen = false
  while true do
    -- 16 buckets a read, and the 17th for the 16th's next bound
    local bs = redis.call('ZRANGE', qx, from, from + 16, 'WITHSCORES')
    if #bs == 0 then break end
    seen = true
    for i = 1, math.min(#bs, 32), 2 do
      if visit(Q.bucket_key(qk, qbp, bs[i]), tonumber(bs[i + 1]), tonumber(bs[i + 3]),
               bs[i]) then
        return true
      end
    end
    if #bs <= 32 then break end
    from = from + 16
  end
  if not seen and not cfg.bq and redis.call('EXISTS', qk) == 1 then return visit(qk, nil, nil) end
  return false
end

-- The first n conversations and their scores ({member, score} rows), in order.
function Q.range(cfg, qk, n)
  local out = {}
  if n <= 0 then return out end
  Q.buckets(cfg, qk, function(bk)
    local r = redis.call('ZRANGE', bk, 0, n - #out - 1, 'WITHSCORES')
    for i = 1, #r, 2 do out[#out + 1] = {r[i], tonumber(r[i + 1])} end
    return #out >= n
  end)
  return out
end

-- The first conversation and its score without taking it out; nil when empty.
function Q.head(cfg, qk)
  local r = Q.range(cfg, qk, 1)[1]
  if r then return r[1], r[2] end
  return nil
end

-- How many conversations wait in the queue (a ZCARD per bucket: for counts, not presses).
function Q.count(cfg, qk)
  local n = 0
  Q.buckets(cfg, qk, function(bk) n = n + redis.call('ZCARD', bk) end)
  return n
end

-- The same, exact up to 16 buckets, else their number times half a bucket (never 0 while a
-- bucket is listed: what the re-bucketing reports as left after each batch).
function Q.estimate(cfg, qk)
  local nb = redis.call('ZCARD', (Q.keys(qk)))
  if nb > 16 then return nb * Q.MAX / 2 end
  return Q.count(cfg, qk)
end

-- A slot: the queues a press takes from at one step of the ordered list (a group's queue and
-- its restricted queues, keys.lua's version_slots), merged by score (ties by id, as a sorted
-- set orders them).

-- The first `n` conversations of a slot.
function Q.slot_range(cfg, slot, n)
  local rows = {}
  for _, k in ipairs(slot) do
    for _, r in ipairs(Q.range(cfg, k, n)) do rows[#rows + 1] = r end
  end
  if #slot > 1 then
    table.sort(rows, function(x, y)
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[1] < y[1]
    end)
  end
  local out = {}
  for i = 1, math.min(n, #rows) do out[i] = rows[i][1] end
  return out
end

-- Take the first conversation of a slot out of its queue; nil when the slot is empty.
function Q.slot_pop(cfg, slot)
  if #slot == 1 then return (Q.pop(cfg, slot[1])) end
  local best, bs, bid = nil, nil, nil
  for _, k in ipairs(slot) do
    local id, sc = Q.head(cfg, k)
    if id and (not best or sc < bs or (sc == bs and id < bid)) then best, bs, bid = k, sc, id end
  end
  if not best then return nil end
  Q.rem(cfg, best, bs, bid)
  return bid
end
