-- reply: the advisor answered a message in their hands; it is done and counts as a response.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?}
--@include core
--@include actions
return finish('replied', 'r', 'replied')
