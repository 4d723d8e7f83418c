-- preview: the first n conversations of the ordered list with their waiting messages and
-- group: exactly what the next n presses would get (read-only, one consistent snapshot).
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {n}
--@include core
local cfg = load_cfg()
local n = tonumber(O.n)
local out = {}
for _, qk in ipairs(queue_keys(cfg)) do
  if #out >= n then break end
  for _, conv in ipairs(redis.call('ZRANGE', qk, 0, n - #out - 1)) do
    local c = redis.call('HMGET', K.conv(conv), 'g', 'why')
    local ids = redis.call('LRANGE', K.cw(conv), 0, -1)
    local msgs = views(ids)
    for _, m in ipairs(msgs) do m.group = c[1]; m.why = c[2] end
    out[#out + 1] = {conversation = conv, group = c[1], why = c[2], messages = msgs}
  end
end
return reply(out)
