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

-- Every conversation of the customer (either layout).
local function customer_convs(cust)
  local out = redis.call('HKEYS', K.custconvs(cust))
  for _, conv in ipairs(redis.call('SMEMBERS', K.custconvs_set(cust))) do out[#out + 1] = conv end
  return out
end

-- Forget one; returns whether the customer has none left.
local function customer_drop_conv(cust, conv)
  local hk, sk = K.custconvs(cust), K.custconvs_set(cust)
  redis.call('HDEL', hk, conv)
  redis.call('SREM', sk, conv)
  return redis.call('EXISTS', hk, sk) == 0
end
