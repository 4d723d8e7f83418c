"""An open live stream (Server-Sent Events): the team's feed as it reaches one client, the
checks that end it (token revoked, team or advisor deleted), the presence it keeps, and the
bound on how many a token and a team may hold open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from dispatcher import defaults, ops, tokens
from dispatcher.api import AsyncDispatcher
from dispatcher.errors import PushinboxError, TooManyError, UnavailableError
from dispatcher.model import Stock
from httpapi import live, metrics
from httpapi.auth import token_key
from httpapi.common import stock_out

__all__ = ["StreamSlots", "open_stream", "stream"]


class StreamSlots:
    """The live streams open in this process, counted per token and per team, each count
    bounded (MAX_STREAMS_PER_TOKEN, MAX_STREAMS_PER_TEAM): a leaked token in a loop, or one
    team's thousands of screens, cannot take the process's connections and its event loop's
    fan-out from the other teams."""

    def __init__(self, per_token: int, per_team: int) -> None:
        self.per_token = per_token
        self.per_team = per_team
        self.tokens: Counter[str] = Counter()  # by token digest, never the token
        self.teams: Counter[str] = Counter()

    def take(self, token: str, team: str) -> Callable[[], None]:
        """A place for one more stream of ``token`` (its digest) in ``team``, or
        TooManyError; returns what gives it back (once, however often it is called)."""
        if self.tokens[token] >= self.per_token:
            raise TooManyError(f"this token already holds {self.per_token} live streams here; "
                               "close one (another tab) or retry later", field="authorization")
        if self.teams[team] >= self.per_team:
            raise TooManyError(f"the team already holds {self.per_team} live streams here; "
                               "retry later", field="team")
        self.tokens[token] += 1
        self.teams[team] += 1
        given = False

        def give_back() -> None:
            nonlocal given
            if not given:
                given = True
                for count, key in ((self.tokens, token), (self.teams, team)):
                    count[key] -= 1
                    if count[key] <= 0:
                        del count[key]  # the counts stay as many as the open streams
        return give_back


def _bearer(request: Request[Any, Any, Any]) -> str:
    _, _, raw = request.headers.get("authorization", "").partition(" ")
    return raw.strip()


def open_stream(request: Request[Any, Any, Any], d: AsyncDispatcher, team: str,
                advisor: str | None) -> ServerSentEvent:
    """The response of a live route: a place taken for it (429 before the stream when the
    token or the team holds its most), given back when the stream ends, or when a response
    never sent is collected (its stream never started, so its own ``finally`` cannot)."""
    give_back = request.app.state.slots.take(token_key(_bearer(request)), team)
    feed = stream(request, d, team, advisor, give_back)
    weakref.finalize(feed, give_back)
    return ServerSentEvent(feed)


async def _still_allowed(request: Request[Any, Any, Any], team: str,
                         advisor: str | None, ttl: float) -> str | None:
    """Why an open stream must end now (token revoked, team or advisor deleted), or None;
    None too while Redis cannot say (the stream waits for it like the feed does). Checked
    once per ``ttl`` for all the process's streams of the same token, team and advisor."""
    st = request.app.state
    token = _bearer(request)

    async def check() -> str | None:
        try:  # the token read afresh: the cache's entry may be a period old
            found = await st.d.run(tokens.authenticate(token))
            exists, member = await st.d.run(ops.still_there(team, advisor))
        except UnavailableError:
            return None
        if found is None:
            return "the token was revoked"
        if not exists:
            return "the team was deleted"
        if not member:
            return "the advisor was removed"
        return None

    reason: str | None = await st.hub.shared_check((token_key(token), team, advisor), ttl,
                                                   check)
    return reason


async def _keep_present(request: Request[Any, Any, Any], d: AsyncDispatcher, team: str,
                        advisor: str, now: float) -> None:
    """An advisor with the console open is present: their own live stream refreshes presence,
    at most once per STREAM_PRESENCE_S per advisor and process, whatever the number of tabs."""
    beats: dict[tuple[str, str], float] = request.app.state.hub.beats
    if now - beats.get((team, advisor), -1e9) < request.app.state.config.stream_presence_s:
        return
    beats[(team, advisor)] = now
    with contextlib.suppress(PushinboxError):  # logged out meanwhile: a stream never logs in
        await d.run(ops.heartbeat(team, advisor))


async def stream(request: Request[Any, Any, Any], d: AsyncDispatcher, team: str,
                 advisor: str | None, give_back: Callable[[], None]
                 ) -> AsyncIterator[ServerSentEventMessage]:
    """The live feed; it re-checks its token, team and advisor every token-cache period
    (the check shared by the process's streams of the same three, as old as half a period at
    most, the token read afresh), so a revocation or deletion ends it within one and a half
    periods at most (new requests: within one, the token cache's)."""
    hub = request.app.state.hub
    recheck = max(0.1, request.app.state.config.token_cache_s)
    tok = request.scope["state"].get("token")
    own = advisor is not None and tok is not None and tok.scope == "advisor"
    sub = hub.subscribe(team, advisor, view=advisor is None and tok is not None
                        and tok.scope in ("supervisor", "admin"))
    metrics.SSE_CLIENTS.inc()
    try:
        first = await live.opening(d, hub, team, advisor, request.headers.get("last-event-id"))
        for upd in first:
            yield _sse(upd)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + recheck
        next_alive = loop.time() + defaults.SSE_KEEPALIVE_S
        while True:
            now = loop.time()
            if now >= next_check:  # also between updates of a busy feed
                next_check = now + recheck
                if own:
                    await _keep_present(request, d, team, str(advisor), now)
                reason = await _still_allowed(request, team, advisor, recheck / 2)
                if reason is not None:
                    yield ServerSentEventMessage(data=json.dumps({"reason": reason}),
                                                 event="closed")
                    return
            if now >= next_alive:
                next_alive = now + defaults.SSE_KEEPALIVE_S
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            try:  # (a deadline on this task, not wait_for's task a wait: 1,000 streams)
                async with asyncio.timeout_at(min(next_check, next_alive)):
                    upd = await sub.queue.get()
            except TimeoutError:
                continue
            if upd is None:
                return
            next_alive = loop.time() + defaults.SSE_KEEPALIVE_S
            yield _sse(upd)
    finally:
        metrics.SSE_CLIENTS.dec()
        hub.unsubscribe(sub)
        give_back()


class _Encoded(ServerSentEventMessage):
    """An event encoded already (Litestar writes what ``encode`` returns)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw

    def encode(self) -> bytes:
        return self.raw


def _sse(upd: live.Update) -> ServerSentEventMessage:
    raw = upd.encoded.get("sse")
    if raw is None:  # the first of the update's clients encodes it for all of them
        data = stock_out(upd.data) if isinstance(upd.data, Stock) else upd.data
        body = msgspec.json.encode(data).decode()
        raw = ServerSentEventMessage(data=body, event=upd.event, id=upd.id).encode()
        upd.encoded["sse"] = raw
    return _Encoded(raw)
