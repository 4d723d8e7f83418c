"""Many advisors pressing at the same instant: each message assigned exactly once."""

from __future__ import annotations

import collections
import multiprocessing
import threading
from typing import Any

import pytest
from conftest import PRODUCT_GROUPS, TEAM, assert_clean

from dispatcher import Dispatcher
from dispatcher.testing import RedisServer

MESSAGES = 10_000
ADVISORS = 50


def _seed(d: Dispatcher) -> None:
    d.create_team(TEAM)
    d.set_role(TEAM, "agent", push=True)
    d.set_groups(TEAM, PRODUCT_GROUPS)
    for a in range(ADVISORS):
        d.set_advisor(TEAM, f"adv{a}", "agent")
        d.login(TEAM, f"adv{a}")
    batch = []
    for i in range(MESSAGES):
        # some conversations have two messages: they must travel together
        conv = f"c{i // 2}" if i % 10 < 2 else f"c-{i}"
        batch.append({"id": f"m{i}", "conversation": conv, "customer": f"u{i % 997}",
                      "channel": ("whatsapp", "email", "webchat")[i % 3], "body": str(i),
                      "customer_tags": ["VIP"] if i % 997 % 13 == 0 else []})
        if len(batch) == 500:
            d.ingest_many(TEAM, batch)
            batch = []


def _work(url: str, advisor: str) -> list[tuple[str, str]]:
    """Press, then reply or archive, until the stock is empty; returns (message, conv)."""
    d = Dispatcher.from_url(url)
    got: list[tuple[str, str]] = []
    n = 0
    while True:
        p = d.next(TEAM, advisor)
        if p.status == "empty":
            return got
        assert p.status == "assigned"
        for m in p.messages:
            got.append((m.id, m.conversation))
            (d.reply if n % 2 else d.archive)(TEAM, advisor, m.id)
            n += 1


def _work_one_call(url: str, advisor: str) -> list[tuple[str, str]]:
    """The same cycle with the last message of each push answered by reply-and-next, which
    brings the next push (the others replied one by one first)."""
    d = Dispatcher.from_url(url)
    got: list[tuple[str, str]] = []
    p = d.next(TEAM, advisor)
    while p.status != "empty":
        assert p.status == "assigned", p
        for m in p.messages:
            got.append((m.id, m.conversation))
        for m in p.messages[:-1]:
            d.archive(TEAM, advisor, m.id)
        out = d.reply_next(TEAM, advisor, p.messages[-1].id)
        assert out.replied == "ok"
        p = out
    return got


def _assert_each_message_once(results: list[list[tuple[str, str]]], d: Dispatcher) -> None:
    seen = collections.Counter(mid for r in results for mid, _ in r)
    assert len(seen) == MESSAGES
    assert set(seen.values()) == {1}, [m for m, c in seen.items() if c > 1][:5]
    owners: dict[str, int] = {}
    for i, r in enumerate(results):
        for _, conv in r:
            assert owners.setdefault(conv, i) == i, f"conversation {conv} was split"
    assert d.stock(TEAM).total == 0
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts["done"] == MESSAGES
    total = sum(d.advisor_stats(TEAM, f"adv{a}").responses
                + d.advisor_stats(TEAM, f"adv{a}").archives for a in range(ADVISORS))
    assert total == MESSAGES


def _in_threads(server: RedisServer, work: Any) -> None:
    """The seeded stock, the advisors each doing ``work`` in a thread of their own; then every
    message taken exactly once."""
    d = Dispatcher(server.client())
    _seed(d)
    results: list[list[tuple[str, str]]] = [[] for _ in range(ADVISORS)]

    def run(i: int) -> None:
        results[i] = work(server.url, f"adv{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(ADVISORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_each_message_once(results, d)
    assert_clean(d)


@pytest.mark.slow
def test_fifty_advisors_in_threads_pull_ten_thousand_messages_each_exactly_once(
    redis_server: RedisServer, redis_client: object
) -> None:
    _in_threads(redis_server, _work)


@pytest.mark.slow
def test_fifty_advisors_cycling_by_reply_and_next_pull_each_message_exactly_once(
    redis_server: RedisServer, redis_client: object
) -> None:
    _in_threads(redis_server, _work_one_call)


@pytest.mark.slow
def test_fifty_advisors_in_processes_pull_ten_thousand_messages_each_exactly_once(
    redis_server: RedisServer, redis_client: object
) -> None:
    d = Dispatcher(redis_server.client())
    _seed(d)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(ADVISORS) as pool:
        results = pool.starmap(_work, [(redis_server.url, f"adv{i}") for i in range(ADVISORS)])
    _assert_each_message_once(results, d)
