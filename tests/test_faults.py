"""Redis going away: a clear error, nothing half-written, and recovery without a restart."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEAM, assert_clean, make_team, message, stop_worker

from dispatcher import Dispatcher, UnavailableError
from dispatcher.testing import RedisServer


def test_redis_unreachable_is_a_clear_error_and_the_dispatcher_recovers_by_itself(
    tmp_path: Path,
) -> None:
    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    try:
        d = Dispatcher(server.client())
        d.create_team(TEAM)
        d.set_role(TEAM, "agent")
        d.set_advisor(TEAM, "ann", "agent")
        d.login(TEAM, "ann")
        d.ingest(TEAM, message(1))
        server.stop()
        with pytest.raises(UnavailableError, match="Redis is unreachable"):
            d.ingest(TEAM, message(2))
        with pytest.raises(UnavailableError):
            d.stock(TEAM)
        server.start()  # same port, same append-only file
        # the same Dispatcher object works again: scripts reloaded on NOSCRIPT
        assert d.ingest(TEAM, message(2)) == "queued"
        assert [m.id for m in d.next(TEAM, "ann").messages] == ["m1"]
        assert d.stock(TEAM).total == 1
        assert_clean(d)
    finally:
        server.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


@contextlib.contextmanager
def worker_of(server: RedisServer) -> Iterator[subprocess.Popen[bytes]]:
    """`pushinbox --redis-url URL worker`, as ops start it."""
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", server.url, "worker"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        yield worker
    finally:
        stop_worker(worker)


def wait_until_listening(server: RedisServer, worker: subprocess.Popen[bytes]) -> None:
    from rq import Worker

    deadline = time.monotonic() + 30
    while not Worker.all(connection=server.client()):
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.05)


def assert_the_worker_runs_a_logout_requeue(d: Dispatcher) -> None:
    """ann holds a message and logs out: the worker hands it back (after an outage RQ's own
    reconnection backs off for a few seconds first: the bound is generous)."""
    from workers.scheduling import RQJobs, queue

    d.jobs = RQJobs(queue(d.redis))
    d.ingest(TEAM, message(1))
    d.next(TEAM, "ann")
    assert d.logout(TEAM, "ann") is not None
    deadline = time.monotonic() + 30
    while d.current(TEAM, "ann"):
        assert time.monotonic() < deadline, "the worker did not run the requeue"
        time.sleep(0.05)
    assert d.stock(TEAM).total == 1
    assert_clean(d)


def test_a_worker_reconnects_after_redis_was_away_for_some_seconds(tmp_path: Path) -> None:
    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    try:
        with worker_of(server) as worker:
            d = make_team(Dispatcher(server.client()), login=True)
            wait_until_listening(server, worker)
            server.stop()
            time.sleep(3)  # Redis away for some seconds: the fault under test
            server.start()
            assert_the_worker_runs_a_logout_requeue(d)
    finally:
        server.stop()


def test_a_worker_started_before_its_redis_starts_working_once_redis_is_up(
        tmp_path: Path) -> None:
    # docker compose or systemd may start the worker first: it waits, it does not exit.
    server = RedisServer(directory=str(tmp_path))
    try:
        with worker_of(server) as worker:
            time.sleep(2)  # the worker tries, and fails, to reach a Redis not started yet
            assert worker.poll() is None, "the worker exited while Redis was down"
            server.start()
            wait_until_listening(server, worker)
            assert_the_worker_runs_a_logout_requeue(
                make_team(Dispatcher(server.client()), login=True))
    finally:
        server.stop()


def test_a_service_process_killed_mid_request_leaves_nothing_half_applied(
        redis_server: RedisServer, http_team: Dispatcher) -> None:
    import signal
    import threading

    import httpx

    from dispatcher import tokens
    from dispatcher.testing import ServiceProcess

    d = http_team
    d.ingest_many(TEAM, [message(i) for i in range(3000)])
    toks = {a: d.run(tokens.create_token("advisor", team=TEAM, advisor=a)).token
            for a in ("ann", "bob", "cid")}
    svc = ServiceProcess(redis_server.url, access_log=False).start()
    stop = threading.Event()

    def press(adv: str) -> None:
        base = f"/v1/teams/{TEAM}/advisors/{adv}"
        with httpx.Client(base_url=svc.url, timeout=5,
                          headers={"Authorization": f"Bearer {toks[adv]}"}) as http:
            try:
                http.post(base + "/session")
                while not stop.is_set():
                    for m in http.post(base + "/next").json()["messages"]:
                        http.post(f"{base}/messages/{m['id']}/reply")
            except (httpx.HTTPError, ValueError, KeyError):
                return  # the service died under us

    threads = [threading.Thread(target=press, args=(a,)) for a in toks]
    for t in threads:
        t.start()
    time.sleep(1.5)
    assert svc.proc is not None
    svc.proc.send_signal(signal.SIGKILL)
    svc.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts["messages"] == 3000
    assert report.counts["done"] > 0


def test_a_worker_runs_scheduled_jobs_again_soon_after_redis_was_away(tmp_path: Path) -> None:
    # Webhook retries and break ends are scheduled jobs: RQ's scheduler (a child process of
    # the worker) moves them to the queue when due. An outage kills that child; RQ itself
    # starts a new one only at its ten-minute maintenance, so retries waited up to ten minutes.
    from datetime import timedelta

    from workers import jobs
    from workers.scheduling import queue

    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    try:
        with worker_of(server) as worker:
            make_team(Dispatcher(server.client()), login=True)
            wait_until_listening(server, worker)
            time.sleep(1)  # the scheduler child has started
            server.stop()
            time.sleep(3)  # Redis away for some seconds: the fault under test
            server.start()
            job = queue(server.client()).enqueue_in(timedelta(seconds=1), jobs.tick, TEAM)
            deadline = time.monotonic() + 45
            while job.get_status(refresh=True) != "finished":
                assert time.monotonic() < deadline, (
                    f"a job scheduled after the outage is still {job.get_status()}")
                time.sleep(0.2)
    finally:
        server.stop()
