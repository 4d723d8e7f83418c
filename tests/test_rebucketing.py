"""Changing priority settings re-buckets the waiting stock in atomic batches."""

from __future__ import annotations

import threading

from conftest import PRODUCT_GROUPS, TEAM, assert_clean, message

from dispatcher import Dispatcher
from dispatcher.testing import FakeClock


def _seed(d: Dispatcher, clock: FakeClock, n: int) -> None:
    batch = []
    for i in range(n):
        batch.append(message(i, channel=("whatsapp", "email")[i % 2],
                             customer_tags=["VIP"] if i % 5 == 0 else []))
        if len(batch) == 100:
            d.ingest_many(TEAM, batch)
            batch = []
            clock.advance(1)
    if batch:
        d.ingest_many(TEAM, batch)


def test_a_settings_change_rebuckets_the_stock_in_the_new_order(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.batch_size = 7
    d.set_groups(TEAM, PRODUCT_GROUPS)
    _seed(d, clock, 60)
    assert d.preview(TEAM, 1)[0]["group"] == "VIP"
    res = d.set_groups(TEAM, {"groups": [{"name": "WhatsApp",
                                          "match": {"channel_in": ["whatsapp"]}}]})
    assert res["rebucket"]
    assert not d.team_settings(TEAM)["rebucketing"]
    preview = d.preview(TEAM, 60)
    assert [r["group"] for r in preview] == ["WhatsApp"] * 30 + ["everything else"] * 30
    ids = [int(r["messages"][0].id[1:]) for r in preview]
    assert ids[:30] == sorted(ids[:30]) and ids[30:] == sorted(ids[30:])
    assert_clean(d)


def test_while_rebucketing_runs_nothing_is_lost_duplicated_or_pushed_twice(
    redis_client: object, online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    _seed(d, clock, 2000)
    # the change is stored, the re-bucketing left to a job we run by hand in batches
    jobs: list[str] = []

    class Deferred:
        def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str:
            return "x"

        def rebucket(self, team: str) -> str:
            jobs.append(team)
            return "job"

        def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> None:
            return None

    d.jobs = Deferred()
    d.set_groups(TEAM, {"order": "newest_conversation", "groups": [
        {"name": "Email", "match": {"channel_in": ["email"]}}]})
    assert jobs == [TEAM]
    assert d.team_settings(TEAM)["rebucketing"]
    # presses while the old version's stock is not yet moved
    pushed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def advisor(name: str) -> None:
        mover = Dispatcher(d.redis, clock=clock)
        while not stop.is_set():
            p = mover.next(TEAM, name)
            if p.status == "empty":
                return
            with lock:
                pushed.extend(m.id for m in p.messages)
            for m in p.messages:
                mover.archive(TEAM, name, m.id)

    threads = [threading.Thread(target=advisor, args=(a,)) for a in ("ann", "bob", "cid")]
    for t in threads:
        t.start()
    d.batch_size = 50
    moved = d.rebucket(TEAM)
    for t in threads:
        t.join()
    assert moved > 0
    # every message pushed exactly once, none left, none twice
    assert sorted(pushed) == sorted(f"m{i}" for i in range(2000))
    assert d.stock(TEAM).total == 0
    assert d.check(TEAM).counts["done"] == 2000
    assert_clean(d)
    assert not d.team_settings(TEAM)["rebucketing"]
