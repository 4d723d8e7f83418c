"""The RQ jobs, run by a real RQ worker (forking, with its scheduler) against real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from conftest import PRODUCT_GROUPS, TEAM, assert_clean, make_team, message, stop_worker
from rq import Worker
from rq.registry import ScheduledJobRegistry

from dispatcher import Dispatcher
from dispatcher.testing import FakeClock, RedisServer
from workers.scheduling import RQJobs, enqueue_tick, queue


@pytest.fixture
def rq_team(redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock,
            monkeypatch: pytest.MonkeyPatch) -> Dispatcher:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    return make_team(Dispatcher(redis_client, clock=clock, jobs=RQJobs(queue())),
                     ("ann", "bob"), login=True)


def run_worker(d: Dispatcher) -> None:
    q = queue()
    Worker([q], connection=q.connection).work(burst=True, with_scheduler=True)


def test_logout_requeue_runs_as_an_rq_job(rq_team: Dispatcher) -> None:
    d = rq_team
    d.batch_size = 3
    d.ingest_many(TEAM, [message(i, conv="c") for i in range(10)])
    d.next(TEAM, "ann")
    job_id = d.logout(TEAM, "ann")
    assert job_id is not None
    assert len(d.current(TEAM, "ann")) == 10  # offline at once, messages moved by the job
    run_worker(d)
    job = queue().fetch_job(job_id)
    assert job is not None and job.return_value() == 10
    assert d.current(TEAM, "ann") == []
    assert all(m.reassigned for m in d.preview(TEAM, 1)[0]["messages"])
    assert_clean(d)


def test_a_requeue_job_for_an_old_session_does_nothing(rq_team: Dispatcher) -> None:
    d = rq_team
    d.ingest(TEAM, message(1))
    d.next(TEAM, "ann")
    d.logout(TEAM, "ann")
    d.login(TEAM, "ann")  # back before the worker ran: she keeps her message
    run_worker(d)
    assert [m.id for m in d.current(TEAM, "ann")] == ["m1"]
    assert_clean(d)


def test_rebucketing_runs_as_an_rq_job(rq_team: Dispatcher) -> None:
    d = rq_team
    d.ingest_many(TEAM, [message(i, channel=("email", "whatsapp")[i % 2]) for i in range(50)])
    res = d.set_groups(TEAM, {"groups": [{"name": "WA", "match": {"channel_in": ["whatsapp"]}}]})
    assert res["job"]
    assert d.team_settings(TEAM)["rebucketing"]
    run_worker(d)
    assert not d.team_settings(TEAM)["rebucketing"]
    assert [r["group"] for r in d.preview(TEAM, 26)] == ["WA"] * 25 + ["everything else"]
    assert_clean(d)


def test_the_end_of_a_break_is_scheduled_at_the_end_of_working_hours(
    rq_team: Dispatcher, clock: FakeClock
) -> None:
    d = rq_team
    d.set_hours(TEAM, {"timezone": "UTC", "week": {"tue": ["08:00-10:00"]}})
    clock.set(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
    b = d.start_break(TEAM, "ann")
    assert b.job is not None
    scheduled = ScheduledJobRegistry(queue=queue())
    assert b.job in scheduled.get_job_ids()
    assert scheduled.get_scheduled_time(b.job) == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    run_worker(d)  # that time has passed on the real clock: the scheduler enqueues it
    s = d.advisor_stats(TEAM, "ann", datetime(2026, 3, 10).date())
    assert (s.state, s.break_seconds) == ("online", 1800.0)


def test_the_reconciler_tick_runs_as_an_rq_job(rq_team: Dispatcher, clock: FakeClock) -> None:
    d = rq_team
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.ingest(TEAM, message(1))
    d.next(TEAM, "ann")
    # a logout whose requeue job was lost (RQ may drop jobs): only the tick saves m1
    d.call("logout", TEAM, adv="ann")
    enqueue_tick(queue(), 0)
    run_worker(d)
    assert d.current(TEAM, "ann") == []
    assert d.preview(TEAM, 1)[0]["group"] == "Automatically reassigned"
    assert_clean(d)


def test_rq_info_shows_the_pushinbox_queue_and_its_workers(redis_server: RedisServer,
                                                           redis_client: redis.Redis) -> None:
    import os
    import shutil
    import subprocess
    import sys
    import time

    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", redis_server.url,
                               "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        rq = shutil.which("rq", path=os.path.dirname(sys.executable)) or "rq"
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run([rq, "info", "--url", redis_server.url, "pushinbox"],
                                 capture_output=True, text=True, timeout=30).stdout
            if "1 worker(s)" in out or "1 workers" in out:
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.3)
        assert "pushinbox" in out
    finally:
        stop_worker(worker)
