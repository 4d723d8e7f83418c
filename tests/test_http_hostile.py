"""A hostile client against the real service process: bounded memory, time and answers."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import TEAM, Api

from dispatcher.testing import RedisServer, ServiceProcess


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def guarded(redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """A service of its own with a short head deadline, so slow clients are cut quickly."""
    svc = ServiceProcess(redis_server.url, env={"PUSHINBOX_HEADER_TIMEOUT_S": "1"},
                         access_log=False).start()
    yield svc
    svc.stop()


def _raw(port: int, data: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
        if not read:
            return b""
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks)


def test_huge_bearer_tokens_leave_the_service_memory_flat(guarded: ServiceProcess) -> None:
    assert guarded.proc is not None
    pid = guarded.proc.pid
    path = f"/v1/teams/{TEAM}/stock"
    for i in range(20):  # warm up allocator and caches with ordinary refusals
        httpx.get(guarded.url + path, headers={"Authorization": f"Bearer pi_{i:012x}_x"})
    before = rss_kb(pid)
    for i in range(300):
        token = f"{i:06d}".encode() + b"A" * (1024 * 1024)
        answer = _raw(guarded.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + token + b"\r\n\r\n")
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:80]
    for i in range(300):  # over the Authorization cap, under the head cap: 401, no work
        res = httpx.get(guarded.url + path,
                        headers={"Authorization": "Bearer " + f"{i:05d}" + "B" * 4000})
        assert res.status_code == 401, res.text
    grown = rss_kb(pid) - before
    assert grown < 20 * 1024, f"RSS grew {grown} kB"


def test_a_head_over_the_limit_is_a_431(guarded: ServiceProcess) -> None:
    answer = _raw(guarded.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                  + b"a" * 40_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert httpx.get(guarded.url + "/healthz").status_code == 200


def test_clients_sending_headers_slowly_are_cut_off(guarded: ServiceProcess) -> None:
    socks = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    started = time.monotonic()
    for s in socks:
        with s:
            assert s.recv(1024).startswith(b"HTTP/1.1 408")  # answered, then closed
            assert s.recv(1024) == b""
    assert time.monotonic() - started < 8
    idle = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    with idle:  # a connection that never says anything is closed too
        assert idle.recv(1024).startswith(b"HTTP/1.1 408")
    assert httpx.get(guarded.url + "/healthz").status_code == 200


def test_a_cached_token_check_is_keyed_by_digest_and_malformed_tokens_are_not_kept(
        api: Api, redis_server: RedisServer) -> None:
    import asyncio

    from dispatcher.api import AsyncDispatcher
    from dispatcher.connection import connect_async
    from httpapi.auth import TokenCache

    async def run() -> None:
        client = connect_async(redis_server.url)
        d = AsyncDispatcher(client)
        cache = TokenCache(ttl=60)
        for i in range(100):
            assert await cache.lookup(d, f"junk-{i}" * 100) is None
        assert len(cache) == 0
        assert (await cache.lookup(d, api.supervisor)) is not None
        assert len(cache) == 1
        assert all(api.supervisor.encode() not in k for k in cache._seen)
        await client.aclose()

    asyncio.run(run())


def test_an_open_stream_ends_when_its_token_is_revoked(api: Api) -> None:
    from test_http_live import Stream

    from dispatcher import tokens

    new = api.d.run(tokens.create_token("advisor", team=TEAM, advisor="ann"))
    api.adv("POST", "ann", "/session")
    stream = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", new.token)
    stream.wait_for(lambda e: e[0] == "figures")
    api.d.run(tokens.revoke_token(new.info.id))
    closed = stream.wait_for(lambda e: e[0] == "closed", timeout=5)
    assert closed[2]["reason"] == "the token was revoked"
    api.push({"id": "after", "conversation": "c-after", "customer": "u", "channel": "webchat",
              "body": {"text": "secret"}})
    time.sleep(0.5)
    assert not [e for e in stream.events if "secret" in json.dumps(e[2])]
    stream.close()


def test_an_open_stream_ends_when_its_team_is_deleted(api: Api) -> None:
    from test_http_live import Stream

    api.d.create_team("doomed")
    watcher = Stream(api, "/v1/teams/doomed/live", api.admin)
    watcher.wait_for(lambda e: e[0] == "stock")
    api.d.delete_team("doomed")
    closed = watcher.wait_for(lambda e: e[0] == "closed", timeout=5)
    assert closed[2]["reason"] == "the team was deleted"
    watcher.close()


@pytest.mark.parametrize("last", ["99999999999999999999-0", "18446744073709551616-0", "abc",
                                  "1-2-3", "-1-0", "1" * 30 + "-0"])
def test_a_malformed_last_event_id_is_a_400_before_the_stream_starts(api: Api,
                                                                     last: str) -> None:
    for path, token in ((f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"]),
                        (f"/v1/teams/{TEAM}/live", api.supervisor)):
        res = api.call("GET", path, token, headers={"Last-Event-ID": last})
        assert res.status_code == 400, res.text
        assert res.json()["field"] == "Last-Event-ID"


def test_a_client_far_behind_gets_a_resync_not_the_whole_stream(api: Api) -> None:
    from test_http_live import Stream

    api.adv("POST", "ann", "/session")
    for i in range(5):
        api.push(*[{"id": f"old-{i}-{j}", "conversation": f"c-old-{i}-{j}", "customer": "u",
                    "channel": "webchat", "body": {"text": "x"}} for j in range(500)])
    stream = Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"],
                    last_event_id="0-0")
    stream.wait_for(lambda e: e[0] == "figures")
    kinds = [e[0] for e in stream.events]
    assert kinds[0] == "resync" and "assigned" not in kinds, kinds
    stream.close()


def test_an_oversized_batch_is_refused_by_its_length_before_it_is_read(api: Api) -> None:
    port = int(str(api.http.base_url).rsplit(":", 1)[1].strip("/"))
    head = (f"POST /v1/teams/{TEAM}/messages/batch HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {api.ingest}\r\nContent-Type: application/json\r\n"
            "Content-Length: 37000000\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b'{"messages": [')  # the rest of the body never comes
        assert s.recv(65536).startswith(b"HTTP/1.1 413")

    def chunked() -> Iterator[bytes]:  # no length announced: cut off while reading
        yield b'{"messages": ['
        for i in range(150_000):  # ~11 MB, over the 8 MiB cap
            yield b'{"id":"m%d","conversation":"c","customer":"u","channel":"w","body":{}},' % i
    res = api.http.post(f"/v1/teams/{TEAM}/messages/batch", content=chunked(),
                        headers={"Authorization": f"Bearer {api.ingest}",
                                 "Content-Type": "application/json"})
    assert res.status_code == 413, res.text
    assert not api.d.redis.keys(f"pi:{{{TEAM}}}:m:*")


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/messages", b"[" * 1000 + b"]" * 1000, 400),
    ("POST", "/messages", b'{"id": "\xff\xfe"}', 400),
    ("PUT", "/groups", b'{"groups": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400),
    ("GET", "/breaks?start=9999-12-31&days=2", None, 422),
])
def test_unreadable_input_is_a_4xx_not_a_500(api: Api, method: str, path: str,
                                            body: bytes | None, status: int) -> None:
    res = api.call(method, f"/v1/teams/{TEAM}{path}", api.admin, content=body,
                   headers={"Content-Type": "application/json"})
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")


def test_static_pages_never_disclose_the_install_path(api: Api) -> None:
    import os

    for path in ("/ui/%00", "/ui/%2e", "/ui/..%2f..%2fetc%2fpasswd", "/ui/nope.html"):
        res = api.http.get(path)
        assert res.status_code == 404, (path, res.text)
        assert os.getcwd() not in res.text and "/" not in res.json()["detail"], res.text


def test_long_lists_are_paged_with_a_link_to_the_next_page(api: Api) -> None:
    n = 2_345
    api.adv("POST", "ann", "/session")
    api.d.set_triage(TEAM, [{"name": "all to ann", "match": {}, "advisor": "ann"}])
    for start in range(0, n, 500):
        api.push(*[{"id": f"p{i}", "conversation": f"c{i}", "customer": "u",
                    "channel": "webchat", "body": {"text": "x"}}
                   for i in range(start, min(n, start + 500))])
    seen: list[str] = []
    url: str | None = f"/v1/teams/{TEAM}/advisors/ann/messages?limit=1000"
    while url:
        res = api.call("GET", url, api.advisor["ann"])
        assert res.status_code == 200, res.text
        seen += [m["id"] for m in res.json()]
        url = res.links.get("next", {}).get("url")
    assert len(seen) == n and len(set(seen)) == n
    small = api.adv("GET", "ann", "/messages?limit=10")
    assert len(small.json()) == 10 and "cursor=10" in small.headers["link"]
    for bad in ("cursor=-1", "cursor=abc", "limit=0", "limit=1001"):
        assert api.adv("GET", "ann", f"/messages?{bad}").status_code in (400, 422), bad


def test_an_open_console_keeps_its_advisor_present(redis_server: RedisServer,
                                                   api: Api) -> None:
    """The live stream counts as presence (one write per interval, however many tabs)."""
    from test_http_live import Stream

    svc = ServiceProcess(redis_server.url, env={"PUSHINBOX_STREAM_PRESENCE_S": "0.5"},
                         access_log=False).start()
    api_url = api.http.base_url
    try:
        api.adv("POST", "ann", "/session")
        online = f"pi:{{{TEAM}}}:online"
        first = api.d.redis.zscore(online, "ann")
        api.http.base_url = svc.url  # type: ignore[assignment]
        tabs = [Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
                for _ in range(3)]
        for tab in tabs:
            tab.wait_for(lambda e: e[0] == "figures")
        beats = _presence_beats(api.d.redis, 2.2)
        assert api.d.redis.zscore(online, "ann") > first  # refreshed with no request at all
        assert 2 <= beats <= 6, beats  # ~4 beats in 2.2 s, not one per tab
        for tab in tabs:
            tab.close()
    finally:
        api.http.base_url = api_url  # type: ignore[assignment]
        svc.stop()


def _presence_beats(client: redis.Redis, seconds: float) -> int:
    """The presence beats (heartbeat calls, FCALL or EVALSHA alike) Redis serves in the next
    ``seconds``, read from SLOWLOG: the services' other calls (their ticks) are not counted."""
    was = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()
    try:
        time.sleep(seconds)
        entries = client.slowlog_get(100_000)
    finally:
        for name, value in was.items():
            client.config_set(name, value)
    return sum(1 for e in entries if b"touch_only" in e["command"])


def test_the_api_docs_page_needs_no_cdn(api: Api) -> None:
    import re

    page = api.http.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert urls and not [u for u in urls if "//" in u], urls  # same origin only
    for url in urls:
        assert api.http.get(url).status_code == 200, url
