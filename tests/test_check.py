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


CORRUPTIONS: dict[str, tuple[Callable[[redis.Redis], object], str]] = {
    "message in two places": (
        lambda r: r.zadd(keys.help_requests(TEAM), {"m0": 1}), "is in 2 places"),
    "message in no place": (
        lambda r: r.zrem(keys.current(TEAM, "ann"), "m0"), "is in no place"),
    "stock count drift": (
        lambda r: r.zrem(keys.channel_waiting(TEAM, "email"), "m2"),
        "missing from the email stock count"),
    "phantom in a channel count": (
        lambda r: r.zadd(keys.channel_waiting(TEAM, "email"), {"m0": 1}),
        "which is not waiting"),
    "state disagrees with place": (
        lambda r: r.hset(keys.message(TEAM, "m2"), "st", "a"), "its state is a"),
    "figure drift": (
        lambda r: r.hincrby(keys.day(TEAM, 20522), "r:bob", 1), "figure r:bob today"),
    "capacity drift": (
        lambda r: r.hincrby(keys.pushed_conversations(TEAM, "ann"), "c0", 1), "capacity counts"),
    "channel indexed with nothing waiting": (
        lambda r: r.sadd(keys.channels(TEAM), "fax"),
        "channel fax is indexed with no waiting message"),
    "stranded with a logged-out advisor": (
        lambda r: r.hset(keys.advisor(TEAM, "ann"), "st", "off") and
        r.zrem(keys.online(TEAM), "ann"), "stranded"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_reports_each_kind_of_drift(online: Dispatcher, name: str) -> None:
    d = online
    _scene(d)
    corrupt, expected = CORRUPTIONS[name]
    corrupt(d.redis)
    report = d.check(TEAM)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


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
