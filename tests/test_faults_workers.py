"""An RQ worker killed with SIGKILL in the middle of a big move: after the reconciler runs on
a new worker, every message is in exactly one place, counters exact (checked message by
message, and by `check`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis
from conftest import TEAM, assert_clean, make_team, message
from rq import SimpleWorker

from dispatcher import Dispatcher, keys
from dispatcher.testing import RedisServer
from workers.scheduling import RQJobs, enqueue_tick, queue

N = 10_000


@pytest.fixture
def rq_dispatcher(redis_server: RedisServer, redis_client: redis.Redis,
                  monkeypatch: pytest.MonkeyPatch) -> Dispatcher:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    return make_team(Dispatcher(redis_client, jobs=RQJobs(queue())), ("ann", "bob"),
                     login=True)


def kill_worker_midway(redis_server: RedisServer, progress: Callable[[], tuple[int, int]]) -> None:
    """Start a worker on small batches; SIGKILL it (and its work-horse) once the move is
    under way but not finished."""
    env = {**os.environ, "REDIS_URL": redis_server.url, "PUSHINBOX_BATCH_SIZE": "5"}
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", redis_server.url,
                               "worker", "--burst"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        done, left = progress()
        if done >= 500 and left > 0:
            break
        assert time.monotonic() < deadline and worker.poll() is None, (done, left)
        time.sleep(0.005)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    done, left = progress()
    assert done > 0 and left > 0, "the kill must land in the middle of the move"


def run_reconciler() -> None:
    """A new worker runs the reconciler (RQ lost the killed job: nothing else finishes it)."""
    q = queue()
    enqueue_tick(q, time.time() + 3600)  # a slot of its own: not deduplicated away
    SimpleWorker([q], connection=q.connection).work(burst=True)


def test_a_worker_killed_mid_logout_requeue_of_10000_messages_loses_nothing(
        rq_dispatcher: Dispatcher, redis_server: RedisServer) -> None:
    d = rq_dispatcher
    d.set_triage(TEAM, [{"name": "all to ann", "match": {}, "advisor": "ann"}])
    for start in range(0, N, 500):
        d.ingest_many(TEAM, [message(i) for i in range(start, start + 500)])
    d.set_triage(TEAM, [])
    assert d.redis.zcard(keys.current(TEAM, "ann")) == N
    assert d.logout(TEAM, "ann") is not None
    current = keys.current(TEAM, "ann")
    kill_worker_midway(redis_server, lambda: (N - d.redis.zcard(current), d.redis.zcard(current)))
    # Every batch was atomic: the only thing wrong now is what the reconciler is for.
    problems = d.check(TEAM).problems
    assert len(problems) == 1 and "logged out but still holds" in problems[0], problems

    run_reconciler()
    assert d.redis.zcard(current) == 0
    assert d.stock(TEAM).total == N
    waiting = d.messages(TEAM, [f"m{i}" for i in range(N)])
    assert len(waiting) == N
    assert all(m.state == "waiting" and m.reassigned and m.advisor is None for m in waiting)
    assert_clean(d)


def test_a_worker_killed_mid_rebucketing_loses_nothing(
        rq_dispatcher: Dispatcher, redis_server: RedisServer) -> None:
    d = rq_dispatcher
    for start in range(0, N, 500):
        d.ingest_many(TEAM, [message(i, customer_tags=["VIP"] if i % 10 == 0 else None)
                             for i in range(start, start + 500)])
    job = d.set_groups(TEAM, {"groups": [{"name": "VIP",
                                          "match": {"customer_tags_any": ["VIP"]}}]})["job"]
    assert job is not None

    def progress() -> tuple[int, int]:
        left = d.rebucket_progress(TEAM)["conversations_left"]
        return N - left, left

    kill_worker_midway(redis_server, progress)
    assert_clean(d)
    run_reconciler()
    assert d.rebucket_progress(TEAM)["done"]
    assert d.stock(TEAM).total == N
    order = d.preview(TEAM, 1000)  # the VIP conversations come first, oldest first
    assert [r["conversation"] for r in order] == [f"c{i}" for i in range(0, N, 10)]
    assert all(r["group"] == "VIP" for r in order)
    assert_clean(d)
