"""A conversation's waiting messages: one kept in the conversation's own record, more in a
list; a deployment upgraded from the list-only layout works as it is, and
`pushinbox migrate` folds its lists of one into their records (and back with --down)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from conftest import PRODUCT_GROUPS, LaterJobs, message, pushinbox, queued

from dispatcher import Dispatcher
from dispatcher.errors import ConflictError
from dispatcher.servers import RedisServer
from dispatcher.testing import FakeClock

T = "t"
P = f"pi:{{{T}}}:"


@pytest.fixture
def d(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    d = Dispatcher(redis_client, clock=clock, jobs=LaterJobs())
    for team in (T, "other"):
        d.create_team(team)
        d.set_role(team, "agent", push=True, capacity=1)
        for a in ("ann", "bob"):
            d.set_advisor(team, a, "agent")
            d.login(team, a)
    return d


def clean(d: Dispatcher, team: str = T) -> None:
    report = d.check(team)
    assert report.ok, report.problems


def pushed(d: Dispatcher, adv: str, team: str = T) -> list[str]:
    return [m.id for m in d.next(team, adv).messages]


def lists(r: redis.Redis, team: str = T) -> dict[str, list[str]]:
    return {k.decode().rsplit(":", 1)[1]: [x.decode() for x in r.lrange(k, 0, -1)]
            for k in r.scan_iter(match=f"pi:{{{team}}}:cw:*")}


def to_list_layout(r: redis.Redis, team: str = T) -> int:
    """What the version before this one wrote: every waiting conversation's ids in a list,
    no `w` field."""
    n = 0
    for k in r.scan_iter(match=f"pi:{{{team}}}:c:*"):
        w = r.hget(k, "w")
        conv = k.decode().rsplit(":", 1)[1]
        if w:
            r.rpush(f"pi:{{{team}}}:cw:{conv}", w)
            n += 1
        r.hdel(k, "w")
    return n


def test_a_one_message_conversation_waits_in_its_own_record_with_no_list(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert d.redis.hget(P + "c:c1", "w") == b"m1"
    assert lists(d.redis) == {}
    clean(d)
    assert pushed(d, "ann") == ["m1"]
    assert d.redis.hget(P + "c:c1", "w") == b""
    clean(d)


def test_a_second_message_moves_the_conversation_to_a_list_in_arrival_order(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    d.ingest(T, message(2, conv="c1"))
    d.ingest(T, message(3, conv="c1"))
    assert lists(d.redis) == {"c1": ["m1", "m2", "m3"]}
    assert d.redis.hget(P + "c:c1", "w") == b""
    clean(d)
    assert d.preview(T, 1)[0]["waiting"] == 3
    assert pushed(d, "ann") == ["m1", "m2", "m3"]
    assert lists(d.redis) == {}
    clean(d)


def test_a_message_requeued_alone_waits_in_its_record_again(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    assert d.requeue_advisor(T, "ann", int(d.redis.hget(P + "a:ann", "ep") or 0)) == 1
    assert d.redis.hget(P + "c:c1", "w") == b"m1"
    assert lists(d.redis) == {}
    clean(d)
    assert pushed(d, "bob") == ["m1"]


def test_check_reports_a_conversation_kept_twice_and_repair_mends_it(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    d.ingest(T, message(2, conv="c1"))
    d.redis.lpop(P + "cw:c1")
    d.redis.hset(P + "c:c1", "w", "m1")  # m1 in the record, m2 in the list
    report = d.check(T)
    assert "conversation c1 keeps waiting messages in its record and in a list" in report.problems
    assert d.repair(T) > 0
    clean(d)
    assert pushed(d, "ann") == ["m1", "m2"]


def test_check_reports_a_record_waiting_in_no_queue(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.redis.hset(P + "c:c1", "w", "m1")
    report = d.check(T)
    problem = "conversation c1 has a waiting message in its record but is in no queue"
    assert problem in report.problems
    assert d.repair(T) > 0
    clean(d)
    assert d.redis.hget(P + "c:c1", "w") == b""


def held_sets(r: redis.Redis, team: str = T) -> dict[str, set[str]]:
    return {k.decode().rsplit(":", 1)[1]: {x.decode() for x in r.smembers(k)}
            for k in r.scan_iter(match=f"pi:{{{team}}}:hd:*")}


def test_a_conversation_in_hands_keeps_its_one_message_in_its_record_and_more_in_a_set(
        d: Dispatcher) -> None:
    d.set_role(T, "agent", push=True, capacity=5)
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    assert d.redis.hget(P + "c:c1", "h") == b"m1"
    assert held_sets(d.redis) == {}
    clean(d)
    d.ingest(T, message(2, conv="c1"))  # follows its conversation to ann
    d.ingest(T, message(3, conv="c1"))
    assert [m.id for m in d.current(T, "ann")] == ["m1", "m2", "m3"]
    assert d.redis.hget(P + "c:c1", "h") == b"m1"
    assert held_sets(d.redis) == {"c1": {"m2", "m3"}}
    clean(d)
    d.reply(T, "ann", "m1")
    assert d.redis.hget(P + "c:c1", "h") == b""
    clean(d)
    d.reply(T, "ann", "m3")
    assert held_sets(d.redis) == {"c1": {"m2"}}
    clean(d)
    d.ingest(T, message(4, conv="c1"))  # the record is free again: the newcomer takes it
    assert d.redis.hget(P + "c:c1", "h") == b"m4"
    d.assign(T, "bob", "m2")  # a supervisor moves the conversation whole
    assert sorted(m.id for m in d.current(T, "bob")) == ["m2", "m4"]
    assert d.current(T, "ann") == []
    clean(d)
    d.logout(T, "bob")  # hands the conversation back to the team, whole
    assert d.requeue_advisor(T, "bob", int(d.redis.hget(P + "a:bob", "ep") or 0)) == 2
    assert d.redis.hget(P + "c:c1", "h") == b""
    assert held_sets(d.redis) == {}
    clean(d)
    assert pushed(d, "ann") == ["m2", "m4"]
    clean(d)


def test_an_upgraded_deployment_works_on_its_sets_of_messages_in_hands(d: Dispatcher) -> None:
    """What the version before this one wrote: every message in hands in its conversation's
    set, no `h`. Replies, arrivals, moves and requeues work on it as they are."""
    d.set_role(T, "agent", push=True, capacity=5)
    for i in range(1, 5):
        d.ingest(T, message(i, conv=f"c{i}"))
    assert pushed(d, "ann") == ["m1"]
    assert pushed(d, "ann") == ["m2"]
    assert pushed(d, "bob") == ["m3"]
    for k in d.redis.scan_iter(match=P + "c:*"):
        h = d.redis.hget(k, "h")
        if h:
            d.redis.sadd(P + "hd:" + k.decode().rsplit(":", 1)[1], h)
        d.redis.hdel(k, "h")
    assert held_sets(d.redis) == {"c1": {"m1"}, "c2": {"m2"}, "c3": {"m3"}}
    clean(d)
    d.reply(T, "ann", "m1")
    d.ingest(T, message(5, conv="c2"))  # follows c2 to ann: into the record, m2 in the set
    assert d.redis.hget(P + "c:c2", "h") == b"m5"
    clean(d)
    d.assign(T, "bob", "m2")  # the whole conversation moves
    assert sorted(m.id for m in d.current(T, "bob")) == ["m2", "m3", "m5"]
    clean(d)
    d.logout(T, "bob")
    assert d.requeue_advisor(T, "bob", int(d.redis.hget(P + "a:bob", "ep") or 0)) == 3
    assert held_sets(d.redis) == {}
    clean(d)
    assert pushed(d, "ann") == ["m2", "m5"]
    clean(d)


@pytest.mark.parametrize("damage, problem", [
    (lambda r: r.hset(P + "c:c1", "h", "m9"),
     "conversation c1 lists m9 in hands, which no advisor holds of it"),
    (lambda r: r.hset(P + "c:c1", "h", ""),
     "conversation c1 does not list m1, which ann holds"),
    (lambda r: r.sadd(P + "hd:c1", "m1"),
     "conversation c1 lists m1 in hands in its record and in its set"),
])
def test_check_reports_a_conversations_messages_in_hands_listed_wrong_and_repair_mends_it(
        d: Dispatcher, damage: Any, problem: str) -> None:
    d.ingest(T, message(1, conv="c1"))
    d.ingest(T, message(9, conv="c9"))
    assert pushed(d, "ann") == ["m1"]
    damage(d.redis)
    assert problem in d.check(T).problems
    assert d.repair(T) > 0
    clean(d)
    assert d.redis.hget(P + "c:c1", "h") == b"m1"
    assert held_sets(d.redis) == {}
    d.logout(T, "ann")  # what the listing is for: the conversation goes back whole
    d.requeue_advisor(T, "ann", int(d.redis.hget(P + "a:ann", "ep") or 0))
    clean(d)
    assert pushed(d, "bob") == ["m1"]


def test_an_upgraded_deployment_works_on_its_lists_and_migrate_folds_them(
        redis_server: RedisServer, d: Dispatcher) -> None:
    for team in (T, "other"):
        d.ingest_many(team, [message(i, conv=f"c{i}") for i in range(1, 41)])
        d.ingest_many(team, [message(100 + i, conv=f"c{i}") for i in range(1, 4)])
        assert to_list_layout(d.redis, team) == 37  # c1-c3 have two: a list already
    assert len(lists(d.redis)) == 40
    clean(d)
    # the old layout is read as it is: presses, previews, arrivals, requeues
    assert d.preview(T, 1)[0]["waiting"] == 2
    assert pushed(d, "ann") == ["m1", "m101"]
    d.ingest(T, message(200, conv="c5"))
    assert lists(d.redis)["c5"] == ["m5", "m200"]
    clean(d)
    other_before = {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
                    if not k.endswith(b":events")}

    out = pushinbox(redis_server.url, "migrate", T)
    assert out.returncode == 0, out.stderr
    assert "t: 36 conversations folded into their records" in out.stdout
    assert set(lists(d.redis)) == {"c2", "c3", "c5"}  # those with more than one waiting
    assert all(d.redis.hget(P + f"c:c{i}", "w") == f"m{i}".encode() for i in range(6, 41))
    clean(d)
    # the other team was not asked for: not one of its keys changed
    assert {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
            if not k.endswith(b":events")} == other_before
    again = pushinbox(redis_server.url, "--json", "migrate", T)
    assert json.loads(again.stdout) == {T: {"folded": 0, "unfolded": 0, "customers": 0,
                                            "stock": 0, "queued": 0}}
    assert pushed(d, "bob") == ["m2", "m102"]
    for m in ("m2", "m102"):
        d.reply(T, "bob", m)
    assert pushed(d, "bob") == ["m3", "m103"]
    for m in ("m1", "m101"):
        d.reply(T, "ann", m)
    assert pushed(d, "ann") == ["m4"]  # folded: read from its record
    clean(d)


def test_migrate_down_puts_every_waiting_id_back_in_a_list_for_a_downgrade(
        redis_server: RedisServer, d: Dispatcher) -> None:
    d.ingest_many(T, [message(i, conv=f"c{i}") for i in range(1, 31)])
    d.ingest_many("other", [message(i, conv=f"c{i}") for i in range(1, 11)])
    d.ingest(T, message(100, conv="c100"))
    assert pushed(d, "bob") == ["m1"]  # bob holds c1, its one message in the record
    out = pushinbox(redis_server.url, "migrate", "--down")
    assert out.returncode == 0, out.stderr
    assert "t: 31 conversations unfolded into lists and sets" in out.stdout
    assert "other: 10 conversations unfolded into lists and sets" in out.stdout
    assert lists(d.redis) == {f"c{i}": [f"m{i}"] for i in range(2, 31)} | {"c100": ["m100"]}
    assert not any(d.redis.hget(P + f"c:c{i}", "w") for i in range(1, 31))
    # the message in hands is back in the conversation's set, where an earlier version looks
    assert held_sets(d.redis) == {"c1": {"m1"}}
    assert d.redis.hget(P + "c:c1", "h") is None
    # and every field an earlier version reads is there again, as it wrote them
    for i in range(2, 31):
        conv = d.redis.hgetall(P + f"c:c{i}")
        assert conv[b"fw"] == conv[b"lw"] == conv[b"so"], conv
        assert (conv[b"owner"], conv[b"held"], conv[b"rsk"]) == (b"", b"0", b""), conv
        assert conv[b"gi"] == b"0", conv  # the group its queue's key says
        assert conv[b"q"].startswith(P.encode() + b"q:"), conv  # the whole key, as it wrote it
        msg = d.redis.hgetall(P + f"m:m{i}")
        assert all(msg[f] == b"" for f in (b"adv", b"via", b"pt", b"g", b"why", b"lang")), msg
        assert (msg[b"rq"], msg[b"re"], msg[b"mt"], msg[b"at"]) == (b"0", b"0", b"\x90", b"\x80")
        assert len(msg[b"sum"]) == 24 and bytes.fromhex(msg[b"sum"].decode()), msg
        assert int(msg[b"ts"]) == int(msg[b"ord"]) // 1000, msg
    clean(d)
    clean(d, "other")
    assert pushed(d, "ann") == ["m2"]
    d.reply(T, "bob", "m1")  # read from the set
    assert held_sets(d.redis) == {}
    assert pushinbox(redis_server.url, "migrate").returncode == 0  # and up again
    assert lists(d.redis) == {}
    clean(d)
    clean(d, "other")


def customer_sets(r: redis.Redis, team: str = T) -> dict[str, set[str]]:
    return {k.decode().rsplit(":", 1)[1]: {x.decode() for x in r.smembers(k)}
            for k in r.scan_iter(match=f"pi:{{{team}}}:cuv:*")}


def customer_hashes(r: redis.Redis, team: str = T) -> dict[str, set[str]]:
    return {k.decode().rsplit(":", 1)[1]: {x.decode() for x in r.hkeys(k)}
            for k in r.scan_iter(match=f"pi:{{{team}}}:cc:*")}


def test_a_customers_conversations_are_one_small_hash(d: Dispatcher) -> None:
    d.set_groups(T, PRODUCT_GROUPS)
    d.ingest_many(T, [message(1, customer="u1"), message(2, customer="u1"),
                      message(3, customer="u2")])
    assert customer_hashes(d.redis) == {"u1": {"c1", "c2"}, "u2": {"c3"}}
    assert d.redis.object("encoding", P + "cc:u1") == b"listpack"
    assert customer_sets(d.redis) == {}
    assert d.set_customer_tags(T, "u1", ["VIP"]) == 2  # both of u1's conversations move up
    assert [(p["conversation"], p["group"]) for p in d.preview(T, 3)] == [
        ("c1", "VIP"), ("c2", "VIP"), ("c3", "everything else")]
    clean(d)


def test_an_upgraded_deployment_reads_its_customers_sets_and_migrate_makes_them_hashes(
        redis_server: RedisServer, d: Dispatcher, clock: FakeClock) -> None:
    """What the version before this one wrote: each customer's conversations in a set."""
    for team in (T, "other"):
        d.set_groups(team, PRODUCT_GROUPS)
        d.ingest_many(team, [message(1, customer="u1"), message(2, customer="u1"),
                             message(3, customer="u2")])
        for k in list(d.redis.scan_iter(match=f"pi:{{{team}}}:cc:*")):
            cust = k.decode().rsplit(":", 1)[1]
            d.redis.sadd(f"pi:{{{team}}}:cuv:{cust}", *d.redis.hkeys(k))
            d.redis.delete(k)
    assert customer_sets(d.redis) == {"u1": {"c1", "c2"}, "u2": {"c3"}}
    clean(d)
    # read as it is: a tags change finds the conversations in the set, and a new one
    d.ingest(T, message(4, customer="u1"))
    assert customer_hashes(d.redis) == {"u1": {"c4"}}
    assert d.set_customer_tags(T, "u1", ["VIP"]) == 3
    assert [p["conversation"] for p in d.preview(T, 4)] == ["c1", "c2", "c4", "c3"]
    # and a purge forgets a customer whose last conversation goes, in either layout
    d.configure(T, retention_s=3600)
    assert pushed(d, "ann") == ["m1"]
    d.reply(T, "ann", "m1")
    assert pushed(d, "bob") == ["m2"]
    d.reply(T, "bob", "m2")
    clock.advance(7200)
    d.tick(T)
    assert customer_sets(d.redis) == {"u2": {"c3"}}
    assert customer_hashes(d.redis) == {"u1": {"c4"}}
    assert d.redis.exists(P + "cu:u1")  # u1 still has c4: their tags stay
    clean(d)
    other_before = {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
                    if not k.endswith(b":events")}
    out = pushinbox(redis_server.url, "migrate", T)
    assert out.returncode == 0, out.stderr
    assert "t: 0 conversations folded into their records, 1 customers' conversations " \
        "into hashes" in out.stdout
    assert customer_sets(d.redis) == {}
    assert customer_hashes(d.redis) == {"u1": {"c4"}, "u2": {"c3"}}
    assert {k: d.redis.dump(k) for k in d.redis.scan_iter(match="pi:{other}:*")
            if not k.endswith(b":events")} == other_before
    clean(d)
    down = pushinbox(redis_server.url, "migrate", "--down")
    assert down.returncode == 0, down.stderr
    assert "t: 2 conversations unfolded into lists and sets, 2 customers' conversations " \
        "into sets" in down.stdout
    assert customer_sets(d.redis) == {"u1": {"c4"}, "u2": {"c3"}}
    assert customer_hashes(d.redis) == {}
    assert customer_sets(d.redis, "other") == {"u1": {"c1", "c2"}, "u2": {"c3"}}
    clean(d)
    clean(d, "other")


def test_migrate_moves_a_customer_with_many_conversations_in_bounded_commands(
        redis_server: RedisServer, d: Dispatcher) -> None:
    convs = [f"c{i}" for i in range(1_200)]
    d.redis.sadd(P + "cuv:big", *convs)
    out = pushinbox(redis_server.url, "migrate", T)
    assert out.returncode == 0, out.stderr
    assert customer_hashes(d.redis) == {"big": set(convs)}
    assert pushinbox(redis_server.url, "migrate", T, "--down").returncode == 0
    assert customer_sets(d.redis) == {"big": set(convs)}


def test_migrate_refuses_an_unknown_team_naming_it(redis_server: RedisServer,
                                                   d: Dispatcher) -> None:
    out = pushinbox(redis_server.url, "migrate", "nosuch")
    assert out.returncode != 0
    assert "nosuch" in out.stderr


def test_a_message_ingested_into_the_stock_keeps_no_empty_fields(d: Dispatcher) -> None:
    """A waiting message fresh from ingest stores what it has (57 bytes fewer per waiting
    message, docs/performance.md); everything that reads it takes a missing field for empty."""
    d.ingest(T, message(1, conv="c1"))
    fields = {k.decode() for k in d.redis.hkeys(P + "m:m1")}
    assert not fields & {"adv", "via", "pt", "g", "why", "lang"}, fields
    seen = d.message(T, "m1")
    assert (seen.state, seen.advisor, seen.via, seen.group, seen.language) == (
        "waiting", None, None, None, "")
    assert [m.id for m in d.preview(T, 1)[0]["messages"]] == ["m1"]
    clean(d)
    got = d.next(T, "ann").messages[0]
    assert (got.id, got.advisor, got.via, got.language) == ("m1", "ann", "push", "")
    d.logout(T, "ann")
    assert d.requeue_advisor(T, "ann", int(d.redis.hget(P + "a:ann", "ep") or 0)) == 1
    back = d.message(T, "m1")
    assert (back.state, back.advisor, back.reassigned) == ("waiting", None, True)
    clean(d)


def test_a_new_message_keeps_no_zero_counts_no_empty_tags_and_a_binary_checksum(
        d: Dispatcher) -> None:
    """48 bytes fewer per waiting message (docs/performance.md): a requeue count and a
    reassigned flag written only once they are not zero, tags and attributes only when there
    are some, the arrival only when it is not the millisecond of the arrival order, the
    content's checksum as its 12 bytes rather than 24 hex digits."""
    d.set_groups(T, {"groups": [{"name": "Not reassigned", "match": {"reassigned": False}},
                                {"name": "Tagged x", "match": {"message_tags_any": ["x"]}}]})
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c2", tags=["vip"],
                                                      attributes={"plan": "gold"})])
    plain, tagged = (d.redis.hgetall(P + f"m:m{i}") for i in (1, 2))
    assert set(plain) == {b"conv", b"ch", b"body", b"sum", b"ord", b"st"}  # its customer: c1's
    assert set(tagged) == set(plain) | {b"mt", b"at"}
    assert len(plain[b"sum"]) == 12
    seen = {m.id: m for m in d.messages(T, ["m1", "m2"])}
    assert (seen["m1"].tags, seen["m1"].attributes, seen["m1"].requeues,
            seen["m1"].reassigned) == ([], {}, 0, False)
    assert (seen["m2"].tags, seen["m2"].attributes) == (["vip"], {"plan": "gold"})
    assert d.preview(T, 1)[0]["group"] == "Not reassigned"  # a missing flag reads as false
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    assert d.requeue_advisor(T, "ann", int(d.redis.hget(P + "a:ann", "ep") or 0)) == 1
    back = d.message(T, "m1")
    assert (back.requeues, back.reassigned, back.tags) == (1, True, [])
    assert d.ingest(T, message(1, conv="c1")) == "duplicate"
    with pytest.raises(ConflictError):
        d.ingest(T, message(1, conv="c1", body={"text": "another"}))
    clean(d)


def test_a_message_an_earlier_version_stored_is_still_told_apart_from_its_duplicate(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    raw = d.redis.hget(P + "m:m1", "sum")
    d.redis.hset(P + "m:m1", mapping={"sum": raw.hex(), "rq": 0, "re": "0",
                                      "mt": b"\x90", "at": b"\x80"})  # as it wrote it
    assert d.ingest(T, message(1, conv="c1")) == "duplicate"
    with pytest.raises(ConflictError):
        d.ingest(T, message(1, conv="c1", body={"text": "another"}))
    assert pushed(d, "ann") == ["m1"]
    clean(d)


@pytest.mark.parametrize("order", ["oldest_conversation", "oldest_message", "newest_message"])
def test_a_conversation_opened_into_the_stock_keeps_no_empty_or_repeated_fields(
        d: Dispatcher, order: str) -> None:
    """Its first and last waiting arrival equal its start, nobody holds it, no skill restricts
    it, its queue's key says its group: those fields are left out (74 bytes per waiting
    conversation) and read as such."""
    d.set_groups(T, {"order": order, "groups": []})
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c2")])
    fields = {k.decode() for k in d.redis.hkeys(P + "c:c1")}
    assert not fields & {"fw", "lw", "owner", "held", "rsk", "gi"}, fields
    clean(d)
    d.ingest(T, message(3, conv="c2"))
    # c1 started first and holds the oldest message; c2 now holds the newest
    c1, c2 = ["m1"], ["m2", "m3"]
    first, second = (c2, c1) if order == "newest_message" else (c1, c2)
    assert [m.id for m in d.next(T, "ann").messages] == first
    assert [m.id for m in d.next(T, "bob").messages] == second
    clean(d)
    for adv, ids in (("ann", first), ("bob", second)):
        for m in ids:
            d.reply(T, adv, m)
    d.ingest(T, message(4, conv="c1"))  # back into the stock after it was handled
    d.ingest(T, message(5, conv="c1"))
    assert [m.id for m in d.next(T, "ann").messages] == ["m4", "m5"]
    clean(d)


def test_a_burst_keeps_each_messages_arrival_though_its_order_borrows_a_millisecond(
        d: Dispatcher, clock: FakeClock) -> None:
    """Over a thousand arrivals in one millisecond borrow their order from the next: those
    keep their arrival (`ts`); the others read it from their order's millisecond."""
    at = clock()
    d.ingest_many(T, [message(i, conv=f"c{i}") for i in range(1, 1201)])
    kept = [i for i in range(1, 1201) if d.redis.hexists(P + f"m:m{i}", "ts")]
    assert kept == list(range(1001, 1201))
    assert {m.received_at for m in d.messages(T, ["m1", "m1000", "m1001", "m1200"])} == {at}
    assert d.stock(T).channels[0].oldest_age_s == 0.0
    clean(d)


def test_a_waiting_conversation_names_its_queue_without_repeating_the_teams_prefix(
        d: Dispatcher) -> None:
    """The queue's key less `pi:{team}:q:` (16 bytes of the record at the benchmark's team id,
    more for a longer one); a conversation promoted to a better group, restricted to a skill
    or re-placed by a settings change records the same way."""
    d.set_groups(T, {"groups": [{"name": "VIP", "match": {"message_tags_any": ["VIP"]}}]})
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c2")])
    assert d.redis.hget(P + "c:c1", "q") == b"2:1"
    d.ingest(T, message(3, conv="c1", tags=["VIP"]))  # promoted
    assert d.redis.hget(P + "c:c1", "q") == b"2:0"
    d.set_groups(T, {"groups": []})
    d.rebucket(T)
    assert {d.redis.hget(P + f"c:{c}", "q") for c in ("c1", "c2")} == {b"3:0"}
    assert queued(d.redis, P + "q:3:0") == [b"c1", b"c2"]
    clean(d)
    assert pushed(d, "ann") == ["m1", "m3"]
    assert d.redis.hget(P + "c:c1", "q") == b""
    clean(d)


def test_a_conversation_an_earlier_version_recorded_with_its_whole_queue_key_moves_as_before(
        d: Dispatcher) -> None:
    d.set_groups(T, {"groups": [{"name": "VIP", "match": {"message_tags_any": ["VIP"]}}]})
    d.ingest_many(T, [message(i, conv=f"c{i}") for i in range(1, 5)])
    for i in range(1, 5):  # as the version before this one wrote it
        d.redis.hset(P + f"c:c{i}", "q", P + "q:2:1")
    clean(d)
    d.ingest(T, message(5, conv="c2", tags=["VIP"]))  # promoted out of the old form
    assert queued(d.redis, P + "q:2:1") == [b"c1", b"c3", b"c4"]
    assert d.redis.hget(P + "c:c2", "q") == b"2:0"
    d.assign(T, "bob", "m3")  # a supervisor's move takes c3 out of the queue it names
    assert queued(d.redis, P + "q:2:1") == [b"c1", b"c4"]
    clean(d)
    assert pushed(d, "ann") == ["m2", "m5"]
    d.set_groups(T, {"groups": []})  # c1 and c4 re-placed from their old form
    d.rebucket(T)
    assert queued(d.redis, P + "q:3:0") == [b"c1", b"c4"]
    assert d.redis.hget(P + "c:c4", "q") == b"3:0"
    clean(d)
