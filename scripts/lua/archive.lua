-- archive: the advisor closed a message without a response; archiving twice is a no-op.
-- KEYS[1] team cfg hash
-- ARGV[1] team key prefix
-- ARGV[2] msgpack {adv, msg, now?}
--@include core
--@include actions
return finish('archived', 'x', 'archived')
