-- customer_tags: a customer's tags changed upstream; their waiting conversations move to the
-- priority group they now match, a page of about n a call (a customer's conversations are
-- unbounded: 100,000 in one call held Redis 4 s): the caller repeats with the returned cursor
-- until it is '0'. Meanwhile a press may still find one not yet re-placed where it waited.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {cust, tags (msgpack list), n, cursor? (a continuation: the tags are stored),
--         now?}
-- Returns: msgpack {status = 'ok' | 'noop' (same tags), moved (waiting conversations
--          re-placed), cursor ('0': done; else call again with it)}
-- Fails: not_found
-- Events: customer_tags
--@include keys
--@include events
--@include stock
--@include customers
local cfg = load_cfg()
local now = now_ms()
local ck = K.cust(O.cust)
if not O.cursor then  -- the first call: the tags change (a continuation finds them stored)
  if redis.call('HGET', ck, 'tags') == O.tags then return reply({status = 'noop', moved = 0}) end
  redis.call('HSET', ck, 'tags', O.tags)
  event(cfg, 'customer_tags', now, 'cust', O.cust)
end
local moved = 0
local convs, cursor = customer_convs_page(O.cust, O.cursor or '0', O.n)
for _, conv in ipairs(convs) do
  if replace_waiting(cfg, conv) then moved = moved + 1 end
end
return reply({status = 'ok', moved = moved, cursor = cursor})
