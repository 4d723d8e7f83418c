"""One JSON access-log line per request (request id, team and advisor bound for every line
the request logs) and the HTTP metrics, whichever path answers the request (the framework's
routes through ``AccessLog``, the advisor's cycle through ``httpapi.hot``, both by ``observe``)."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from dispatcher.log import REQUEST, info_line
from httpapi import metrics

__all__ = ["AccessLog", "observe"]

access_log = structlog.get_logger("pushinbox.access")


async def observe(scope: Any, send: Any, respond: Callable[[Any], Awaitable[None]],
                  enabled: bool) -> None:
    """Answer the request with ``respond`` (given a ``send`` that adds the request id to the
    response), with its request id, team and advisor bound for every log line it writes; count
    it in the HTTP metrics under its route template, and write its access-log line if
    ``enabled``. The scope's ``path_params`` and ``path_template`` are read as routing left
    them."""
    started = time.perf_counter()
    request_id = ""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":  # the client's own (the last one, as dict() took it)
            request_id = value.decode("latin-1")[:64]
    # a request id names a log line; it needs to be unique, not unguessable
    request_id = request_id or f"{random.getrandbits(128):032x}"
    status = 500

    async def send_with_id(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message["headers"] = [*message.get("headers", []),
                                  (b"x-request-id", request_id.encode("latin-1"))]
        await send(message)

    params = scope.get("path_params") or {}
    REQUEST.set({"request_id": request_id, "team": params.get("team"),
                 "advisor": params.get("advisor")})
    try:
        await respond(send_with_id)
    finally:
        elapsed = time.perf_counter() - started
        route = scope.get("path_template") or "unmatched"
        metrics.requests(scope.get("method", ""), route, str(status)).inc()
        metrics.latency(route).observe(elapsed)
        if enabled:
            info_line(access_log, "request", method=scope.get("method"),
                      path=scope.get("path"), status=status, ms=round(elapsed * 1000, 2))
        # Nothing to reset: the server runs each request in a task of its own, whose context
        # copy dies with it.


class AccessLog(ASGIMiddleware):
    """The framework's routes: ``observe`` around each."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    async def handle(self, scope: Scope, receive: Receive, send: Send,
                     next_app: ASGIApp) -> None:
        await observe(scope, send, lambda s: next_app(scope, receive, s), self.enabled)
