"""One JSON access-log line per request (request id, team and advisor bound for every line
the request logs) and the HTTP metrics."""

from __future__ import annotations

import random
import time
from typing import Any

import structlog
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from httpapi import metrics

__all__ = ["AccessLog"]

access_log = structlog.get_logger("pushinbox.access")


class AccessLog(ASGIMiddleware):
    """One JSON line per request, with request id, team and advisor bound; HTTP metrics."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    async def handle(self, scope: Scope, receive: Receive, send: Send,
                     next_app: ASGIApp) -> None:
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        # a request id names a log line; it needs to be unique, not unguessable
        request_id = (headers.get(b"x-request-id", b"").decode("latin-1")[:64]
                      or f"{random.getrandbits(128):032x}")
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        params = scope.get("path_params") or {}
        structlog.contextvars.bind_contextvars(request_id=request_id, team=params.get("team"),
                                               advisor=params.get("advisor"))
        try:
            await next_app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            metrics.REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
            metrics.LATENCY.labels(route).observe(elapsed)
            if self.enabled:
                access_log.info("request", method=scope.get("method"), path=scope.get("path"),
                                status=status, ms=round(elapsed * 1000, 2))
            # No clear_contextvars(): the server runs each request in a task of its own, whose
            # context copy dies with it; clearing walked every context variable per request.
