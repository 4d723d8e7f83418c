"""A team's settings and roles kept between calls (scripts/lua/includes/keys.lua): the function
library keeps them under the team's settings generation, so every change of a setting or a
role is seen by the very next call, on the same warm library, and a team made again under the
same id never meets the settings of the one before. Each change is made both through the same
library and through EVALSHA (another Lua state, as a second library or another node would be:
nothing there drops what this library keeps, only the generation tells)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from conftest import TEAM, make_team, message

from dispatcher import Dispatcher, ForbiddenError, keys
from dispatcher.testing import FakeClock

LUA = Path(__file__).resolve().parent.parent / "scripts" / "lua"


def _warm(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    """Team acme on the function library, its settings and role kept by a few presses."""
    d = make_team(Dispatcher(redis_client, clock=clock, functions=True), login=True)
    d.ingest_many(TEAM, [message(i) for i in range(1, 4)])
    for adv in ("ann", "bob"):
        assert d.next(TEAM, adv).status == "assigned"
    return d


#: Who changes the settings: the library that keeps them, or EVALSHA beside it.
WRITERS = pytest.mark.parametrize("via", ["fcall", "evalsha"])


def _writer(d: Dispatcher, via: str) -> Dispatcher:
    if via == "fcall":
        return d
    return Dispatcher(d.redis, clock=d.clock, functions=False)


def _gen(redis_client: redis.Redis, team: str = TEAM) -> bytes | None:
    return redis_client.hget(keys.cfg(team), "gen")  # type: ignore[return-value]


def test_only_the_settings_helpers_write_a_teams_settings_hash() -> None:
    writes = re.compile(r"redis\.call\('(HSET|HDEL|HINCRBY|HSETNX|HMSET|DEL)', K\.cfg\b")
    for path in sorted(LUA.rglob("*.lua")):
        text = path.read_text(encoding="utf-8")
        if path.name != "keys.lua":
            assert not writes.search(text), f"{path.name} writes K.cfg: use cfg_write / cfg_delete"
        for call in re.findall(r"cfg_note\((.*)\)", text):
            for field in re.findall(r"'(\w+)'", call):
                assert field in ("lo", "pw", "nm", "nb", "rs", "rn"), f"{path.name}: {field}"


def test_every_change_of_a_setting_or_a_role_makes_a_new_generation(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = _warm(redis_client, clock)
    seen = {_gen(redis_client)}
    assert None not in seen
    for change in (lambda: d.configure(TEAM, max_requeues=7),
                   lambda: d.set_role(TEAM, "agent", push=True, capacity=2),
                   lambda: d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {
                       "customer_tags_any": ["VIP"]}}]}),  # and its re-bucketing, run here
                   lambda: d.set_triage(TEAM, [{"name": "r", "match": {"channel_in": ["sms"]},
                                               "advisor": "cid"}]),
                   lambda: d.migrate(TEAM)):
        change()
        gen = _gen(redis_client)
        assert gen is not None and gen not in seen
        seen.add(gen)
    before = _gen(redis_client)
    d.ingest(TEAM, message(9))  # arrivals write bookkeeping only (`lo`)
    d.next(TEAM, "cid")
    assert _gen(redis_client) == before


@WRITERS
def test_a_role_change_is_seen_by_the_very_next_press(
        redis_client: redis.Redis, clock: FakeClock, via: str) -> None:
    d = _warm(redis_client, clock)
    w = _writer(d, via)
    d.ingest_many(TEAM, [message(i) for i in range(10, 14)])
    assert d.next(TEAM, "ann").status == "pending"  # capacity 1, m1 unanswered
    w.set_role(TEAM, "agent", push=True, capacity=2)
    assert d.next(TEAM, "ann").status == "assigned"
    w.set_role(TEAM, "agent", push=False, capacity=2)
    with pytest.raises(ForbiddenError):
        d.next(TEAM, "bob")


@WRITERS
def test_new_priority_groups_are_seen_by_the_very_next_press(
        redis_client: redis.Redis, clock: FakeClock, via: str) -> None:
    d = _warm(redis_client, clock)
    w = _writer(d, via)
    d.ingest_many(TEAM, [message(20), message(21, customer_tags=["VIP"])])
    w.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    w.rebucket(TEAM)
    pushed = d.next(TEAM, "cid").messages
    assert [(m.id, m.group) for m in pushed] == [("m21", "VIP")]


@WRITERS
def test_a_triage_rule_is_seen_by_the_very_next_arrival(
        redis_client: redis.Redis, clock: FakeClock, via: str) -> None:
    d = _warm(redis_client, clock)
    w = _writer(d, via)
    d.ingest(TEAM, message(30))
    w.set_triage(TEAM, [{"name": "sms", "match": {"channel_in": ["sms"]}, "advisor": "cid"}])
    d.ingest(TEAM, message(31, channel="sms"))
    assert [m.id for m in d.current(TEAM, "cid")] == ["m31"]


@WRITERS
def test_a_team_made_again_under_its_id_never_meets_the_settings_of_the_one_before(
        redis_client: redis.Redis, clock: FakeClock, via: str) -> None:
    d = _warm(redis_client, clock)
    w = _writer(d, via)
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    d.ingest(TEAM, message(40, customer_tags=["VIP"]))
    assert d.next(TEAM, "cid").messages[0].group == "VIP"
    last = int(_gen(redis_client) or 0)
    w.delete_team(TEAM)
    make_team(w, login=True)  # no groups, capacity 1
    assert int(_gen(redis_client) or 0) > last  # never a generation the team had before
    d.ingest_many(TEAM, [message(41, customer_tags=["VIP"]), message(42)])
    first = d.next(TEAM, "ann").messages[0]
    assert (first.id, first.group) == ("m41", "everything else")
    assert d.next(TEAM, "ann").status == "pending"
    d.check(TEAM)


def test_a_team_an_earlier_version_made_is_read_whole_until_migrate_gives_it_a_generation(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = _warm(redis_client, clock)
    d.ingest_many(TEAM, [message(i) for i in range(50, 54)])
    redis_client.hdel(keys.cfg(TEAM), "gen")  # as an earlier version made it
    redis_client.hset(keys.role(TEAM, "agent"), "cap", "2")  # as an earlier version's role_set
    assert d.next(TEAM, "ann").status == "assigned"
    assert _gen(redis_client) is None
    d.migrate(TEAM)
    assert _gen(redis_client) is not None
    d.set_role(TEAM, "agent", push=True, capacity=1)
    assert d.next(TEAM, "bob").status == "pending"


def test_what_a_library_keeps_stays_small_however_large_each_teams_settings(
        redis_client: redis.Redis) -> None:
    """250 teams with groups near the size cap (MAX_SETTINGS_BYTES packed), each taking
    a message in and pressing: the library keeps their scalar settings, not their decoded
    groups (which the matching decodes per call, as it always did)."""
    d = Dispatcher(redis_client, functions=True)
    groups = {"groups": [{"name": f"g{g}", "match": {"message_tags_any": [
        f"{g}-{v}-" + "x" * 100 for v in range(8)]}} for g in range(31)]}

    def lua_memory() -> int:
        return int(redis_client.info("memory")["used_memory_vm_functions"])

    d.create_team("warm")  # the library loaded before the first reading
    before = lua_memory()
    for t in range(250):
        team = f"big{t}"
        d.create_team(team)
        d.set_role(team, "agent", push=True)
        d.set_advisor(team, "ann", "agent")
        d.login(team, "ann")
        assert d.set_groups(team, groups)["version"] == 2
        d.ingest(team, message(1, tags=["0-0-" + "x" * 100]))
        assert d.next(team, "ann").messages[0].group == "g0"
    grown = lua_memory() - before
    assert grown < 2_000_000, f"the library's Lua memory grew by {grown:,} bytes"


def test_a_teams_settings_change_leaves_the_settings_its_neighbour_kept_alone(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = _warm(redis_client, clock)
    d.create_team("nb")
    d.set_role("nb", "agent", push=True)
    d.set_advisor("nb", "ann", "agent")
    d.login("nb", "ann")
    d.set_groups("nb", {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    d.ingest_many("nb", [message(1, customer_tags=["VIP"]), message(2)])
    assert d.next("nb", "ann").messages[0].group == "VIP"
    kept = _gen(redis_client, "nb")
    d.set_groups(TEAM, {"groups": [{"name": "Gold", "match": {"customer_tags_any": ["VIP"]}}]})
    d.set_role(TEAM, "agent", push=True, capacity=3)
    assert _gen(redis_client, "nb") == kept
    d.reply("nb", "ann", "m1")
    second = d.next("nb", "ann").messages[0]
    assert (second.id, second.group) == ("m2", "everything else")
    assert d.next("nb", "ann").status == "pending"  # its role's capacity, 1, not acme's 3


def test_a_team_without_a_generation_is_read_with_one_command_a_call_as_before(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = _warm(redis_client, clock)
    d.ingest_many(TEAM, [message(i) for i in range(60, 64)])
    redis_client.hdel(keys.cfg(TEAM), "gen")  # as an earlier version made it
    d.next(TEAM, "ann")  # (the library learns the team has none)

    def reads() -> tuple[int, int]:
        stats = redis_client.info("commandstats")
        return (int(stats.get("cmdstat_hget", {}).get("calls", 0)),
                int(stats.get("cmdstat_hmget", {}).get("calls", 0)))

    before = reads()
    d.reply(TEAM, "ann", "m1")
    after = reads()
    assert after[0] == before[0], "a read of a generation the team does not have"
    assert after[1] > before[1]
    d.migrate(TEAM)  # a generation again: kept and read by its one field
    d.reply(TEAM, "bob", "m2")
    before = reads()
    d.reply(TEAM, "ann", d.next(TEAM, "ann").messages[0].id)
    assert reads()[0] > before[0]
