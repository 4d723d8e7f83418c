"""The advisor's cycle on a short path: *process a new message*, reply and archive, answered
without the framework's per-request machinery.

These three calls are what every advisor makes all day; through Litestar's guard, dependency
injection, signature model and response objects each cost ~470 µs of the service's CPU on
this machine, ~240 µs here (``make bench-service-cpu``; docs/performance.md, "The advisor's
cycle on a short path"). The
short path answers a request only when it is the plain, valid form of one of them: POST, no
query string, no body, well-formed ids, a valid ``Idempotency-Key`` if any, and a token that
may make the call. Anything else (an error in the request, a refused token, a body, a
trailing slash) goes to the framework's route, which answers it as it always has: the short
path never has to reproduce an error it did not cause. What it does answer (the operation's
result or its error) is byte for byte what the framework's route answers, with the same
access-log line and metrics (``tests/test_http_hot.py`` holds the two paths to that).

The framework's routes stay the documentation (OpenAPI) and the fallback;
``PUSHINBOX_HOT_ROUTES=0`` turns the short path off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from dispatcher import ops
from dispatcher.keys import ID_PATTERN, TEAM_ID_PATTERN
from httpapi import metrics
from httpapi.access_log import observe
from httpapi.auth import ADVISOR_SELF, authenticate
from httpapi.common import ADV
from httpapi.problems import PROBLEM, error_parts
from httpapi.schemas import ActionOut

__all__ = ["TEMPLATES", "HotRoutes"]

_ADV = ADV.replace(":str", "")
#: The routes answered here, as the framework names them (the metrics' ``route`` label).
TEMPLATES = {
    "next": _ADV + "/next",
    "reply": _ADV + "/messages/{message}/reply",
    "archive": _ADV + "/messages/{message}/archive",
}
_PATH = re.compile(r"/v1/teams/([^/]+)/advisors/([^/]+)/(?:(next)|messages/([^/]+)/"
                   r"(reply|archive))")
_ID = re.compile(ID_PATTERN)
_TEAM = re.compile(TEAM_ID_PATTERN)
_JSON = [(b"content-type", b"application/json")]
_PROBLEM = [(b"content-type", PROBLEM.encode())]
_encode = msgspec.json.Encoder().encode
#: ASGI's scope and send, untyped here: the framework's typed ones are for its own objects.
Scope = Any
Send = Any


class HotRoutes:
    """Matches a request against the short path's routes (``take``) and answers it."""

    def __init__(self, access_log: bool) -> None:
        self.access_log = access_log

    def take(self, scope: Scope) -> Callable[[Any, Send], Awaitable[bool]] | None:
        """If the short path may take this request: what answers it, given the app's state;
        it answers False, having sent nothing, when the token is refused. Else None. Either
        way the framework's route answers what the short path does not."""
        if (scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string")
                or scope.get("root_path")):
            return None
        m = _PATH.fullmatch(scope["path"])
        if m is None:
            return None
        team, advisor, is_next, message, action = m.groups()
        if _TEAM.search(team) is None or _ID.search(advisor) is None or (
                message is not None and _ID.search(message) is None):
            return None
        auth = key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if auth is not None:
                    return None
                auth = value
            elif name == b"idempotency-key" and is_next:
                if key is not None:
                    return None
                key = value
            elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                return None  # a body: these routes take none, the framework reads and drops it
        request_id = None
        if key is not None:
            request_id = key.decode("latin-1")
            if _ID.search(request_id) is None:
                return None
        header = auth.decode("latin-1") if auth is not None else ""
        if is_next:
            scope["path_params"] = {"team": team, "advisor": advisor}
            scope["path_template"] = TEMPLATES["next"]
        else:
            scope["path_params"] = {"team": team, "advisor": advisor, "message": message}
            scope["path_template"] = TEMPLATES[action]

        async def answer(state: Any, send: Send) -> bool:
            try:
                await authenticate(state, header, ADVISOR_SELF["allow"], team, advisor)
            except Exception:  # refused (or Redis away): the framework answers
                return False

            async def respond(send_: Send) -> None:
                headers: list[tuple[bytes, bytes]] = _JSON
                try:
                    if is_next:
                        push = await state.d.run(ops.next_message(team, advisor, request_id))
                        if push.status == "empty":
                            code, headers, body = 204, [], b""
                        else:
                            metrics.observe_push(team, push, int(time.time() * 1000))
                            code, body = 200, _encode(push)
                    else:
                        status = await state.d.run(ops.act(action, team, advisor, message))
                        code, body = 200, _encode(ActionOut(message, status))
                except Exception as exc:  # every error has its problem+json
                    code, body, extra = error_parts(exc, scope["path"])
                    headers = [*_PROBLEM, *((k.lower().encode(), v.encode())
                                            for k, v in (extra or {}).items())]
                await _send(send_, code, headers, body)

            await observe(scope, send, respond, self.access_log)
            return True

        return answer


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if status != 204:  # No Content has no length either (RFC 9110 8.6), as the framework sends it
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
