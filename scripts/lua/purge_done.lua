-- purge_done: forget up to n done messages older than `cutoff` (the retention period), and
-- what nothing references any more: a conversation whose last message went (its hash, its
-- place among the customer's conversations) and a customer with no conversation left (tags included).
-- Records the newest purged moment (cfg `pw`): check and repair never lower a day's figures
-- from done messages the purge removed; and takes them and their bodies' bytes off what the
-- team stores (cfg `nm`, `nb`: the bounds ingest keeps).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cutoff, n}
-- Returns: msgpack {purged}
-- Fails: not_found
-- Events: none
-- Flags: allow-oom
--@include keys
--@include waiting
--@include customers
load_cfg()
local rows = redis.call('ZRANGEBYSCORE', K.done, '-inf', O.cutoff, 'WITHSCORES', 'LIMIT', 0, O.n)
local newest = nil
local gone, bytes = 0, 0
for i = 1, #rows, 2 do
  local id = rows[i]
  newest = rows[i + 1]
  local v = redis.call('HMGET', K.msg(id), 'conv', 'cust')
  bytes = bytes + redis.call('HSTRLEN', K.msg(id), 'body')
  gone = gone + redis.call('DEL', K.msg(id))
  redis.call('ZREM', K.done, id)
  local conv, cust = v[1], v[2]
  if conv then
    local ck = K.conv(conv)
    local c = redis.call('HMGET', ck, 'n', 'held', 'q', 'w', 'cust')
    cust = cust or c[5]  -- a message's customer is its conversation's (views.lua)
    -- `n` counts the conversation's messages (conversations from before it was kept have
    -- none, and stay)
    if c[1] and redis.call('HINCRBY', ck, 'n', -1) <= 0 and (tonumber(c[2]) or 0) == 0
        and (c[3] or '') == '' and waiting_count(conv, c[4]) == 0 then
      redis.call('DEL', ck)
      if cust then
        if customer_drop_conv(cust, conv) then redis.call('DEL', K.cust(cust)) end
      end
    end
  end
end
if newest then
  local book = redis.call('HMGET', K.cfg, 'pw', 'nm')
  if tonumber(newest) > (tonumber(book[1] or '0') or 0) then cfg_note('pw', newest) end
  if book[2] and gone > 0 then  -- (a team counting what it stores)
    cfg_count('nm', -gone)
    cfg_count('nb', -bytes)
  end
end
return reply({purged = #rows / 2})
