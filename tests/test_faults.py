"""Redis going away: a clear error, nothing half-written, and recovery without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import TEAM, assert_clean, message

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


def test_a_worker_reconnects_after_redis_was_away_for_some_seconds(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from workers.scheduling import RQJobs, queue

    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", server.url, "worker"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import os

        os.environ["REDIS_URL"] = server.url
        d = Dispatcher(server.client())
        d.create_team(TEAM)
        d.set_role(TEAM, "agent")
        d.set_advisor(TEAM, "ann", "agent")
        d.login(TEAM, "ann")
        time.sleep(1)  # the worker is listening
        server.stop()
        time.sleep(3)
        server.start()
        d.jobs = RQJobs(queue(server.client()))
        d.ingest(TEAM, message(1))
        d.next(TEAM, "ann")
        assert d.logout(TEAM, "ann") is not None  # a requeue job for the same worker
        deadline = time.monotonic() + 30
        while d.current(TEAM, "ann"):
            assert time.monotonic() < deadline, "the worker did not come back"
            time.sleep(0.2)
        assert d.stock(TEAM).total == 1
        assert_clean(d)
    finally:
        os.environ.pop("REDIS_URL", None)
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


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
