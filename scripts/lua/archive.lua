-- archive: the advisor closed a message without a response; archiving twice is a no-op.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?}
-- Returns: msgpack {status = 'ok' | 'noop' (archived already)}
-- Fails: conflict, not_found, not_yours
-- Events: archived
--@include actions
return finish('archived', 'x')
