"""Webhooks cannot reach inside the network, and one team's receivers cannot hold the
workers that every team shares (a real `pushinbox worker` process, real receivers)."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from conftest import TEAM, Api, message, stop_worker
from test_http_hostile import guarded  # noqa: F401 - the service without PUSHINBOX_HOOK_ALLOW
from test_http_webhooks import LOOPBACK, Receiver, register, run_jobs

from dispatcher import Dispatcher, webhooks
from dispatcher.testing import RedisServer, ServiceProcess
from workers.hooks import pump
from workers.scheduling import RQJobs, hook_queue, queue


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:6379/", "http://localhost/hook", "http://169.254.169.254/latest",
    "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.1/", "http://100.64.0.1/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://[fe80::1]/",
    "http://224.0.0.1/", "http://user:pw@example.com/", "http://127.1/"])
def test_webhooks_to_internal_addresses_are_refused_by_default(
        guarded: ServiceProcess, url: str, redis_client: redis.Redis) -> None:  # noqa: F811
    from dispatcher import tokens

    d = Dispatcher(redis_client)
    d.create_team("ssrf")
    sup = d.run(tokens.create_token("supervisor", team="ssrf")).token
    import httpx

    res = httpx.post(f"{guarded.url}/v1/teams/ssrf/webhooks", json={"url": url,
                     "events": ["replied"]}, headers={"Authorization": f"Bearer {sup}"})
    assert res.status_code == 422, res.text
    assert res.json()["field"] == "url"
    assert d.run(webhooks.list_hooks("ssrf")) == []


def test_an_allowed_destination_is_checked_again_before_each_delivery(
        api: Api, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> None:
    receiver = Receiver()
    try:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        register(api, receiver.url, ["logged_in"])  # the service allows loopback
        api.adv("POST", "ann", "/session")
        monkeypatch.delenv("PUSHINBOX_HOOK_ALLOW", raising=False)  # the operator withdrew it
        assert pump(api.d, hook_queue(), TEAM, "t", backoff=()) == 1
        run_jobs()
        assert receiver.received == []
    finally:
        receiver.server.shutdown()


def test_the_hook_limit_holds_under_concurrent_registrations(api: Api) -> None:
    def create(i: int) -> int:
        res = api.sup("POST", "/webhooks", json={"url": f"http://127.0.0.1:9/{i}",
                                                "events": ["replied"]})
        return int(res.status_code)

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(create, range(60)))
    assert codes.count(201) == webhooks.MAX_HOOKS
    assert codes.count(422) == 60 - webhooks.MAX_HOOKS
    assert len(api.sup("GET", "/webhooks").json()) == webhooks.MAX_HOOKS


class HostileReceiver:
    """Accepts, then either trickles the status line a byte a second or streams a huge body."""

    def __init__(self, mode: str) -> None:
        self.hits = 0
        self.sent: list[int] = []  # bytes of body each connection got out before it was cut
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.hits += 1
                sock: socket.socket = self.request
                sock.settimeout(5)
                try:
                    sock.recv(65536)
                    if mode == "trickle":
                        for b in b"HTTP/1.1 200 OK\r\n":
                            sock.sendall(bytes([b]))
                            time.sleep(1)
                    else:
                        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 800000000\r\n\r\n")
                        chunk = b"x" * 65536
                        owner.sent.append(0)
                        for _ in range(800):  # 50 MB, then give up
                            sock.sendall(chunk)
                            owner.sent[-1] += len(chunk)
                except OSError:
                    return

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[tuple[HostileReceiver, HostileReceiver]]:
    pair = HostileReceiver("trickle"), HostileReceiver("huge")
    yield pair
    for r in pair:
        r.close()


def test_a_hostile_receiver_in_one_team_delays_neither_another_teams_jobs_nor_its_deliveries(
        redis_server: RedisServer, redis_client: redis.Redis, api: Api,
        hostile: tuple[HostileReceiver, HostileReceiver]) -> None:
    trickle, huge = hostile
    d = api.d  # team acme: the neighbour with the hostile receivers
    register(api, trickle.url, ["logged_in", "logged_out"])
    register(api, huge.url, ["logged_in", "logged_out"])
    for _ in range(100):  # 200 events for each hostile hook
        api.adv("POST", "bob", "/session")
        d.logout(TEAM, "bob")
    # Team calm: an ordinary receiver, and an advisor whose logout needs the requeue job.
    calm = Dispatcher(redis_client, jobs=RQJobs(queue(redis.Redis.from_url(redis_server.url))))
    calm.create_team("calm")
    calm.set_role("calm", "agent")
    calm.set_advisor("calm", "zoe", "agent")
    good = Receiver()
    env = {**os.environ, **LOOPBACK, "REDIS_URL": redis_server.url}
    env.pop("RQ_REDIS_URL", None)
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", redis_server.url,
                               "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (trickle.hits and huge.hits):  # the hostile deliveries are under way
            assert time.monotonic() < deadline, (trickle.hits, huge.hits)
            time.sleep(0.1)
        from dispatcher import tokens

        sup = calm.run(tokens.create_token("supervisor", team="calm")).token
        res = api.http.post("/v1/teams/calm/webhooks", json={"url": good.url,
                            "events": ["logged_out"]}, headers={"Authorization": f"Bearer {sup}"})
        assert res.status_code == 201, res.text
        calm.ingest_many("calm", [message(i) for i in range(3)])
        calm.login("calm", "zoe")
        calm.next("calm", "zoe")
        started = time.monotonic()
        job = calm.logout("calm", "zoe")
        assert job is not None  # handed to the worker, not run inline
        while calm.stock("calm").total != 3 or not good.received:
            assert time.monotonic() - started < 15, (calm.stock("calm"), good.received)
            time.sleep(0.05)
        assert calm.check("calm").ok
        assert huge.sent and max(huge.sent) < 20 * 2**20, huge.sent  # its body was never read
    finally:
        stop_worker(worker)
        good.server.shutdown()
