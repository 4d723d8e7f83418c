"""The advisor's cycle and a message in, on the short path (httpapi/hot.py), answer exactly
what the framework's routes answer: the same scenario, on the same world and clock, through an
app with the short path and one without, gives the same status, headers and bytes at every
step; the short path takes the plain calls and leaves every refused or unusual one to the
framework (handing on, as it came, a body it read)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis
from conftest import TEAM, make_team, message

from dispatcher import Dispatcher, tokens
from dispatcher.servers import app_running
from dispatcher.testing import FakeClock, RedisServer
from httpapi import ServiceConfig, create_app
from httpapi.hot import TEMPLATES, HotRoutes

ADV = f"/v1/teams/{TEAM}/advisors"
IN = f"/v1/teams/{TEAM}/messages"
JSON = {"Content-Type": "application/json"}


def sent(n: int, **fields: Any) -> bytes:
    """A message in, as an upstream service sends it."""
    return json.dumps({**message(n), **fields}).encode()


#: (who calls, method, path, extra headers, body), in order; who: a token name or None.
SCENARIO: list[tuple[str | None, str, str, dict[str, str], bytes | None]] = [
    ("ann", "POST", f"{ADV}/ann/next", {}, None),                     # assigned: c1, 2 messages
    ("ann", "POST", f"{ADV}/ann/next", {}, None),                     # pending: the same again
    ("ann", "POST", f"{ADV}/ann/next", {"Idempotency-Key": "k-1"}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m1/reply", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m1/reply", {}, None),        # done already: noop
    ("ann", "POST", f"{ADV}/ann/messages/m2/archive", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m404/reply", {}, None),      # unknown message: 404
    ("ann", "POST", f"{ADV}/ann/messages/m3/reply", {}, None),        # not ann's: 403
    ("admin", "POST", f"{ADV}/bob/next", {}, None),                   # an admin may press
    ("cid", "POST", f"{ADV}/cid/next", {}, None),                     # not logged in: 409
    ("admin", "POST", "/v1/teams/nope/advisors/ann/next", {}, None),  # unknown team: 404
    ("admin", "POST", f"{ADV}/zed/next", {}, None),                   # unknown advisor: 404
    # refused or unusual: the framework answers
    ("bob", "POST", f"{ADV}/ann/next", {}, None),                     # another advisor: 403
    (None, "POST", f"{ADV}/ann/next", {}, None),                      # no token: 401
    ("nobody", "POST", f"{ADV}/ann/next", {}, None),                  # unknown token: 401
    ("supervisor", "POST", f"{ADV}/ann/next", {}, None),              # 403
    ("ann", "POST", f"{ADV}/ann/next", {"Idempotency-Key": "a b"}, None),  # 422
    ("ann", "POST", f"{ADV}/ann/next", {"Idempotency-Key": "k" * 201}, None),
    ("admin", "POST", f"{ADV}/{'a' * 201}/next", {}, None),           # 422
    ("admin", "POST", "/v1/teams/-x/advisors/ann/next", {}, None),
    ("ann", "POST", f"{ADV}/ann/next?x=1", {}, None),
    ("ann", "POST", f"{ADV}/ann/next/", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m2/reply", {"Content-Type": "application/json"},
     b'{"x": 1}'),
    ("ann", "GET", f"{ADV}/ann/next", {}, None),                      # 405
    ("ann", "POST", f"{ADV}/ann/messages/m2/hold", {}, None),         # not on the short path
    # the team's stock runs out: 204
    ("ann", "POST", f"{ADV}/ann/next", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m4/reply", {}, None),
    ("ann", "POST", f"{ADV}/ann/next", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m5/reply", {}, None),
    ("ann", "POST", f"{ADV}/ann/next", {}, None),
    # another team's advisor of the same name: refused (403), left to the framework
    ("beta-ann", "POST", f"{ADV}/ann/next", {}, None),
    ("beta-ann", "POST", f"{ADV}/ann/messages/m5/reply", {}, None),
    # a message in, from an upstream service
    ("ingest", "POST", IN, JSON, sent(6)),                            # 32: queued
    ("ingest", "POST", IN, JSON, sent(6)),                            # duplicate
    ("ingest", "POST", IN, JSON, sent(6, body={"text": "changed"})),  # same id, other content: 409
    ("ingest", "POST", IN, JSON, sent(7, conversation="c3")),         # bob holds c3: assigned
    ("admin", "POST", IN, JSON, sent(8, tags=["vip"], language="fr", customer_tags=["gold"])),
    ("admin", "POST", "/v1/teams/nope/messages", JSON, sent(9)),      # unknown team: 404
    ("ingest", "POST", IN, JSON, sent(10, body={"text": "x" * 70_000})),  # 413 from ingest
    # refused or unusual: the framework answers (a body read is handed on as it came)
    ("beta-ingest", "POST", IN, JSON, sent(11)),                      # 39: another team's: 403
    ("ann", "POST", IN, JSON, sent(12)),                              # an advisor's token: 403
    (None, "POST", IN, JSON, sent(13)),                               # 401
    ("ingest", "POST", IN, JSON, b'{"id": "m14"}'),                   # fields missing: 400
    ("ingest", "POST", IN, JSON, sent(15, colour="red")),             # an unknown field: 400
    ("ingest", "POST", IN, JSON, sent(16, id="a b")),                 # a malformed id: 400
    ("ingest", "POST", IN, JSON, b"{not json"),
    ("ingest", "POST", IN, JSON, b""),
    ("ingest", "POST", IN, {"Content-Type": "text/plain"}, sent(17)),
    ("ingest", "POST", IN, {"Content-Type": "application/json; charset=utf-8"}, sent(18)),
    ("ingest", "POST", IN, JSON, sent(19, body={"text": "x" * 90_000})),  # over the route's limit
    ("ingest", "POST", IN + "/", JSON, sent(20)),
    ("ingest", "POST", IN + "?x=1", JSON, sent(21)),
    ("ingest", "POST", IN + "/batch", JSON, json.dumps({"messages": [message(22)]}).encode()),
    ("ingest", "POST", IN, JSON, sent(6)),                            # 53: a duplicate still
    # the cycle in one call: reply, then the next press
    ("ann", "POST", f"{ADV}/ann/next", {}, None),                     # 54: m6
    ("ann", "POST", f"{ADV}/ann/messages/m6/reply-and-next", {}, None),   # replied, m8 pushed
    ("ann", "POST", f"{ADV}/ann/messages/m6/reply-and-next", {}, None),   # a retry: noop, m8
    ("ann", "POST", f"{ADV}/ann/messages/m8/reply-and-next", {"Idempotency-Key": "k-2"}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m404/reply-and-next", {}, None),  # unknown: 404
    ("ann", "POST", f"{ADV}/ann/messages/m7/reply-and-next", {}, None),    # bob's: 403
    ("cid", "POST", f"{ADV}/cid/messages/m7/reply-and-next", {}, None),    # 60: not logged in
    # refused or unusual: the framework answers
    ("bob", "POST", f"{ADV}/ann/messages/m7/reply-and-next", {}, None),    # another's: 403
    ("ann", "POST", f"{ADV}/ann/messages/m8/reply-and-next?x=1", {}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m8/reply-and-next", {"Idempotency-Key": "a b"}, None),
    ("ann", "POST", f"{ADV}/ann/messages/m8/reply-and-next", JSON, b'{"x": 1}'),
]
#: The steps the short path answers (indexes into SCENARIO); the framework answers the rest.
TAKEN = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 25, 26, 27, 28, 29,
         32, 33, 34, 35, 36, 37, 38, 53, 54, 55, 56, 57, 58, 59, 60}


class CountingHotRoutes(HotRoutes):
    """The short path, noting which requests it answered."""

    def __init__(self, access_log: bool) -> None:
        super().__init__(access_log)
        self.answered: list[str] = []

    def take(self, scope: Any) -> Any:
        answer = super().take(scope)
        if answer is None:
            return None

        async def noted(state: Any, receive: Any, send: Any) -> tuple[bool, Any]:
            done, receive = await answer(state, receive, send)
            if done:
                self.answered.append(scope["path"])
            return done, receive

        return noted


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app started in this process, and a client calling it there."""
    async with app_running(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        yield client


def world(client: redis.Redis, clock: FakeClock) -> dict[str, str]:
    """Team acme, ann and bob logged in, five messages (m1 and m2 one conversation); the
    tokens of each caller."""
    client.flushall()
    d = make_team(Dispatcher(client, clock=clock))
    d.login(TEAM, "ann")
    d.login(TEAM, "bob")
    d.ingest_many(TEAM, [message(1, conv="c1"), message(2, conv="c1"), message(3),
                         message(4), message(5)])
    make = lambda scope, **kw: d.run(tokens.create_token(scope, **kw)).token  # noqa: E731
    toks = {a: make("advisor", team=TEAM, advisor=a) for a in ("ann", "bob", "cid")}
    toks["admin"] = make("admin")
    toks["supervisor"] = make("supervisor", team=TEAM)
    toks["nobody"] = "pi_000000000000_" + "x" * 32
    d.create_team("beta")
    d.set_role("beta", "agent", push=True)
    d.set_advisor("beta", "ann", "agent")
    d.login("beta", "ann")
    toks["beta-ann"] = make("advisor", team="beta", advisor="ann")
    toks["ingest"] = make("ingest", teams=[TEAM])
    toks["beta-ingest"] = make("ingest", teams=["beta"])
    return toks


def normal(header: str, value: str) -> str:
    """The framework lists allowed methods in no set order."""
    return ", ".join(sorted(value.split(", "))) if header == "allow" else value


async def play(url: str, client: redis.Redis, hot: bool) -> tuple[list[Any], list[str]]:
    clock = FakeClock(1_780_000_000_000)
    toks = world(client, clock)
    app = create_app(ServiceConfig(redis_url=url, clock=clock, token_cache_s=60))
    app.hot = CountingHotRoutes(access_log=True) if hot else None
    seen = []
    async with running(app) as http:
        for who, method, path, headers, body in SCENARIO:
            h = dict(headers)
            if who is not None:
                h["Authorization"] = f"Bearer {toks[who]}"
            res = await http.request(method, path, headers=h, content=body)
            clock.advance(1)
            seen.append((res.status_code, [(k, normal(k, v)) for k, v in res.headers.items()
                                           if k != "x-request-id"], res.content))
    answered = app.hot.answered if isinstance(app.hot, CountingHotRoutes) else []
    return seen, answered


def test_the_short_path_answers_byte_for_byte_what_the_framework_answers(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    framework, _ = asyncio.run(play(redis_server.url, redis_client, hot=False))
    short, answered = asyncio.run(play(redis_server.url, redis_client, hot=True))
    for i, (step, a, b) in enumerate(zip(SCENARIO, framework, short, strict=True)):
        assert a == b, f"step {i} {step[1]} {step[2]}: framework {a} != short path {b}"
    assert answered == [SCENARIO[i][2] for i in sorted(TAKEN)]
    statuses = [s for s, _, _ in short]
    assert statuses[:12] == [200, 200, 200, 200, 200, 200, 404, 403, 200, 409, 404, 404]
    assert b'"status":"noop"' in short[4][2] and b'"code":"not_yours"' in short[7][2]
    assert statuses[29:32] == [204, 403, 403]
    assert statuses[32:39] == [202, 202, 409, 202, 202, 404, 413]
    assert b'"result":"duplicate"' in short[33][2] and b'"advisor":"bob"' in short[35][2]
    assert statuses[39:42] == [403, 403, 401] and statuses[53] == 202
    assert all(s in (400, 422) for s in statuses[42:47]), statuses[42:47]


def test_the_short_path_answers_503_with_retry_after_when_redis_is_away() -> None:
    async def call(hot: bool) -> tuple[tuple[int, dict[str, str], bytes], ...]:
        server = RedisServer().start()
        try:
            client = server.client()
            toks = world(client, FakeClock(1_780_000_000_000))
            app = create_app(ServiceConfig(redis_url=server.url, token_cache_s=60))
            counting = CountingHotRoutes(access_log=True)
            app.hot = counting if hot else None
            async with running(app) as http:
                auth = {"Authorization": f"Bearer {toks['ann']}"}
                upstream = {"Authorization": f"Bearer {toks['ingest']}", **JSON}
                assert (await http.post(f"{ADV}/ann/next", headers=auth)).status_code == 200
                assert (await http.post(IN, headers=upstream, content=sent(6))).status_code \
                    == 202
                server.stop()  # the tokens are known: the calls themselves meet the outage
                res = await http.post(f"{ADV}/ann/messages/m1/reply", headers=auth)
                res_in = await http.post(IN, headers=upstream, content=sent(7))
            if hot:
                assert counting.answered == [f"{ADV}/ann/next", IN,
                                             f"{ADV}/ann/messages/m1/reply", IN]
            return tuple((r.status_code, {k: v for k, v in r.headers.items()
                                          if k not in ("x-request-id", "content-length")},
                          r.content) for r in (res, res_in))
        finally:
            server.stop()

    framework = asyncio.run(call(hot=False))
    short = asyncio.run(call(hot=True))
    assert short == framework
    for status, headers, _ in short:  # the reply and the message in
        assert status == 503 and headers["retry-after"] == "1"


@pytest.mark.parametrize("action", sorted(TEMPLATES))
def test_the_short_path_counts_its_calls_under_the_framework_s_route_names(action: str) -> None:
    app = create_app(ServiceConfig())
    names = {route.path_format for route in app.routes}
    assert TEMPLATES[action] in names
