-- reply: the advisor answered a message in their hands; it is done and counts as a response.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?}
-- Returns: msgpack {status = 'ok' | 'noop' (replied already)}
-- Fails: conflict, not_found, not_yours
-- Events: replied
--@include actions
return finish('replied', 'r')
