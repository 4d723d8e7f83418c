"""An open live stream (Server-Sent Events): the team's feed as it reaches one client, the
checks that end it (token revoked, team or advisor deleted) and the presence it keeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request
from litestar.response.sse import ServerSentEventMessage

from dispatcher import defaults, ops, tokens
from dispatcher.api import AsyncDispatcher
from dispatcher.errors import PushinboxError, UnavailableError
from dispatcher.model import Stock
from httpapi import live, metrics
from httpapi.auth import token_key
from httpapi.common import stock_out

__all__ = ["stream"]


async def _still_allowed(request: Request[Any, Any, Any], team: str,
                         advisor: str | None, ttl: float) -> str | None:
    """Why an open stream must end now (token revoked, team or advisor deleted), or None;
    None too while Redis cannot say (the stream waits for it like the feed does). Checked
    once per ``ttl`` for all the process's streams of the same token, team and advisor."""
    st = request.app.state
    _, _, raw = request.headers.get("authorization", "").partition(" ")
    token = raw.strip()

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
                 advisor: str | None) -> AsyncIterator[ServerSentEventMessage]:
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
