-- customers.lua: a customer's conversations, found when the customer's tags change (to re-place
-- those waiting) and when one is purged (the customer's record goes with their last).
-- Kept as a hash `cc:<cust>` (conversation -> ''): a small hash is one listpack, ~120 bytes a
-- customer on Redis 6.2 and 7.0, where a set of strings is a hash table (~225). A deployment
-- upgraded from the set layout (`cuv:<cust>`, an earlier version's) is read as it is;
-- `pushinbox migrate` turns those sets into hashes, and back with --down.
--@include keys

local function customer_add_conv(cust, conv)
  redis.call('HSET', K.custconvs(cust), conv, '')
end

-- A page of the customer's conversations from `cursor` ('0': the first), about `n` of them:
-- HSCAN of the hash (a small one, a listpack, comes whole in one page), then the earlier
-- layout's set, whole (cursor 's'). Returns the page and the next cursor, '0' when done. A
-- conversation may come twice; one made meanwhile may not come (it was placed knowing the
-- customer's tags). A customer's conversations are unbounded (one a message): whoever walks
-- them does it a page a call, so no call holds Redis for all of them.
local function customer_convs_page(cust, cursor, n)
  if cursor == 's' then return redis.call('SMEMBERS', K.custconvs_set(cust)), '0' end
  local r = redis.call('HSCAN', K.custconvs(cust), cursor, 'COUNT', n)
  local out = {}
  for i = 1, #r[2], 2 do out[#out + 1] = r[2][i] end
  if r[1] ~= '0' then return out, r[1] end
  if redis.call('EXISTS', K.custconvs_set(cust)) == 1 then return out, 's' end
  return out, '0'
end

-- Forget one; returns whether the customer has none left.
local function customer_drop_conv(cust, conv)
  local hk, sk = K.custconvs(cust), K.custconvs_set(cust)
  redis.call('HDEL', hk, conv)
  redis.call('SREM', sk, conv)
  return redis.call('EXISTS', hk, sk) == 0
end
