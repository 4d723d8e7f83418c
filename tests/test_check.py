"""`pushinbox check` finds drift: it is only worth running if it can fail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from conftest import PRODUCT_GROUPS, TEAM, message

from dispatcher import Dispatcher, keys


def _scene(d: Dispatcher) -> None:
    """A message in every place check knows: ann holds m0 (pushed), m1 done by bob, cid holds
    m2 on hold, m3 in help requests, m4 in quarantine, c5 waits with m5 and m6, c7 with m7;
    three priority queues (VIP, reassigned, everything else)."""
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.configure(TEAM, max_requeues=1)
    d.ingest_many(TEAM, [message(i, channel="email") for i in range(4)])
    assert d.next(TEAM, "ann").messages[0].id == "m0"
    assert d.next(TEAM, "bob").messages[0].id == "m1"
    d.reply(TEAM, "bob", "m1")
    assert d.next(TEAM, "cid").messages[0].id == "m2"
    d.hold(TEAM, "cid", "m2")
    assert d.next(TEAM, "cid").messages[0].id == "m3"
    d.request_help(TEAM, "cid", "m3")
    d.ingest(TEAM, message(4, channel="email"))
    for outcome in ("ok", "quarantined"):  # two bounces past a limit of one
        assert d.next(TEAM, "bob").messages[0].id == "m4"
        assert d.send_to_stock(TEAM, "m4") == outcome
    d.ingest_many(TEAM, [message(5, conv="c5", channel="email"),
                         message(6, conv="c5", channel="email"), message(7, channel="email")])
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts == {"messages": 8, "waiting": 3, "assigned": 2, "help": 1,
                             "quarantine": 1, "done": 1, "conversations_waiting": 2}


Q0, Q2 = keys.queue(TEAM, 2, 0), keys.queue(TEAM, 2, 2)  # VIP and everything else


def into_queue(r: redis.Redis, queue: str, conv: str, score: float) -> None:
    """A conversation put in a queue's first bucket by hand (its bound lowered to the score
    where it is below, as the scripts would: scripts/lua/includes/queue.lua)."""
    first = r.zrange(keys.queue_index(queue), 0, 0)
    bucket = first[0].decode() if first else "hand"
    r.zadd(keys.queue_index(queue), {bucket: score}, lt=bool(first))
    r.zadd(keys.queue_bucket(queue, bucket), {conv: score})


def out_of_queue(r: redis.Redis, queue: str, conv: str) -> None:
    for bucket in r.zrange(keys.queue_index(queue), 0, -1):
        r.zrem(keys.queue_bucket(queue, bucket.decode()), conv)
EMAIL_N, EMAIL_S = keys.channel_counts(TEAM, "email"), keys.channel_seconds(TEAM, "email")
S = "1773133200"  # the second the scene's messages arrived in (the test clock's start)


def _both(*commands: Callable[[redis.client.Pipeline], object]) -> Callable[[redis.Redis], object]:
    """Several commands that must all run (an HSET of an existing field answers 0: `a and b`
    would skip b)."""
    def run(r: redis.Redis) -> object:
        pipe = r.pipeline()
        for c in commands:
            c(pipe)
        return pipe.execute()
    return run


#: Each corruption and exactly the problems check must report for it (a rule deleted or gone
#: quiet shows up as a missing line). Every rule of check.lua is violated by at least one.
CORRUPTIONS: dict[str, tuple[Callable[[redis.Redis], object], list[str]]] = {
    "message in two places": (
        lambda r: r.zadd(keys.help_requests(TEAM), {"m0": 1}),
        ["message m0 is in help requests but its state is a",
         "message m0 is in 2 places: current messages of ann, help requests"]),
    "message in no place": (
        lambda r: r.zrem(keys.current(TEAM, "ann"), "m0"),
        ["pushed message m0 of ann is not in their current messages",
         "message m0 (state a) is in no place",
         "conversation c0 records 1 messages held, advisors hold 0",
         "conversation c0 lists m0 in hands, which no advisor holds of it"]),
    "an id in a place with no record": (
        lambda r: r.zadd(keys.help_requests(TEAM), {"ghost": 1}),
        ["help requests holds ghost, which has no message record"]),
    "stock count drift": (
        lambda r: r.hincrby(EMAIL_N, "n", -1),
        ["the email stock count says 2 waiting, 3 wait"]),
    "stock count drift in a second": (
        lambda r: r.hincrby(EMAIL_N, S, 1),
        [f"the email stock count says 4 waiting of second {S}, 3 wait"]),
    "stock count missing a second": (
        lambda r: r.hdel(EMAIL_N, S),
        [f"the email stock count says 0 waiting of second {S}, 3 wait"]),
    "stock orders a second where nothing waits": (
        lambda r: r.zadd(EMAIL_S, {"1773133100": 1}),
        ["the email stock orders second 1773133100, where nothing waits"]),
    "stock does not order a second": (
        lambda r: r.zrem(EMAIL_S, S),
        [f"the email stock does not order second {S}, where 3 wait"]),
    "channel waiting but not indexed": (
        lambda r: r.srem(keys.channels(TEAM), "email"),
        ["channel email has waiting messages but is not indexed"]),
    "phantom in an earlier version's channel index": (
        lambda r: r.zadd(keys.channel_waiting(TEAM, "email"), {"m0": 1}),
        ["channel email counts m0, which is not waiting on that channel"]),
    "state disagrees with place": (
        lambda r: r.hset(keys.message(TEAM, "m5"), "st", "a"),
        ["message m5 is in waiting stock but its state is a",
         f"the email stock count says 3 waiting of second {S}, 2 wait",
         "the email stock count says 3 waiting, 2 wait"]),
    "conversation in two queues": (
        lambda r: into_queue(r, Q0, "c7", 1),
        ["conversation c7 is in two queues",
         f"conversation c7 is in {Q0} but records {Q2}",
         "message m7 is in 2 places: waiting stock, waiting stock"]),
    "conversation records the wrong queue": (
        lambda r: r.hset(keys.conversation(TEAM, "c7"), "q", Q0),
        [f"conversation c7 is in {Q2} but records {Q0}"]),
    "queued conversation with nothing waiting": (
        lambda r: into_queue(r, Q2, "c1", 1),
        [f"conversation c1 is in {Q2} but records ",
         "conversation c1 is queued with no waiting message"]),
    "message waiting under another conversation": (
        lambda r: r.hset(keys.message(TEAM, "m7"), "conv", "c5"),
        ["message m7 waits under conversation c7 but belongs to c5"]),
    "conversation out of arrival order": (
        _both(lambda p: p.delete(keys.conversation_waiting(TEAM, "c5")),
              lambda p: p.rpush(keys.conversation_waiting(TEAM, "c5"), "m6", "m5")),
        ["conversation c5 waits out of arrival order (m5)"]),
    "waiting message in no queue": (
        lambda r: out_of_queue(r, Q2, "c7"),
        ["conversation c7 has a waiting message in its record but is in no queue",
         "message m7 (state w) is in no place"]),
    "waiting list in no queue": (
        lambda r: out_of_queue(r, Q2, "c5"),
        ["conversation c5 has waiting messages but is in no queue",
         "message m5 (state w) is in no place", "message m6 (state w) is in no place"]),
    "waiting message kept twice": (
        lambda r: r.hset(keys.conversation(TEAM, "c5"), "w", "m5"),
        ["conversation c5 keeps waiting messages in its record and in a list",
         "message m6 (state w) is in no place"]),  # the record is read first
    "figure drift": (
        lambda r: r.hincrby(keys.day(TEAM, 20522), "r:bob", 1),
        ["figure r:bob today is 2, done messages say 1"]),
    "figure with no done message": (
        lambda r: r.hset(keys.day(TEAM, 20522), "x:ann", 1),
        ["figure x:ann today is 1, done messages say 0"]),
    "capacity drift": (
        lambda r: r.hincrby(keys.pushed_conversations(TEAM, "ann"), "c0", 1),
        ["advisor ann capacity counts 2 for c0, pushed holds 1"]),
    "capacity missing a conversation": (
        lambda r: r.hdel(keys.pushed_conversations(TEAM, "ann"), "c0"),
        ["advisor ann capacity misses conversation c0"]),
    "message recording another advisor": (
        lambda r: r.hset(keys.message(TEAM, "m0"), "adv", "bob"),
        ["message m0 is with ann but records advisor bob"]),
    "on hold but not in hands": (
        lambda r: r.sadd(keys.on_hold(TEAM, "ann"), "m2"),
        ["message m2 is on hold for ann but not in their hands"]),
    "presence disagrees with state": (
        lambda r: r.zrem(keys.online(TEAM), "bob"),
        ["advisor bob is on but presence says offline"]),
    "conversation held by two advisors": (
        lambda r: r.hset(keys.message(TEAM, "m2"), "conv", "c0"),
        ["conversation c0 is held by ann and cid",
         "conversation c0 records 1 messages held, advisors hold 2",
         "conversation c2 records 1 messages held, advisors hold 0",
         "conversation c0 does not list m2, which cid holds",
         "conversation c2 lists m2 in hands, which no advisor holds of it"]),
    "conversation waiting while an advisor holds it": (
        lambda r: r.hset(keys.message(TEAM, "m2"), "conv", "c7"),
        ["conversation c7 is waiting while cid holds it",
         "conversation c7 records 0 messages held, advisors hold 1",
         "conversation c2 records 1 messages held, advisors hold 0",
         "conversation c7 does not list m2, which cid holds",
         "conversation c2 lists m2 in hands, which no advisor holds of it"]),
    "channel indexed with nothing waiting": (
        lambda r: r.sadd(keys.channels(TEAM), "fax"),
        ["channel fax is indexed with no waiting message"]),
    "stranded with a logged-out advisor": (
        _both(lambda p: p.hset(keys.advisor(TEAM, "ann"), "st", "off"),
              lambda p: p.zrem(keys.online(TEAM), "ann")),
        ["advisor ann is logged out but still holds 1 messages (stranded)"]),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_reports_each_kind_of_drift(online: Dispatcher, name: str) -> None:
    d = online
    _scene(d)
    corrupt, expected = CORRUPTIONS[name]
    corrupt(d.redis)
    report = d.check(TEAM)
    assert not report.ok
    assert sorted(report.problems) == sorted(expected)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_repair_puts_each_kind_of_drift_back_in_order(online: Dispatcher, name: str) -> None:
    d = online
    _scene(d)
    corrupt, _ = CORRUPTIONS[name]
    corrupt(d.redis)
    assert not d.check(TEAM).ok
    assert d.repair(TEAM) > 0
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts["messages"] == 8
    found = {m.id: m.state for m in d.messages(TEAM, [f"m{i}" for i in range(8)])}
    assert found["m1"] == "done"
    assert set(found) == {f"m{i}" for i in range(8)}
    assert d.repair(TEAM) == 0  # nothing left to fix


def test_check_repair_on_the_command_line(online: Dispatcher, redis_server: object) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    d = online
    _scene(d)
    d.redis.zrem(keys.current(TEAM, "ann"), "m0")
    url = redis_server.url  # type: ignore[attr-defined]
    assert CliRunner().invoke(cli, ["--redis-url", url, "check", TEAM]).exit_code == 1
    fixed = CliRunner().invoke(cli, ["--redis-url", url, "--inline", "check", "--repair", TEAM])
    assert fixed.exit_code == 0, fixed.output
    assert "fixes made" in fixed.output
    assert d.message(TEAM, "m0").reassigned


def test_a_team_total_an_older_version_wrote_is_not_a_problem(online: Dispatcher,
                                                             clock: object) -> None:
    # Day totals per team are no longer written (their sum is read); one left by an older
    # version, whatever it says, is neither drift nor repaired away into a wrong figure.
    online.ingest(TEAM, message(1))
    online.reply(TEAM, "ann", online.next(TEAM, "ann").messages[0].id)
    dk = keys.day(TEAM, online.now_ms() // 86_400_000)
    online.redis.hset(dk, "r", 7)
    assert online.check(TEAM).ok
    assert online.redis.hget(dk, "r:ann") == b"1"


def test_check_walks_the_keyspace_once_whatever_the_neighbours_hold(online: Dispatcher) -> None:
    """`check` reads a team in one atomic call, and SCAN walks every key of the node (every
    team's) to find the team's: each walk holds every team's calls back. It walks once, for
    all the kinds of record it reads (four walks before: 0.92-0.96 s of Redis held for a team
    of 1,000 beside a neighbour of 200,000 waiting, 0.29-0.35 s with one)."""
    d = online
    _scene(d)
    d.create_team("neighbour")
    d.ingest_many("neighbour", [message(i) for i in range(3000)])  # ~9,000 keys
    r = d.redis
    walk, cursor = 0, 0
    while True:  # one walk of the node's keyspace, as a script's SCAN makes it
        cursor, _ = r.scan(cursor, match=keys.prefix(TEAM) + "*", count=1000)
        walk += 1
        if cursor == 0:
            break
    r.config_resetstat()
    assert d.check(TEAM).ok
    scans = int(r.info("commandstats")["cmdstat_scan"]["calls"])
    assert scans == walk, (scans, walk)
