-- customer_tags: a customer's tags changed upstream; their waiting conversations move to the
-- priority group they now match.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cust, tags (msgpack list), now?}
-- Returns: msgpack {status = 'ok' | 'noop' (same tags), moved (waiting conversations re-placed)}
-- Fails: not_found
-- Events: customer_tags
--@include keys
--@include events
--@include stock
--@include customers
local cfg = load_cfg()
local now = now_ms()
local ck = K.cust(O.cust)
if redis.call('HGET', ck, 'tags') == O.tags then return reply({status = 'noop', moved = 0}) end
redis.call('HSET', ck, 'tags', O.tags)
local moved = 0
for _, conv in ipairs(customer_convs(O.cust)) do
  if replace_waiting(cfg, conv) then moved = moved + 1 end
end
event(cfg, 'customer_tags', now, 'cust', O.cust)
return reply({status = 'ok', moved = moved})
