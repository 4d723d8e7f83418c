"""Webhooks: signed deliveries by RQ jobs to a real HTTP receiver on loopback, retried with
backoff; a failing or hanging endpoint never slows an assignment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from conftest import TEAM, Api, assert_clean, message, stop_worker
from rq import SimpleWorker

from dispatcher import webhooks
from dispatcher.testing import RedisServer
from workers.hooks import pump
from workers.scheduling import hook_queue, queue

LOOPBACK = {"PUSHINBOX_HOOK_ALLOW": "127.0.0.1/32"}


class Receiver:
    """An HTTP server recording each POST; answers come from ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.waiting.set()
                owner.gate.wait(30)
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, b in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.gate.set()
    r.server.shutdown()


@pytest.fixture
def rq_env(redis_server: RedisServer, redis_client: redis.Redis,
           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    monkeypatch.setenv("PUSHINBOX_HOOK_ALLOW", "127.0.0.1/32")  # the receiver is on loopback


def run_jobs() -> None:
    q = queue()
    SimpleWorker([q, hook_queue(q.connection)], connection=q.connection).work(burst=True)


def register(api: Api, url: str, events: list[str]) -> dict[str, Any]:
    res = api.sup("POST", "/webhooks", json={"url": url, "events": events})
    assert res.status_code == 201, res.text
    hook: dict[str, Any] = res.json()
    assert hook["secret"].startswith("whsec_")
    return hook


def test_events_are_delivered_signed_to_the_registered_url(
        api: Api, receiver: Receiver, rq_env: None) -> None:
    hook = register(api, receiver.url, ["logged_in", "assigned", "replied"])
    api.push(message(1))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    api.adv("POST", "ann", "/messages/m1/reply")
    api.adv("POST", "ann", "/break")  # not subscribed: not delivered

    assert pump(api.d, hook_queue(), TEAM, "test") == 1  # one job carries the three events
    run_jobs()

    assert [b["type"] for b in receiver.bodies()] == ["logged_in", "assigned", "replied"]
    assigned = receiver.bodies()[1]
    assert assigned["team"] == TEAM
    assert assigned["data"]["message"] == "m1"
    assert assigned["data"]["advisor"] == "ann"
    assert assigned["data"]["via"] == "push"
    for headers, body in receiver.received:
        assert webhooks.verify_signature(hook["secret"], headers["pushinbox-signature"], body)
        assert not webhooks.verify_signature("whsec_wrong", headers["pushinbox-signature"], body)
        assert headers["pushinbox-hook"] == hook["id"]
        assert headers["pushinbox-delivery"] == json.loads(body)["id"]
        assert headers["pushinbox-event"] == json.loads(body)["type"]
    # Nothing new: the pump has nothing more to hand over.
    assert pump(api.d, hook_queue(), TEAM, "test") == 0
    listed = api.sup("GET", "/webhooks").json()
    assert listed == [{k: v for k, v in hook.items() if k != "secret"}]


def test_a_failed_delivery_is_retried_until_the_receiver_accepts_it(
        api: Api, receiver: Receiver, rq_env: None) -> None:
    register(api, receiver.url, ["logged_in"])
    receiver.statuses = [500, 503]
    api.adv("POST", "ann", "/session")
    assert pump(api.d, hook_queue(), TEAM, "test", backoff=(0, 0, 0)) == 1
    run_jobs()
    types = [b["type"] for b in receiver.bodies()]
    assert types == ["logged_in"] * 3  # 500, 503, then 200
    assert len({b["id"] for b in receiver.bodies()}) == 1


def test_a_hanging_endpoint_never_slows_an_assignment(
        api: Api, receiver: Receiver, rq_env: None, redis_server: RedisServer) -> None:
    register(api, receiver.url, ["assigned", "replied"])
    receiver.gate.clear()  # the receiver holds every request until the test lets go
    api.push(message(1), message(2))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    pump(api.d, hook_queue(), TEAM, "test")
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", redis_server.url,
                               "worker", "--burst"])
    assert receiver.waiting.wait(20)  # a delivery is now stuck in the receiver

    reply = api.adv("POST", "ann", "/messages/m1/reply")
    second = api.adv("POST", "ann", "/next")
    assert reply.status_code == 200
    assert second.status_code == 200
    assert second.json()["messages"][0]["id"] == "m2"
    assert receiver.received == []  # still stuck while the advisor worked on

    receiver.gate.set()
    assert worker.wait(30) == 0
    assert [b["type"] for b in receiver.bodies()] == ["assigned"]
    assert_clean(api.d)


def test_a_new_hook_gets_no_backlog_and_a_removed_hook_gets_nothing(
        api: Api, receiver: Receiver, rq_env: None) -> None:
    api.adv("POST", "ann", "/session")  # before any hook: never delivered
    hook = register(api, receiver.url, ["logged_out", "logged_in"])
    api.adv("DELETE", "ann", "/session")
    assert pump(api.d, hook_queue(), TEAM, "test") == 1
    run_jobs()
    assert [b["type"] for b in receiver.bodies()] == ["logged_out"]
    assert api.sup("DELETE", f"/webhooks/{hook['id']}").status_code == 200
    api.adv("POST", "ann", "/session")
    assert pump(api.d, hook_queue(), TEAM, "test") == 0
    run_jobs()
    assert [b["type"] for b in receiver.bodies()] == ["logged_out"]
    # Registered again after every hook was removed: still nothing from before.
    register(api, receiver.url, ["logged_out", "logged_in"])
    api.adv("DELETE", "ann", "/session")
    assert pump(api.d, hook_queue(), TEAM, "test") == 1
    run_jobs()
    assert [b["type"] for b in receiver.bodies()] == ["logged_out", "logged_out"]


def test_bad_webhook_registrations_are_refused_naming_the_field(api: Api) -> None:
    bad = api.sup("POST", "/webhooks", json={"url": "ftp://x", "events": ["replied"]})
    assert bad.status_code == 422 and bad.json()["field"] == "url"
    bad = api.sup("POST", "/webhooks", json={"url": "http://x", "events": ["exploded"]})
    assert bad.status_code == 422 and bad.json()["field"] == "events[0]"
    assert api.sup("GET", "/webhooks").json() == []


def test_a_running_worker_pumps_and_delivers_by_itself(
        api: Api, receiver: Receiver, redis_server: RedisServer) -> None:
    """Production wiring: `pushinbox worker` (its pump thread and RQ) delivers with no help."""
    hook = register(api, receiver.url, ["logged_in", "logged_out"])
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", redis_server.url,
                               "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, **LOOPBACK}, start_new_session=True)
    try:
        api.adv("POST", "ann", "/session")
        api.adv("DELETE", "ann", "/session")
        deadline = time.monotonic() + 30
        while len(receiver.received) < 2:
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.1)
    finally:
        stop_worker(worker)
    assert [b["type"] for b in receiver.bodies()] == ["logged_in", "logged_out"]
    headers, body = receiver.received[0]
    assert webhooks.verify_signature(hook["secret"], headers["pushinbox-signature"], body)


def test_events_a_dead_pump_read_but_never_handed_over_are_claimed_again(
        api: Api, receiver: Receiver, rq_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import hooks as pumps

    register(api, receiver.url, ["logged_in"])
    api.adv("POST", "ann", "/session")
    stream = f"pi:{{{TEAM}}}:events"
    # A pump reads the event, then dies before enqueueing or acknowledging it.
    group = f"h:{api.sup('GET', '/webhooks').json()[0]['id']}"
    api.d.redis.xreadgroup(group, "dead-pump", {stream: ">"}, count=10)
    assert pump(api.d, hook_queue(), TEAM, "live-pump") == 0  # nothing new for the group
    monkeypatch.setattr(pumps, "RECLAIM_IDLE_MS", 0)  # (in production: after a minute)
    assert pump(api.d, hook_queue(), TEAM, "live-pump") == 1
    run_jobs()
    assert [b["type"] for b in receiver.bodies()] == ["logged_in"]
    assert api.d.redis.xpending(stream, group)["pending"] == 0
