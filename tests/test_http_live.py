"""Live updates over Server-Sent Events, from the running service."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from conftest import TEAM, Api, message, open_streams


class Stream:
    """An SSE client in a thread, collecting (event, id, data) as they arrive. ``close()``
    hangs up (a socket shutdown wakes the reading thread) so the service ends the stream at
    once, as it does when a browser tab closes."""

    def __init__(self, api: Api, path: str, token: str, last_event_id: str | None = None):
        self.events: list[tuple[str, str, Any]] = []
        self.status = 0
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        url = api.http.base_url
        self._conn = http.client.HTTPConnection(str(url.host), url.port, timeout=30)
        self._conn.connect()
        self._conn.sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, args=(path, headers), daemon=True)
        self._thread.start()

    def _run(self, path: str, headers: dict[str, str]) -> None:
        try:
            self._read(path, headers)
        except (http.client.HTTPException, OSError, ValueError):
            return  # closed by the test, or the service stopped

    def _read(self, path: str, headers: dict[str, str]) -> None:
        self._conn.request("GET", path, headers=headers)
        res = self._conn.getresponse()
        self.status = res.status
        event, eid, data = "message", "", ""
        while raw := res.readline():
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and data:
                self.events.append((event, eid, json.loads(data)))
                event, eid, data = "message", "", ""

    def wait_for(self, test: Callable[[tuple[str, str, Any]], bool],
                 timeout: float = 10) -> tuple[str, str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if test(e):
                    return e
            time.sleep(0.02)
        raise AssertionError(f"no such event; got {self.events}")

    def close(self) -> None:
        """Hang up and wait for the reading thread to end."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._conn.close()


def opened(api: Api, path: str, token: str) -> tuple[int, Any, Any]:
    """How the service answers a stream's opening: its status, its problem (None for a
    stream, which is left at once) and headers."""
    with api.http.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as res:
        problem = json.loads(res.read()) if res.status_code != 200 else None
        return res.status_code, problem, res.headers


def stock_total(n: int) -> Callable[[tuple[str, str, Any]], bool]:
    return lambda e: e[0] == "stock" and e[2]["total"] == n


def test_a_new_team_client_gets_the_stock_first_then_live_changes(api: Api) -> None:
    api.push(message(1, channel="whatsapp"))
    s = Stream(api, f"/v1/teams/{TEAM}/live", api.supervisor)
    try:
        first = s.wait_for(lambda e: True)
        assert first[0] == "stock"
        assert first[2] == {"total": 1, "channels": [
            {"channel": "whatsapp", "waiting": 1, "oldest_age_s": first[2]["channels"][0][
                "oldest_age_s"]}]}
        api.push(message(2, channel="email"))
        e = s.wait_for(stock_total(2))
        assert {c["channel"]: c["waiting"] for c in e[2]["channels"]} == {"whatsapp": 1,
                                                                          "email": 1}
        api.adv("POST", "ann", "/session")
        api.adv("POST", "ann", "/next")
        s.wait_for(stock_total(1))
    finally:
        s.close()


def test_an_advisor_hears_of_a_supervisors_assignment_and_of_their_own_figures(
        api: Api) -> None:
    api.push(message(1), message(2))
    api.adv("POST", "ann", "/session")
    s = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
    try:
        s.wait_for(lambda e: e[0] == "figures")
        api.sup("POST", "/messages/m2/assign", json={"advisor": "ann"})
        assigned = s.wait_for(lambda e: e[0] == "assigned")
        assert assigned[2]["id"] == "m2"
        assert assigned[2]["via"] == "manual"
        api.adv("POST", "ann", "/messages/m2/reply")
        figures = s.wait_for(lambda e: e[0] == "figures" and e[2]["responses"] == 1)
        assert figures[2]["advisor"] == "ann"
        assert figures[2]["stock"] == 1
    finally:
        s.close()


def test_a_console_hears_that_a_message_went_back_to_the_stock_from_its_hands(
        api: Api) -> None:
    """A requeue's event names the message, not the advisor it left: the figures of the
    consoles open are read again (what they hold went down), not sent as they were."""
    api.push(message(1))
    api.adv("POST", "ann", "/session")
    s = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
    try:
        s.wait_for(lambda e: e[0] == "figures")
        api.sup("POST", "/messages/m1/assign", json={"advisor": "ann"})
        s.wait_for(lambda e: e[0] == "figures" and e[2]["assigned"] == 1)
        seen = len(s.events)
        api.d.send_to_stock(TEAM, "m1")  # (a supervisor, through the library or the CLI)
        deadline = time.monotonic() + 10
        while not [e for e in s.events[seen:] if e[0] == "figures"]:
            assert time.monotonic() < deadline, s.events[seen:]
            time.sleep(0.02)
        back = next(e for e in s.events[seen:] if e[0] == "figures")
        assert (back[2]["stock"], back[2]["assigned"]) == (1, 0), back
    finally:
        s.close()


def test_a_client_reconnecting_with_last_event_id_misses_nothing(api: Api) -> None:
    api.d.login(TEAM, "ann")
    s = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
    first = s.wait_for(lambda e: e[0] == "figures")
    last_id = first[1]
    s.close()
    # While ann's client is away, a supervisor assigns her two messages.
    api.push(message(1), message(2))
    api.sup("POST", "/messages/m1/assign", json={"advisor": "ann"})
    api.sup("POST", "/messages/m2/assign", json={"advisor": "ann"})
    back = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"],
                  last_event_id=last_id)
    try:
        back.wait_for(lambda e: e[0] == "figures")
        assigned = [e[2]["id"] for e in back.events if e[0] == "assigned"]
        assert assigned == ["m1", "m2"]
        ids = [e[1] for e in back.events]
        assert all(i > last_id for i in ids[:2])
        fresh = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
        fresh.wait_for(lambda e: e[0] == "figures")
        assert [e[0] for e in fresh.events][:2] == ["stock", "figures"]
        fresh.close()
    finally:
        back.close()


def test_one_reader_per_team_serves_every_connected_client(api: Api) -> None:
    streams = [Stream(api, f"/v1/teams/{TEAM}/live", api.supervisor) for _ in range(20)]
    try:
        for s in streams:
            s.wait_for(lambda e: e[0] == "stock")
        api.push(message(1))
        for s in streams:
            s.wait_for(stock_total(1))
        clients = api.d.redis.client_list()
        blocked = [c for c in clients if c.get("cmd") in ("xread", "xread|block")]
        assert len(blocked) == 1, blocked
    finally:
        for s in streams:
            s.close()


def test_streams_sharing_a_token_check_it_once_per_period_not_once_each(api: Api) -> None:
    """An open stream re-checks its token, team and advisor every token-cache period (the
    service under test: 0.2 s), so that a revocation ends it. A wall of supervisor screens or
    the tabs of one console share that check in a process: 30 streams must not cost 30 token
    and existence reads a period (150 a second here; 8,000 a second for 1,000 streams at the
    0.2 s period, what held the 1,000-client live bench's updates for 1.6 s)."""
    streams = [Stream(api, f"/v1/teams/{TEAM}/live", api.supervisor) for _ in range(30)]
    try:
        for st in streams:
            st.wait_for(lambda e: e[0] == "stock")
        api.d.redis.config_resetstat()
        time.sleep(2.0)
        stats = api.d.redis.info("commandstats")
        checks = stats.get("cmdstat_sismember", {}).get("calls", 0)
        token_reads = stats.get("cmdstat_hget", {}).get("calls", 0)
        # one check of the (token, team) a half period at most: ~20 in 2 s, whatever the
        # number of streams (30 streams checking each their own: ~300)
        assert 0 < checks <= 40, checks
        assert token_reads <= 40, token_reads
        api.push(message(1))
        for st in streams:
            st.wait_for(stock_total(1))
    finally:
        for st in streams:
            st.close()


def test_a_stock_change_reaches_every_console_without_a_figures_read_each(api: Api) -> None:
    """Each advisor's stream gets the new stock in their figures at every stock change. Their
    own figures (responses, archives, break, what they hold) change only with events that
    name them: a message arriving must not cost a figures read per open console (1,000
    consoles: 1,000 reads a change, one after the other, before the next events go out)."""
    from dispatcher import tokens

    names = [f"w{i}" for i in range(20)]
    streams = []
    try:
        for name in names:
            api.d.set_advisor(TEAM, name, "agent")
            tok = api.d.run(tokens.create_token("advisor", team=TEAM, advisor=name)).token
            streams.append(Stream(api, f"/v1/teams/{TEAM}/advisors/{name}/live", tok))
        for st in streams:
            st.wait_for(lambda e: e[0] == "figures")
        api.d.redis.config_resetstat()
        api.push(message(1))
        for st in streams:
            st.wait_for(lambda e: e[0] == "figures" and e[2]["stock"] == 1)
        reads = api.d.redis.info("commandstats").get("cmdstat_zcard", {}).get("calls", 0)
        assert reads <= 2, reads  # (one figures read is a ZCARD of what the advisor holds)
        # a change that names one of them re-reads theirs: w0 is given the message
        api.d.login(TEAM, "w0")
        api.d.assign(TEAM, "w0", "m1")
        streams[0].wait_for(lambda e: e[0] == "figures" and e[2]["assigned"] == 1)
    finally:
        for st in streams:
            st.close()


def test_a_burst_of_clients_opening_streams_at_once_all_get_their_state(api: Api) -> None:
    """300 streams opened together (ten supervisors' walls of 30 screens): callers wait for a
    Redis connection, none is refused."""
    import asyncio

    from dispatcher import tokens

    walls = [api.d.run(tokens.create_token("supervisor", team=TEAM)).token for _ in range(10)]

    async def burst() -> list[str]:
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(base_url=str(api.http.base_url), limits=limits,
                                     timeout=60) as http:
            async def one(token: str) -> str:
                async with http.stream("GET", f"/v1/teams/{TEAM}/live",
                                       headers={"Authorization": f"Bearer {token}"}) as res:
                    async for line in res.aiter_lines():
                        if line.startswith("event: "):
                            return line[7:]
                return f"closed {res.status_code}"
            return await asyncio.gather(*(one(walls[i % 10]) for i in range(300)))

    assert asyncio.run(burst()) == ["stock"] * 300


def test_a_client_that_leaves_ends_its_stream_and_stops_touching_the_team(api: Api) -> None:
    """A closed tab must not go on beating its advisor's presence into Redis: the service ends
    the stream when the client hangs up, not at the next keep-alive (15 s later)."""
    api.adv("POST", "ann", "/session")
    s = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
    s.wait_for(lambda e: e[0] == "figures")
    assert open_streams(api) == 1
    s.close()
    deadline = time.monotonic() + 5
    while open_streams(api) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_streams(api) == 0


def test_one_token_cannot_open_more_than_its_share_of_live_streams(api: Api) -> None:
    """A console's tabs, a wall of screens: a few streams a token. A leaked token in a loop
    would take the process's connections and its team's fan-out from everyone: beyond
    MAX_STREAMS_PER_TOKEN in a process its next stream is refused (429 naming the
    authorization), its neighbours' streams open, and a closed tab frees its place."""
    path = f"/v1/teams/{TEAM}/advisors/ann/live"
    streams = [Stream(api, path, api.advisor["ann"]) for _ in range(32)]  # the default
    try:
        for st in streams:
            st.wait_for(lambda e: e[0] == "stock")
        status, problem, headers = opened(api, path, api.advisor["ann"])
        assert status == 429, problem
        assert problem["field"] == "authorization"
        assert headers["retry-after"]
        neighbour = Stream(api, f"/v1/teams/{TEAM}/advisors/bob/live", api.advisor["bob"])
        streams.append(neighbour)
        neighbour.wait_for(lambda e: e[0] == "stock")
        streams.pop(0).close()
        deadline = time.monotonic() + 5
        while open_streams(api) > 32 and time.monotonic() < deadline:
            time.sleep(0.05)
        again = Stream(api, path, api.advisor["ann"])
        streams.append(again)
        again.wait_for(lambda e: e[0] == "stock")
    finally:
        for st in streams:
            st.close()


def test_a_team_holding_its_most_live_streams_leaves_other_teams_theirs(
        api: Api, redis_server: Any) -> None:
    """A team's streams in a process are bounded (PUSHINBOX_MAX_STREAMS_PER_TEAM): one team's
    thousands of screens cannot take the connections and the event loop's fan-out from the
    other teams on the same process. Theirs still open; the team's next is refused (429
    naming the team)."""
    from dispatcher import tokens
    from dispatcher.testing import ServiceProcess

    d = api.d
    d.create_team("other")
    d.set_role("other", "agent")
    d.set_advisor("other", "zoe", "agent")
    zoe = d.run(tokens.create_token("advisor", team="other", advisor="zoe")).token
    svc = ServiceProcess(redis_server.url, env={"PUSHINBOX_MAX_STREAMS_PER_TEAM": "3"}).start()
    local = Api(svc.url, d)
    streams: list[Stream] = []
    try:
        for who, tok in (("ann", local.advisor["ann"]), ("bob", local.advisor["bob"]),
                         ("ann", local.advisor["ann"])):
            streams.append(Stream(local, f"/v1/teams/{TEAM}/advisors/{who}/live", tok))
            streams[-1].wait_for(lambda e: e[0] == "stock")
        status, problem, _ = opened(local, f"/v1/teams/{TEAM}/live", local.supervisor)
        assert status == 429, problem
        assert problem["field"] == "team"
        streams.append(Stream(local, "/v1/teams/other/advisors/zoe/live", zoe))
        streams[-1].wait_for(lambda e: e[0] == "stock")
    finally:
        for st in streams:
            st.close()
        local.http.close()
        svc.stop()


def test_streams_abandoned_as_they_open_give_their_places_back(api: Api) -> None:
    """A client that hangs up before its stream starts (a tab closed while loading, a
    retrying loop) must not keep a place: after 40 such opens of one token (more than the 32
    it may hold) its streams open again once the service has seen them gone."""
    url = api.http.base_url
    path = f"/v1/teams/{TEAM}/advisors/ann/live"
    for _ in range(40):
        with socket.create_connection((str(url.host), int(url.port or 80))) as sock:
            sock.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {api.advisor['ann']}\r\n\r\n").encode())
    deadline = time.monotonic() + 10
    while (status := opened(api, path, api.advisor["ann"])[0]) == 429:
        assert time.monotonic() < deadline, "the abandoned streams kept their places"
        time.sleep(0.1)
    assert status == 200
