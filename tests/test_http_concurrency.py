"""Several service processes at once: they share nothing but Redis, so advisors pressing at
the same instant through different processes never get the same message."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from conftest import TEAM, assert_clean, message

from dispatcher import Dispatcher, tokens
from dispatcher.testing import RedisServer, ServiceProcess

ADVISORS = 16
MESSAGES = 400


@pytest.fixture
def two_processes(redis_server: RedisServer) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(redis_server.url, workers=2, access_log=False).start()
    yield svc
    svc.stop()


def test_advisors_pressing_through_two_processes_never_share_a_message(
        http_team: Dispatcher, two_processes: ServiceProcess) -> None:
    d = http_team
    for i in range(ADVISORS):
        d.set_advisor(TEAM, f"a{i}", "agent")
        d.login(TEAM, f"a{i}")
    d.ingest_many(TEAM, [message(i) for i in range(MESSAGES)])
    got: dict[str, list[str]] = {}
    errors: list[str] = []

    def advisor(name: str) -> None:
        token = d.run(tokens.create_token("advisor", team=TEAM, advisor=name)).token
        base = f"/v1/teams/{TEAM}/advisors/{name}"
        mine = got.setdefault(name, [])
        # A new connection per press spreads the presses over both processes.
        while True:
            with httpx.Client(base_url=two_processes.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                res = http.post(base + "/next")
                if res.status_code == 204:
                    return
                if res.status_code != 200:
                    errors.append(res.text)
                    return
                for m in res.json()["messages"]:
                    mine.append(m["id"])
                    if http.post(f"{base}/messages/{m['id']}/reply").status_code != 200:
                        errors.append(f"reply {m['id']}")

    threads = [threading.Thread(target=advisor, args=(f"a{i}",)) for i in range(ADVISORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    handed = [m for ids in got.values() for m in ids]
    assert len(handed) == len(set(handed)) == MESSAGES
    assert d.stock(TEAM).total == 0
    assert_clean(d)
