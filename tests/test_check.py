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
