-- waiting.lua: a conversation's waiting messages, in arrival order. Most conversations have
-- one message: its id is kept in the conversation's own record (field `w`), which saves a key
-- (~200 bytes) and two commands per press; a conversation with more keeps them in the list
-- `cw:<conv>` and `w` is empty. Never both (check reports it). A list of one is valid too: a
-- deployment upgraded from the list-only layout reads as before (`pushinbox migrate` folds
-- those lists into their records, and back with --down).
-- Every reader and writer of the waiting messages goes through here.
--@include keys

-- `w`: the conversation's `w` field when the caller read it with the rest of its record
-- (nil: read it here; false, '' or an id as HMGET returns them).
local function waiting_w(conv, w)
  if w == nil then w = redis.call('HGET', K.conv(conv), 'w') end
  if w and w ~= '' then return w end
  return nil
end

-- The ids, oldest first.
local function waiting_ids(conv, w)
  local one = waiting_w(conv, w)
  if one then return {one} end
  return redis.call('LRANGE', K.cw(conv), 0, -1)
end

-- The first `n` ids (n >= 1).
local function waiting_head(conv, n, w)
  local one = waiting_w(conv, w)
  if one then return {one} end
  return redis.call('LRANGE', K.cw(conv), 0, n - 1)
end

-- How many.
local function waiting_count(conv, w)
  if waiting_w(conv, w) then return 1 end
  return redis.call('LLEN', K.cw(conv))
end

-- Append `id` (the newest). Returns the fields the caller writes into the conversation's
-- record in its own HSET (none: {}), so an arrival costs what it did with the list alone.
local function waiting_push(conv, id, w)
  local one = waiting_w(conv, w)
  if one then
    redis.call('RPUSH', K.cw(conv), one, id)
    return {'w', ''}
  end
  if redis.call('RPUSHX', K.cw(conv), id) == 0 then return {'w', id} end
  return {}
end

-- Replace them all with `ids` (oldest first), writing the record's `w` here.
local function waiting_set(conv, ids)
  local key = K.cw(conv)
  redis.call('DEL', key)
  if #ids == 1 then
    redis.call('HSET', K.conv(conv), 'w', ids[1])
    return
  end
  redis.call('HSET', K.conv(conv), 'w', '')
  for k = 1, #ids, 500 do redis.call('RPUSH', key, unpack(ids, k, math.min(k + 499, #ids))) end
end

-- Forget them all (they were handed over). `listed`: whether they were in the list (false:
-- the record's `w`, which the caller clears in its own HSET).
local function waiting_clear(conv, listed)
  if listed then redis.call('DEL', K.cw(conv)) end
end

-- Remove one id wherever it is. Returns whether it was there.
local function waiting_remove(conv, id)
  local ck = K.conv(conv)
  if redis.call('HGET', ck, 'w') == id then
    redis.call('HSET', ck, 'w', '')
    return true
  end
  return redis.call('LREM', K.cw(conv), 0, id) > 0
end
