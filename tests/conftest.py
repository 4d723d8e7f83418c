"""Every test talks to a real redis-server started by dispatcher.testing on a free port."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher import Dispatcher, keys
from dispatcher.testing import FakeClock

TEAM = "acme"

PRODUCT_GROUPS = {
    "order": "oldest_conversation",
    "groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Automatically reassigned", "match": {"reassigned": True}},
    ],
}


def message(n: int | str, *, conv: str | None = None, customer: str | None = None,
            channel: str = "webchat", **extra: Any) -> dict[str, Any]:
    """A valid incoming message; by default its own conversation and customer."""
    return {
        "id": f"m{n}",
        "conversation": conv or f"c{n}",
        "customer": customer or f"u{n}",
        "channel": channel,
        "body": {"text": f"message {n}"},
        **extra,
    }


class LaterJobs:
    """A jobs runner that runs nothing now: the test runs the requeue or re-bucketing when it
    chooses, as a late worker would."""

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> None:
        return None

    def rebucket(self, team: str) -> None:
        return None

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))


def make_team(d: Dispatcher, advisors: tuple[str, ...] = ("ann", "bob", "cid"),
              login: bool = False) -> Dispatcher:
    """Team acme with role 'agent' (push) and the advisors, optionally logged in."""
    d.create_team(TEAM)
    d.set_role(TEAM, "agent", push=True)
    for adv in advisors:
        d.set_advisor(TEAM, adv, "agent")
        if login:
            d.login(TEAM, adv)
    return d


@pytest.fixture
def team(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    """A team 'acme' with role 'agent' (push) and advisors ann, bob, cid, on a test clock."""
    return make_team(Dispatcher(redis_client, clock=clock))


@pytest.fixture
def online(team: Dispatcher) -> Dispatcher:
    for adv in ("ann", "bob", "cid"):
        team.login(TEAM, adv)
    return team


def queued(r: redis.Redis, queue: str) -> list[bytes]:
    """The conversations of a queue in order, from its buckets (scripts/lua/includes/queue.lua)
    and an earlier version's whole set under its own key."""
    rows: list[tuple[bytes, float]] = list(r.zrange(queue, 0, -1, withscores=True))
    for b in r.zrange(keys.queue_index(queue), 0, -1):
        name = b.decode() if isinstance(b, bytes) else b
        if name:
            rows += r.zrange(keys.queue_bucket(queue, name), 0, -1, withscores=True)
    return [m for m, _ in sorted(rows, key=lambda x: (x[1], x[0]))]


def script_commands(r: redis.Redis) -> int:
    """The commands scripts ran since the last CONFIG RESETSTAT (not the FCALL / EVALSHA
    around them, nor the test's own INFO and CONFIG): what a call costs Redis, counted."""
    return sum(int(v["calls"]) for k, v in r.info("commandstats").items()
               if k not in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_info",
                            "cmdstat_config", "cmdstat_config|resetstat"))


def assert_clean(d: Dispatcher, team: str = TEAM) -> None:
    report = d.check(team)
    assert report.ok, report.problems


def press_until_empty(port: int, advisors: Iterable[str],
                      also: Iterable[Callable[[], object]] = ()) -> dict[str, list[str]]:
    """Each advisor in a thread of their own (their own connection) presses and replies until
    the stock is empty, while ``also`` runs in threads beside them; what each one got."""
    got: dict[str, list[str]] = {a: [] for a in advisors}

    def work(a: str) -> None:
        mine = Dispatcher(redis.Redis(port=port))
        while True:
            push = mine.next(TEAM, a)
            if push.status == "empty":
                return
            for m in push.messages:
                got[a].append(m.id)
                mine.reply(TEAM, a, m.id)

    threads = [threading.Thread(target=work, args=(a,)) for a in got]
    threads += [threading.Thread(target=f) for f in also]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def pushed_ids(d: Dispatcher, advisor: str, count: int,
               act: Callable[[str], object] | None = None) -> list[str]:
    """Press next ``count`` times, replying to each push; the first message id of each push."""
    out = []
    for _ in range(count):
        p = d.next(TEAM, advisor)
        assert p.status == "assigned", p
        for m in p.messages:
            (act or (lambda mid: d.reply(TEAM, advisor, mid)))(m.id)
        out.append(p.messages[0].id)
    return out


class Api:
    """An HTTP client of the running service, with a token per scope for team acme."""

    def __init__(self, base_url: str, d: Dispatcher) -> None:
        import httpx

        from dispatcher import tokens

        self.d = d
        self.http = httpx.Client(base_url=base_url, timeout=30)
        make = lambda scope, **kw: d.run(tokens.create_token(scope, **kw)).token  # noqa: E731
        self.admin = make("admin")
        self.supervisor = make("supervisor", team=TEAM)
        self.ingest = make("ingest", teams=[TEAM])
        self.advisor = {a: make("advisor", team=TEAM, advisor=a) for a in ("ann", "bob")}

    def call(self, method: str, path: str, token: str | None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kw)

    def adv(self, method: str, advisor: str, path: str, **kw: Any) -> Any:
        """An advisor acting on their own resources: /v1/teams/acme/advisors/<advisor><path>."""
        return self.call(method, f"/v1/teams/{TEAM}/advisors/{advisor}{path}",
                         self.advisor[advisor], **kw)

    def sup(self, method: str, path: str, **kw: Any) -> Any:
        return self.call(method, f"/v1/teams/{TEAM}{path}", self.supervisor, **kw)

    def push(self, *messages: dict[str, Any]) -> Any:
        res = self.call("POST", f"/v1/teams/{TEAM}/messages/batch", self.ingest,
                        json={"messages": list(messages)})
        assert res.status_code == 202, res.text
        return res.json()


@pytest.fixture
def http_team(redis_client: redis.Redis) -> Dispatcher:
    """Team acme (role agent, advisors ann, bob, cid) on the Redis clock the service uses."""
    return make_team(Dispatcher(redis_client))


@pytest.fixture
def api(service: Any, http_team: Dispatcher) -> Iterator[Api]:
    client = Api(service.url, http_team)
    yield client
    # A live stream left open would go on writing its advisor's presence into the next
    # test's team: every test closes its streams, and the service must have ended them.
    deadline = time.monotonic() + 5
    while (open_ := open_streams(client)) and time.monotonic() < deadline:
        time.sleep(0.05)
    client.http.close()
    assert not open_, f"{open_} live streams still open after the test"


def open_streams(api: Api) -> float:
    text = api.http.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("pushinbox_sse_clients"))


def pushinbox(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as the README has users type it."""
    exe = Path(sys.executable).parent / "pushinbox"
    return subprocess.run([str(exe), "--redis-url", url, *args], capture_output=True,
                          text=True, timeout=120, check=False)


def stop_worker(worker: Any) -> None:
    """Stop a `pushinbox worker` started with ``start_new_session=True``: SIGTERM as ops
    would, then its whole process group, so an RQ scheduler child that outlived it (it forks
    one) cannot go on writing its locks into the next test's Redis."""
    import contextlib
    import os
    import signal
    import subprocess

    if worker.poll() is None:
        worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # nothing of it left
        os.killpg(worker.pid, signal.SIGKILL)
