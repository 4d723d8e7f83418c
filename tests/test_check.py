"""`pushinbox check` finds drift: it is only worth running if it can fail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from conftest import TEAM, message

from dispatcher import Dispatcher, keys


def _scene(d: Dispatcher) -> None:
    d.ingest_many(TEAM, [message(i, channel="email") for i in range(4)])
    d.next(TEAM, "ann")  # m0 with ann
    d.next(TEAM, "bob")
    d.reply(TEAM, "bob", "m1")  # m1 done
    assert d.check(TEAM).ok


#: Each corruption and exactly the problems check must report for it (a rule deleted or gone
#: quiet shows up as a missing line).
CORRUPTIONS: dict[str, tuple[Callable[[redis.Redis], object], list[str]]] = {
    "message in two places": (
        lambda r: r.zadd(keys.help_requests(TEAM), {"m0": 1}),
        ["message m0 is in help requests but its state is a",
         "message m0 is in 2 places: current messages of ann, help requests"]),
    "message in no place": (
        lambda r: r.zrem(keys.current(TEAM, "ann"), "m0"),
        ["pushed message m0 of ann is not in their current messages",
         "message m0 (state a) is in no place",
         "conversation c0 records 1 messages held, advisors hold 0"]),
    "stock count drift": (
        lambda r: r.zrem(keys.channel_waiting(TEAM, "email"), "m2"),
        ["waiting message m2 is missing from the email stock count"]),
    "phantom in a channel count": (
        lambda r: r.zadd(keys.channel_waiting(TEAM, "email"), {"m0": 1}),
        ["channel email counts m0, which is not waiting on that channel"]),
    "state disagrees with place": (
        lambda r: r.hset(keys.message(TEAM, "m2"), "st", "a"),
        ["message m2 is in waiting stock but its state is a",
         "channel email counts m2, which is not waiting on that channel"]),
    "figure drift": (
        lambda r: r.hincrby(keys.day(TEAM, 20522), "r:bob", 1),
        ["figure r:bob today is 2, done messages say 1"]),
    "capacity drift": (
        lambda r: r.hincrby(keys.pushed_conversations(TEAM, "ann"), "c0", 1),
        ["advisor ann capacity counts 2 for c0, pushed holds 1"]),
    "channel indexed with nothing waiting": (
        lambda r: r.sadd(keys.channels(TEAM), "fax"),
        ["channel fax is indexed with no waiting message"]),
    "stranded with a logged-out advisor": (  # both commands run (HSET answers 0 here)
        lambda r: r.pipeline().hset(keys.advisor(TEAM, "ann"), "st", "off")
        .zrem(keys.online(TEAM), "ann").execute(),
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
    assert report.counts["messages"] == 4
    found = {m.id: m.state for m in d.messages(TEAM, [f"m{i}" for i in range(4)])}
    assert found["m1"] == "done"
    assert set(found) == {"m0", "m1", "m2", "m3"}
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
