"""What a waiting conversation's record keeps of its group: nothing its queue already says. The
group's name comes from the queue (`q`: settings version and group index) and the team's
settings (`gn:<ver>:<i>`); its why is kept only where it differs from the one its group
gives most messages (`gw:<ver>:<i>`: the criterion met through the first value of each list).
Every view shows the group and why as before: a push, a preview, the message in hands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from conftest import TEAM, LaterJobs, assert_clean, make_team, message

from dispatcher import Dispatcher, keys
from dispatcher.servers import RedisServer
from dispatcher.testing import FakeClock

P = keys.prefix(TEAM)
TAGS_AB = {"groups": [{"name": "Tagged a or b", "match": {"message_tags_any": ["a", "b"]}}]}


@pytest.fixture(params=["fcall", "evalsha"])
def d(request: pytest.FixtureRequest, redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    return make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs(),
                                functions=request.param == "fcall"), login=True)


def text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x


def record(d: Dispatcher, conv: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in d.redis.hgetall(P + f"c:{conv}").items()}


def settings_fields(d: Dispatcher, prefix: str) -> set[str]:
    return {text(f) for f in d.redis.hkeys(keys.cfg(TEAM)) if text(f).startswith(prefix)}


def shown(d: Dispatcher, adv: str) -> list[tuple[str, str | None, str | None]]:
    return [(m.id, m.group, m.why) for m in d.next(TEAM, adv).messages]


def test_a_waiting_conversation_keeps_neither_its_groups_name_nor_the_why_it_usually_gives(
        d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest_many(TEAM, [message(1, tags=["a"]), message(2)])
    assert set(record(d, "c1")) == {"n", "cust", "so", "q", "w"}
    assert set(record(d, "c2")) == {"n", "cust", "so", "q", "w"}
    assert [(r["conversation"], r["group"], r["why"]) for r in d.preview(TEAM)] == [
        ("c1", "Tagged a or b", "message tag a"),
        ("c2", "everything else", "matched no priority group")]
    assert shown(d, "ann") == [("m1", "Tagged a or b", "message tag a")]
    assert shown(d, "bob") == [("m2", "everything else", "matched no priority group")]
    assert [e["why"] for e in d.events(TEAM) if e["e"] == "assigned"] == [
        "Tagged a or b: message tag a", "everything else: matched no priority group"]
    assert_clean(d)


def test_a_why_other_than_its_groups_usual_one_stays_in_the_record(d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest(TEAM, message(1, tags=["b"]))
    assert record(d, "c1")["why"] == "message tag b"
    assert "g" not in record(d, "c1")
    assert [r["why"] for r in d.preview(TEAM)] == ["message tag b"]
    assert shown(d, "ann") == [("m1", "Tagged a or b", "message tag b")]


def test_a_conversation_placed_again_drops_a_why_it_no_longer_needs_and_writes_one_it_does(
        d: Dispatcher) -> None:
    d.set_groups(TEAM, {"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP", "gold"]}},
        {"name": "Tagged a or b", "match": {"message_tags_any": ["a", "b"]}}]})
    d.ingest(TEAM, message(1, tags=["b"], customer="u1"))
    assert record(d, "c1")["why"] == "message tag b"
    d.set_customer_tags(TEAM, "u1", ["VIP"])  # re-placed: VIP's usual why
    assert "why" not in record(d, "c1")
    d.set_customer_tags(TEAM, "u1", ["gold"])  # the second tag: kept
    assert record(d, "c1")["why"] == "customer tag gold"
    d.set_customer_tags(TEAM, "u1", [])
    d.ingest(TEAM, message(2, conv="c1", customer="u1", tags=["a"]))  # promoted? no: same group
    assert record(d, "c1")["why"] == "message tag b"
    d.ingest(TEAM, message(3, conv="c1", customer="u1", tags=["a"], customer_tags=["VIP"]))
    assert "why" not in record(d, "c1")  # promoted to VIP by its customer's tags
    assert "g" not in record(d, "c1")
    assert shown(d, "ann") == [(f"m{i}", "VIP", "customer tag VIP") for i in (1, 2, 3)]
    assert_clean(d)


def test_a_conversation_waiting_under_earlier_settings_is_shown_with_their_group_and_why(
        d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest_many(TEAM, [message(1, tags=["a"]), message(2, tags=["a"])])
    d.set_groups(TEAM, {"groups": [{"name": "Renamed", "match": {"message_tags_any": ["a"]}}]})
    # not re-bucketed yet (no worker): c1 and c2 wait in version 2's queue
    assert record(d, "c1")["q"] == "2:0"
    assert [(r["group"], r["why"]) for r in d.preview(TEAM)] == [
        ("Tagged a or b", "message tag a")] * 2
    assert shown(d, "ann") == [("m1", "Tagged a or b", "message tag a")]
    d.rebucket(TEAM)
    assert shown(d, "bob") == [("m2", "Renamed", "message tag a")]
    # the earlier version's names went with its last conversation: the settings do not grow
    assert settings_fields(d, "gn:") == {"gn:3:0", "gn:3:1"}
    assert settings_fields(d, "gw:") == {"gw:3:0", "gw:3:1"}
    assert_clean(d)


def test_settings_changed_over_an_empty_stock_keep_only_the_current_names(d: Dispatcher) -> None:
    assert settings_fields(d, "gn:") == {"gn:1:0"}
    for i in range(5):
        d.set_groups(TEAM, {"groups": [{"name": f"G{i}", "match": {"channel_in": ["sms"]}}]})
    assert settings_fields(d, "gn:") == {"gn:6:0", "gn:6:1"}
    assert d.redis.hget(keys.cfg(TEAM), "gn:6:0") == b"G4"
    assert d.redis.hget(keys.cfg(TEAM), "gw:6:0") == b"channel sms"
    assert d.redis.hget(keys.cfg(TEAM), "gn:6:1") == b"everything else"


def test_a_record_an_earlier_version_wrote_with_its_group_is_read_and_placed_as_before(
        d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest_many(TEAM, [message(1, tags=["a"]), message(2, tags=["a"])])
    for c in ("c1", "c2"):  # as the version before this one wrote them
        d.redis.hset(P + f"c:{c}", mapping={"g": "Tagged a or b", "why": "message tag a"})
    assert shown(d, "ann") == [("m1", "Tagged a or b", "message tag a")]
    d.set_groups(TEAM, {"groups": []})
    d.rebucket(TEAM)  # c2 placed again: what the record repeated goes
    assert set(record(d, "c2")) == {"n", "cust", "so", "q", "w"}
    assert shown(d, "bob") == [("m2", "everything else", "matched no priority group")]
    assert_clean(d)


def test_a_team_whose_settings_an_earlier_version_wrote_keeps_whole_records_until_migrated(
        d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.redis.hdel(keys.cfg(TEAM), *settings_fields(d, "gn:"), *settings_fields(d, "gw:"))
    d.ingest_many(TEAM, [message(1, tags=["a"]), message(2, tags=["a"])])
    assert (record(d, "c1")["g"], record(d, "c1")["why"]) == ("Tagged a or b", "message tag a")
    assert [(r["group"], r["why"]) for r in d.preview(TEAM)] == [
        ("Tagged a or b", "message tag a")] * 2
    assert shown(d, "ann") == [("m1", "Tagged a or b", "message tag a")]  # read from its record
    d.migrate(TEAM)
    assert settings_fields(d, "gn:") == {"gn:2:0", "gn:2:1"}
    d.ingest(TEAM, message(3, tags=["a"]))
    assert set(record(d, "c3")) == {"n", "cust", "so", "q", "w"}
    assert shown(d, "bob") == [("m2", "Tagged a or b", "message tag a")]
    assert shown(d, "cid") == [("m3", "Tagged a or b", "message tag a")]
    assert_clean(d)


def test_migrate_down_writes_each_waiting_conversations_group_and_why_back(
        d: Dispatcher, redis_server: RedisServer) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest_many(TEAM, [message(1, tags=["a"]), message(2, tags=["b"]), message(3)])
    exe = Path(sys.executable).parent / "pushinbox"  # as the README has users type it
    out = subprocess.run([str(exe), "--redis-url", redis_server.url, "migrate",
                          "--down"], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert [(record(d, c)["g"], record(d, c)["why"]) for c in ("c1", "c2", "c3")] == [
        ("Tagged a or b", "message tag a"), ("Tagged a or b", "message tag b"),
        ("everything else", "matched no priority group")]
    # and each message its customer, where an earlier version reads it
    assert [d.redis.hget(P + f"m:m{i}", "cust") for i in (1, 2, 3)] == [b"u1", b"u2", b"u3"]


def test_check_names_a_waiting_conversation_whose_group_nothing_names(d: Dispatcher) -> None:
    d.set_groups(TEAM, TAGS_AB)
    d.ingest(TEAM, message(1, tags=["a"]))
    d.redis.hdel(keys.cfg(TEAM), "gn:2:0")
    report = d.check(TEAM)
    assert not report.ok
    assert report.problems == [
        f"conversation c1 waits in {P}q:2:0, whose group the settings do not name"]


def test_a_message_keeps_no_customer_its_conversation_has(d: Dispatcher,
                                                          clock: FakeClock) -> None:
    """A message's customer is its conversation's (one conversation, one customer): the
    record leaves it out, and every view, the triage and the purge read the conversation's."""
    d.configure(TEAM, retention_s=3600)
    d.set_triage(TEAM, [{"name": "vip", "match": {"customer_tags_any": ["VIP"]},
                         "advisor": "cid"}])
    d.set_customer_tags(TEAM, "u9", ["VIP"])
    d.ingest_many(TEAM, [message(1, customer="u1"), message(2, conv="c1", customer="u1"),
                         message(9, customer="u9")])
    assert all(not d.redis.hexists(P + f"m:m{i}", "cust") for i in (1, 2, 9))
    assert [m.customer for m in d.messages(TEAM, ["m1", "m2", "m9"])] == ["u1", "u1", "u9"]
    assert [m.customer for m in d.preview(TEAM)[0]["messages"]] == ["u1", "u1"]
    assert d.messages(TEAM, ["m9"])[0].advisor == "cid"  # triage read the customer's tags
    assert [m.customer for m in d.next(TEAM, "ann").messages] == ["u1", "u1"]
    for i in (1, 2):
        d.reply(TEAM, "ann", f"m{i}")
    assert [m.customer for m in d.messages(TEAM, ["m1"])] == ["u1"]
    assert d.redis.exists(P + "cc:u1")
    clock.advance(7200)
    d.tick(TEAM)  # the purge: the customer's conversation goes with its last message
    assert not d.redis.exists(P + "cc:u1")
    assert not d.redis.exists(P + "c:c1")
    assert_clean(d)


def test_long_group_names_and_many_queues_are_shown_right_whatever_the_library_keeps(
        d: Dispatcher) -> None:
    """The library keeps at most 16 queues' names a team, each short (groupnames.lua): past
    either bound a name is read each call, and shown the same."""
    tags = [f"t{g}-" + "x" * (120 if g % 2 else 1) for g in range(20)]
    groups = [{"name": f"{g}-" + "n" * (60 if g % 2 else 5), "match": {
        "message_tags_any": [tags[g]]}} for g in range(20)]
    d.set_groups(TEAM, {"groups": groups})
    d.ingest_many(TEAM, [message(g, tags=[tags[g]]) for g in range(20)])
    for g in range(20):
        adv = ("ann", "bob", "cid")[g % 3]
        got = d.next(TEAM, adv).messages
        assert [(m.id, m.group, m.why) for m in got] == [
            (f"m{g}", groups[g]["name"], f"message tag {tags[g]}")]
        d.reply(TEAM, adv, f"m{g}")
    d.set_groups(TEAM, {"groups": [dict(g, name=g["name"].upper()) for g in groups]})
    d.ingest(TEAM, message(99, tags=[tags[19]]))
    assert shown(d, "ann") == [("m99", groups[19]["name"].upper(), f"message tag {tags[19]}")]
