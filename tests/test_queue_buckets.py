"""A group's queue kept in small buckets (scripts/lua/includes/queue.lua): sorted sets of at
most 128 conversations, each one listpack, under an index of their lower bounds. The ordered
list is the same as one sorted set would give, whatever the order, the arrivals, the
re-placements among older conversations (which split a full bucket), the supervisors' moves
out of the middle and the presses; a queue an earlier version kept whole is read beside its
buckets until `pushinbox migrate` moves it, and `--down` moves it back."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from conftest import TEAM, LaterJobs, assert_clean, make_team, message, script_commands

from dispatcher import Dispatcher, keys, ops
from dispatcher.servers import RedisServer
from dispatcher.testing import FakeClock

P = keys.prefix(TEAM)
Q = keys.queue(TEAM, 1, 0)  # the one queue of a team without priority groups


def text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x


def buckets(r: redis.Redis, queue: str = Q) -> list[tuple[str, float, list[str]]]:
    """Each bucket in the index's order: its name, bound and conversations."""
    out = []
    for b, bound in r.zrange(keys.queue_index(queue), 0, -1, withscores=True):
        members = r.zrange(keys.queue_bucket(queue, text(b)), 0, -1)
        out.append((text(b), bound, [text(m) for m in members]))
    return out


def listed(d: Dispatcher, n: int = 1000) -> list[str]:
    return [row["conversation"] for row in d.preview(TEAM, n)]


def assert_small_listpacks(r: redis.Redis, queue: str = Q) -> None:
    for b, _, members in buckets(r, queue):
        assert 0 < len(members) <= 128, (b, len(members))
        assert r.object("encoding", keys.queue_bucket(queue, b)) == b"listpack"


@pytest.fixture(params=["fcall", "evalsha"])
def d(request: pytest.FixtureRequest, redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    return make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs(),
                                functions=request.param == "fcall"), login=True)


def test_a_queue_of_hundreds_waits_in_small_buckets_in_arrival_order(d: Dispatcher) -> None:
    d.ingest_many(TEAM, [message(i) for i in range(600)])
    assert not d.redis.exists(Q)  # no one large sorted set
    assert len(buckets(d.redis)) >= 5
    assert_small_listpacks(d.redis)
    assert listed(d) == [f"c{i}" for i in range(600)]
    assert [d.next(TEAM, a).messages[0].id for a in ("ann", "bob", "cid")] == ["m0", "m1", "m2"]
    assert listed(d, 3) == ["c3", "c4", "c5"]
    assert_clean(d)


def test_conversations_placed_back_before_the_stock_get_buckets_of_their_own_in_order(
        d: Dispatcher, clock: FakeClock) -> None:
    d.set_role(TEAM, "agent", push=True, capacity=100)
    d.ingest_many(TEAM, [message(i) for i in range(300)])
    taken = [m.id for _ in range(90) for m in d.next(TEAM, "ann").messages]
    assert taken == [f"m{i}" for i in range(90)]
    clock.advance(5)
    d.ingest_many(TEAM, [message(i) for i in range(300, 500)])
    d.logout(TEAM, "ann")  # her 90 go back before the 410 waiting, by their start
    d.requeue_advisor(TEAM, "ann", int(d.redis.hget(P + "a:ann", "ep") or 0))
    assert listed(d) == [f"c{i}" for i in range(500)]
    assert_small_listpacks(d.redis)
    assert_clean(d)


def test_a_rebucketing_that_merges_two_groups_splits_full_buckets_and_keeps_the_order(
        d: Dispatcher) -> None:
    """Older settings' groups are re-bucketed one after the other: the second one's
    conversations land among the first one's, in full buckets, which split."""
    d.set_groups(TEAM, {"groups": [{"name": "A", "match": {"message_tags_any": ["a"]}}]})
    d.ingest_many(TEAM, [message(i, tags=["a"] if i % 2 == 0 else []) for i in range(400)])
    d.set_groups(TEAM, {"groups": []})
    d.rebucket(TEAM)
    queue = keys.queue(TEAM, 3, 0)
    assert listed(d) == [f"c{i}" for i in range(400)]
    assert sum(len(m) for _, _, m in buckets(d.redis, queue)) == 400
    assert_small_listpacks(d.redis, queue)
    assert_clean(d)


@pytest.mark.parametrize("order", ["oldest_conversation", "newest_conversation",
                                   "oldest_message", "newest_message"])
def test_every_order_comes_out_of_buckets_as_one_sorted_set_would_give_it(
        d: Dispatcher, clock: FakeClock, order: str) -> None:
    """Arrivals to waiting conversations (which move them under the message orders), a
    supervisor's moves out of the middle and presses, at random, against the order itself."""
    d.set_groups(TEAM, {"order": order, "groups": []})
    rnd = random.Random(order)
    start: dict[str, int] = {}
    last: dict[str, int] = {}
    first_msg: dict[str, str] = {}
    seq = 0
    for step in range(700):
        clock.advance(0.002)
        roll = rnd.random()
        if roll < 0.7 or not start:
            # a new conversation, or a new message of a waiting one
            conv = rnd.choice(sorted(start)) if roll < 0.2 and start else f"c{step}"
            d.ingest(TEAM, message(step, conv=conv))
            seq += 1
            start.setdefault(conv, seq)
            first_msg.setdefault(conv, f"m{step}")
            last[conv] = seq
        elif roll < 0.85:
            conv = rnd.choice(sorted(start))
            d.assign(TEAM, "bob", first_msg[conv])  # the whole conversation moves
            del start[conv], last[conv]
            for m in d.run(ops.current(TEAM, "bob")):
                d.reply(TEAM, "bob", m.id)
        else:
            got = d.next(TEAM, "ann").messages
            conv = got[0].conversation
            del start[conv], last[conv]
            for m in got:
                d.reply(TEAM, "ann", m.id)
    key = {"oldest_conversation": lambda c: start[c], "newest_conversation": lambda c: -start[c],
           "oldest_message": lambda c: start[c], "newest_message": lambda c: -last[c]}[order]
    assert listed(d) == sorted(start, key=key)
    queue = keys.queue(TEAM, 2, 0)
    assert sum(len(m) for _, _, m in buckets(d.redis, queue)) == len(start)
    assert_small_listpacks(d.redis, queue)
    assert_clean(d)


def test_the_stock_and_the_team_view_count_and_age_the_queue_from_its_buckets(
        d: Dispatcher, clock: FakeClock) -> None:
    d.ingest_many(TEAM, [message(i) for i in range(300)])
    clock.advance(60)
    first = buckets(d.redis)[0][2]
    for conv in first:  # the first bucket emptied by supervisors' moves leaves the index
        d.assign(TEAM, "bob", "m" + conv[1:])
    assert [len(m) for _, _, m in buckets(d.redis)] == [128, 44]
    # an earlier version left an emptied bucket in the index: readers skip it
    d.redis.zadd(keys.queue_index(Q), {"left-empty": 1})
    rows = {g["group"]: g["waiting"] for g in d.run(ops.group_stock(TEAM))}
    assert rows == {"everything else": 300 - len(first)}
    assert d.run(ops.team_live(TEAM))["groups"][0]["oldest_wait_s"] == 60.0
    assert listed(d, 1) == [f"c{len(first)}"]
    assert d.next(TEAM, "ann").messages[0].id == f"m{len(first)}"  # the press drops it
    assert buckets(d.redis)[0][2] != []
    assert_clean(d)


def test_check_reports_a_conversation_outside_its_buckets_range_and_repair_places_it(
        d: Dispatcher) -> None:
    d.ingest_many(TEAM, [message(i) for i in range(300)])
    (b0, _, m0), (b1, _, m1) = buckets(d.redis)[:2]
    score = d.redis.zscore(keys.queue_bucket(Q, b0), "c0")
    d.redis.zrem(keys.queue_bucket(Q, b0), "c0")  # moved by hand into the next bucket
    d.redis.zadd(keys.queue_bucket(Q, b1), {"c0": score or 0})
    assert d.check(TEAM).problems == [
        f"conversation c0 is in a bucket of {Q} that does not hold its score"]
    assert d.repair(TEAM) > 0
    assert_clean(d)
    assert listed(d, 2) == ["c0", "c1"]
    d.redis.zadd(keys.queue_bucket(Q, b0), {"c1": (score or 0) + 64})  # rescored by hand
    assert d.check(TEAM).problems == [
        f"conversation c1 is scored {int(score or 0) + 64} in {Q} but its record says "
        f"{int(score or 0) + 1}"]
    assert d.repair(TEAM) > 0
    assert_clean(d)
    assert listed(d, 3) == ["c0", "c1", "c2"]
    assert m0[:2] == ["c0", "c1"] and m1


def to_one_set(r: redis.Redis, team: str = TEAM) -> None:
    """What the version before this one kept: each queue one sorted set, no index, no `bq`."""
    p = keys.prefix(team)
    for qx in list(r.scan_iter(match=f"{p}qx:*")):
        queue = p + "q:" + text(qx)[len(p) + 3:]
        for b in r.zrange(qx, 0, -1):
            bucket = keys.queue_bucket(queue, text(b))
            rows = r.zrange(bucket, 0, -1, withscores=True)
            if rows and bucket != queue:
                r.zadd(queue, dict(rows))
                r.delete(bucket)
        r.delete(qx)
    r.hdel(keys.cfg(team), "bq")
    r.hincrby(keys.cfg(team), "gen", 1)  # settings as that version wrote them: read anew


def test_a_queue_an_earlier_version_kept_whole_works_and_migrate_moves_it_into_buckets(
        d: Dispatcher, redis_server: RedisServer) -> None:
    for team in ("other", TEAM):
        if team == "other":
            d.create_team(team)
        d.ingest_many(team, [message(i) for i in range(400)])
    to_one_set(d.redis)
    other = {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
             if not k.endswith(b":events")}
    assert d.redis.zcard(Q) == 400 and not d.redis.exists(keys.queue_index(Q))
    assert_clean(d)
    d.ingest_many(TEAM, [message(i) for i in range(400, 450)])  # arrivals beside the set
    assert d.next(TEAM, "ann").messages[0].id == "m0"
    d.assign(TEAM, "bob", "m200")  # out of the middle of the set
    d.assign(TEAM, "bob", "m420")  # out of a bucket
    assert listed(d, 1000) == [f"c{i}" for i in range(1, 450) if i not in (200, 420)]
    assert_clean(d)
    exe = Path(sys.executable).parent / "pushinbox"  # as the README has users type it
    out = subprocess.run([str(exe), "--redis-url", redis_server.url, "migrate", TEAM],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "398 waiting conversations into buckets" in out.stdout  # the 49 arrivals were
    assert not d.redis.exists(Q) and d.redis.hget(keys.cfg(TEAM), "bq") == b"1"
    assert_small_listpacks(d.redis)
    assert listed(d, 1000) == [f"c{i}" for i in range(1, 450) if i not in (200, 420)]
    assert_clean(d)
    down = subprocess.run([str(exe), "--redis-url", redis_server.url, "migrate", TEAM, "--down"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert "447 waiting conversations into one set per queue" in down.stdout
    assert d.redis.zcard(Q) == 447 and not d.redis.exists(keys.queue_index(Q))
    assert not d.redis.hexists(keys.cfg(TEAM), "bq")
    assert_clean(d)
    assert other == {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
                     if not k.endswith(b":events")}


def test_a_huge_queue_is_counted_from_its_first_buckets_so_a_scrape_stays_bounded(
        d: Dispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past defaults.COUNTED_BUCKETS a queue's other buckets are taken as full as the first
    ones (the stock's figures of one team's huge queue cost every /metrics scrape at most that
    many ZCARDs); below it the count is exact."""
    d.ingest_many(TEAM, [message(i) for i in range(600)])  # buckets of 128, 128, 128, 128, 88
    assert {g["group"]: g["waiting"] for g in d.run(ops.group_stock(TEAM))} == {
        "everything else": 600}
    monkeypatch.setattr("dispatcher.defaults.COUNTED_BUCKETS", 2)
    assert {g["group"]: g["waiting"] for g in d.run(ops.group_stock(TEAM))} == {
        "everything else": 640}  # 256 counted in 2 of 5 buckets


def test_a_conversation_promoted_within_its_own_batch_waits_in_one_queue(d: Dispatcher) -> None:
    """A batch's arrivals at a last bucket are written together at its end: a conversation
    opened early in a batch and moved to an earlier group by a later message of the same
    batch is taken out of where it was placed first, not left there as well."""
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"message_tags_any": ["vip"]}}]})
    d.ingest_many(TEAM, [message(i) for i in range(5)])  # a last bucket for the batch to find
    # (the call's first arrival at a queue finds its last bucket; the next ones are kept aside)
    d.ingest_many(TEAM, [message(9), message(10), message(11, conv="c10", tags=["vip"]),
                         message(12)])
    assert listed(d) == ["c10", "c0", "c1", "c2", "c3", "c4", "c9", "c12"]
    assert d.next(TEAM, "ann").messages[0].id == "m10"
    assert listed(d) == ["c0", "c1", "c2", "c3", "c4", "c9", "c12"]
    assert_clean(d)


def test_a_rebucketing_batch_costs_as_much_late_as_early_and_leaves_no_empty_bucket(
        d: Dispatcher) -> None:
    """A re-bucketing takes the older queue's first conversation again and again: a bucket it
    empties leaves the index then, or each batch would read past every bucket emptied before
    it (what made re-bucketing 1M conversations take a quarter of an hour, presses waiting
    100 ms behind its batches)."""
    d.ingest_many(TEAM, [message(i) for i in range(1500)])  # 12 buckets
    d.set_groups(TEAM, {"groups": [{"name": "A", "match": {"message_tags_any": ["a"]}}]})
    old = Q
    d.batch_size = 50
    costs: list[int] = []

    def batch_done(moved: int, left: int) -> None:
        costs.append(script_commands(d.redis))
        if left:
            assert_small_listpacks(d.redis, old)  # every bucket listed holds a conversation
        d.redis.config_resetstat()

    d.redis.config_resetstat()
    assert d.rebucket(TEAM, batch_done) == 1500
    assert max(costs[:-1]) <= costs[0] * 1.2, costs
    new = keys.queue(TEAM, 2, 1)  # everything else, under the new settings
    assert sum(len(m) for _, _, m in buckets(d.redis, new)) == 1500
    assert_small_listpacks(d.redis, new)
    assert listed(d, 1000) == [f"c{i}" for i in range(1000)]
    assert_clean(d)


def test_conversations_taken_from_the_front_of_a_queue_leave_no_empty_bucket_behind(
        d: Dispatcher) -> None:
    """Taking a conversation out of its queue other than by a press (an advisor or a
    supervisor taking it) drops the bucket it empties from the index, as a press does."""
    d.set_role(TEAM, "agent", push=False, capacity=100)
    d.ingest_many(TEAM, [message(i) for i in range(600)])
    for i in range(300):
        d.take(TEAM, ("ann", "bob", "cid")[i % 3], f"m{i}")
    assert_small_listpacks(d.redis)
    assert len(buckets(d.redis)) == 3  # 300 left: the last three of five
    assert listed(d) == [f"c{i}" for i in range(300, 600)]
    assert_clean(d)
