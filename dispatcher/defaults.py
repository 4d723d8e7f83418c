"""Default values, each with the reason it has that value."""

from __future__ import annotations

#: Prefix of every key; the team hash tag follows so one team's keys share a cluster slot.
KEY_PREFIX = "pi"

#: The description says an advisor holds one pushed conversation until it is processed.
PUSH_CAPACITY = 1

#: An advisor silent this long (a closed laptop) is logged out and their messages requeued.
PRESENCE_TIMEOUT_S = 600

#: An advisor's presence (the `online` sorted set the reaper reads) is written at most this
#: often per advisor; calls within the step leave it as it is. Against a 600 s timeout a
#: second changes nothing, and a press and a reply each saved two commands (the write and its
#: mirror in the advisor's record): 45.5 -> 41.5 commands per assign+reply cycle with the
#: other cuts of issue 16 (docs/performance.md). A heartbeat always writes. scripts/lua/
#: includes/advisors.lua holds the same value (PRESENCE_STEP_MS), held equal by a test.
PRESENCE_STEP_S = 1.0

#: A message requeued this many times is a poison message: it goes to quarantine.
MAX_REQUEUES = 5

#: Done messages stay this long for statistics and audit, then the reconciler purges them.
DONE_RETENTION_S = 7 * 86400

#: Per-day statistics live this long: long enough for monthly break analytics.
DAY_STATS_TTL_S = 400 * 86400

#: Cap on the team event stream (approximate trim keeps XADD O(1)).
EVENT_STREAM_MAXLEN = 100_000

#: Messages moved per atomic batch by requeue and re-bucketing: each batch blocks Redis while
#: it runs, so presses wait behind it. Measured (bench/core.py churn case, 1M messages, 10
#: advisors pressing): 200 per batch kept presses at p99 11-12 ms, 50 at 2-3 ms for 20-25% less
#: throughput (26k messages/s requeued, 42k re-bucketed). Again on 2026-11-27 (a slower machine,
#: `core-20261127-130722.json`): 50 kept them at 8.6 ms during the requeue of 1M (9.3k
#: messages/s) and 7.8 ms during the re-bucketing of 1.2M (12k/s); 25 against 50 at 50k held
#: moved the p99 less than the machine's noise.
BATCH_SIZE = 50

#: Keys examined (SCAN COUNT) and unlinked per call when a team is deleted: UNLINK frees
#: memory in the background, so a call stays around a millisecond.
DELETE_BATCH = 1000

#: How often the worker's ticker runs the reaper and reconciler (seconds).
TICK_INTERVAL_S = 15
#: A worker that could not start because Redis was away tries again after 0.5 s, doubling up
#: to this: back within seconds of a restart, a few connection attempts a minute while down.
WORKER_RESTART_MAX_S = 8.0

#: Longest message body accepted at ingest (bytes); larger payloads belong in object storage.
MAX_BODY_BYTES = 64 * 1024

#: Limits on tag lists and attributes, so hostile input cannot bloat a script call.
MAX_TAGS = 64
MAX_TAG_LEN = 128
MAX_ATTRS = 32
MAX_ATTR_VALUE_LEN = 1024
#: Display names of teams and advisors.
MAX_NAME_LEN = 200
MAX_ID_LEN = 200

#: Distinct channels with waiting messages a team may have at once (a channel leaves the
#: index with its last waiting message): bounds GET …/stock, live updates and /metrics labels.
#: 20,000 channels made one stock read take 1.1-1.4 s; real teams have a handful.
MAX_CHANNELS = 1000

#: Messages not yet processed (waiting or in an advisor's hands) one conversation may hold: a
#: press, a requeue and a re-bucketing move a conversation whole, so this bounds their work
#: per call. A conversation of 20,000 waiting messages made one re-bucketing call block Redis
#: 350 ms; at 500, a press moving them all takes a few ms. No customer writes 500 times
#: before an answer; an upstream loop does.
MAX_CONVERSATION = 500

#: Skills (routing): most an advisor may carry and a group may require, and the longest
#: name. An advisor's skills are read on every press of a team whose groups require some:
#: the cap bounds that read, and 16 covers the languages and specialities of a care team.
MAX_SKILLS = 16
MAX_SKILL_LEN = 64
#: Skills with a restricted queue (triage rules that target a skill) per settings version:
#: each is a sorted set per group a press may look at; as many as there may be triage rules.
#: Past it a conversation waits unrestricted. The scripts hold the same number
#: (stock.lua MAX_RESTRICTED; a test keeps them equal).
MAX_RESTRICTED_SKILLS = 64

#: Report histograms (waiting time per group, handle time per advisor): bucket upper bounds
#: in seconds, the last bucket everything longer. Percentiles are read as the bound of the
#: bucket they fall in: fine where care teams set targets (30 s, 1, 5, 15 minutes, 1 hour),
#: and a report stays ~15 fields per group and per advisor whatever the volume. The scripts
#: hold the same list (includes/reports.lua BUCKETS; a test keeps them equal).
REPORT_BUCKETS_S = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)

#: Escalation by waiting time (`waiting_longer_than`): the longest threshold (30 days: done
#: messages are kept 7 days by default, nobody waits a month); how many due conversations a
#: press or a preview re-places before it looks (exact while fewer crossed since the last
#: move; each re-places a conversation, ~15 commands). Measured with 87k crossing at once and
#: 10 advisors pressing (`make bench-escalation`): 20 per press, press p99 7.1 ms; 10, 5.0 ms
#: (all re-placed in 2.7 s); 5, 3.5 ms; nothing due, 2.6 ms. And how often the worker's
#: escalator looks for due conversations (the supervisor's counts show a crossing within
#: about this long; presses never wait for it).
MAX_WAITING_LONGER_THAN_S = 30 * 86400
ESCALATE_ON_PRESS = 10
ESCALATE_INTERVAL_S = 1.0

#: Most priority groups and triage rules a team may have (each is evaluated per ingest).
MAX_GROUPS = 32
#: A queue's buckets counted one by one for the stock's figures (/metrics, the team view):
#: past this many (about 16,000-32,000 waiting conversations in one group) the rest are taken
#: as full as those, so one team's huge stock costs every scrape at most this many ZCARDs a
#: queue (scripts/lua/includes/queue.lua).
COUNTED_BUCKETS = 256
#: Longest name of a priority group: shown on every message pushed from it, kept in the
#: team's settings per version (groupnames.lua) and by the function library (short ones).
MAX_GROUP_NAME = 64
MAX_TRIAGE_RULES = 64

#: Caps inside one match: values in a list condition (channel_in, tags, languages,
#: attribute_in), attributes named by attribute_equals / attribute_in. Each ingest evaluates
#: every group, so the caps bound what one team's settings cost Redis per message.
MAX_MATCH_VALUES = 32
MAX_MATCH_ATTRS = 8

#: Packed size of all of a team's groups (or triage rules): every matching script decodes
#: them per call, so the size is the cost. 100,000-entry channel lists made each ingest cost
#: ~45 ms of Redis for every team; at this cap an ingest stays within ~2x of one group.
MAX_SETTINGS_BYTES = 32 * 1024

#: The RQ queue the dispatcher's jobs go to.
RQ_QUEUE = "pushinbox"

#: Default redis URL when the stack was started by ``pushinbox up`` with the embedded server.
LOCAL_REDIS_PORT = 6390

#: Order inside a priority group unless the team chooses another.
DEFAULT_ORDER = "oldest_conversation"
ORDERS = ("oldest_conversation", "newest_conversation", "oldest_message", "newest_message")

#: Most messages one ingest call may carry (HTTP: 413 beyond); one script call stores them all,
#: so the cap bounds how long Redis is busy with one batch. PUSHINBOX_MAX_BATCH overrides it.
INGEST_BATCH_MAX = 500

#: Largest batch body (bytes) read at all: refused by its Content-Length before reading, and
#: while reading when streamed. 500 messages of 16 KiB each fit; a batch is decoded (~20 ms
#: per MiB on the event loop) before its count is checked, so the cap bounds that stall.
INGEST_BATCH_MAX_BYTES = 8 * 1024 * 1024

#: Largest body of any other request (settings, notes, tags): 32 groups of capped lists fit.
MAX_REQUEST_BYTES = 256 * 1024

#: A checked token is trusted this long by a service process (revocation delay vs one Redis
#: read per request).
TOKEN_CACHE_S = 5.0

#: A request's head (request line and headers) must arrive within this long, and fit in this
#: many bytes (431 beyond): a client trickling headers holds a connection and a file
#: descriptor. 16 KiB is what h11 and most proxies allow; our own headers are well under 2 KiB.
HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 16 * 1024

#: Longest Authorization header looked at (a token is ~60 characters): anything longer is a
#: 401 without a digest, a Redis read or a cache entry.
MAX_AUTH_HEADER = 1024

#: Checked tokens a service process remembers (keyed by digest, never by the token): bounds
#: the memory an attacker can make it hold with distinct well-formed tokens (~2 MB).
TOKEN_CACHE_MAX = 10_000

#: An advisor's open live stream refreshes their presence this often (well inside the 600 s
#: presence timeout): the console open counts as being there.
STREAM_PRESENCE_S = 60.0

#: Messages one team may store (waiting, in an advisor's hands, done within retention): a batch
#: that would pass it is refused whole (429 `messages`), so one team's upstream cannot fill
#: the Redis every team shares (at its maxmemory every team's writes fail). Ten million is
#: ~4 GB with bodies of a few hundred bytes (docs/performance.md: ~390 bytes a waiting message
#: without its body); `pushinbox team set T --max-messages N` (0: none) changes one team's.
MAX_MESSAGES = 10_000_000

#: Bytes of message bodies one team may store (the same messages): the count alone leaves ten
#: million bodies of 64 KiB, 640 GB. 4 GiB; `pushinbox team set T --max-body-bytes N` (0: none).
MAX_BODY_BYTES_STORED = 4 * 1024**3

#: Live streams one token may hold open in a service process (a console's tabs, a wall of
#: a supervisor's screens), and one team (each of its advisors' consoles): beyond either,
#: 429. A stream holds a connection, a task and a queue of up to 256 updates, and each of
#: its team's updates is written to it on the process's one event loop: a leaked token in a
#: loop, or one team's screens, must not take those from the other teams. 2,000 is twice
#: the 1,000 clients `make bench-sse` measures; PUSHINBOX_MAX_STREAMS_PER_TOKEN and
#: PUSHINBOX_MAX_STREAMS_PER_TEAM override them (per process: more processes, more).
MAX_STREAMS_PER_TOKEN = 32
MAX_STREAMS_PER_TEAM = 2_000

#: A comment is sent on an idle live-update stream this often, so proxies keep it open.
SSE_KEEPALIVE_S = 15.0

#: Webhook delivery retries (seconds before each): quick at first, then backing off to an hour.
HOOK_BACKOFF_S = (5, 30, 120, 600, 1800, 3600)

#: One delivery (connect, send, the answer's status line and headers) within this long in
#: all, not per read: a receiver trickling a byte every few seconds held a worker 180 s.
HOOK_TIMEOUT_S = 10.0

#: Events one delivery job carries for one hook, and the time it may spend on them before
#: handing the rest to a new job at the back of the queue (hooks and teams take turns).
HOOK_JOB_EVENTS = 50
HOOK_JOB_BUDGET_S = 10.0

#: The RQ queue of webhook deliveries: workers serve the dispatcher's own queue first, so no
#: receiver delays a logout requeue or a break end.
RQ_HOOK_QUEUE = "pushinbox-hooks"

#: How often each worker's pump moves new events to webhook delivery jobs.
HOOK_PUMP_INTERVAL_S = 0.5

#: The HTTP service's port for ``pushinbox serve`` / ``up``.
HTTP_PORT = 8080

#: With replicas to wait for, a write waits at most this long for them (then goes on, logged):
#: long enough for a healthy replica, short enough not to stall advisors when one is gone.
WAIT_TIMEOUT_MS = 200

#: Redis connections per HTTP service process: enough for the event loop's concurrent calls
#: (a script call holds one for well under a millisecond); more callers wait their turn.
ASYNC_POOL_SIZE = 64

#: Redis connections a blocking client made from a URL keeps (`connection.connect`: a library
#: user's threads share one Dispatcher); more callers wait their turn, up to ASYNC_POOL_WAIT_S,
#: as on the asyncio side. redis-py 8's own pool refuses the 101st caller at once ("Too many
#: connections"); redis-py 7's opened a connection for every caller.
POOL_SIZE = 64

#: How long an asyncio caller waits for a free connection (the pool's, or the script lane's:
#: half of it) before it is told Redis is unavailable (503 with Retry-After): long enough
#: for a burst to drain at well under a millisecond per call, short of a client's timeout.
ASYNC_POOL_WAIT_S = 10.0

#: A script call on the asyncio driver's lane whose connection fails is made again after
#: each of these pauses, then the error is the caller's (UnavailableError, 503): a
#: connection the server closed while it sat idle costs no pause, a Redis coming back from a
#: restart a fraction of a second (the console's press right after a restart failed with one
#: immediate retry under load; redis-py 5-7 retry three times over about a second, 8 ten).
LANE_RECONNECT_PAUSES_S = (0.0, 0.1, 0.4)
