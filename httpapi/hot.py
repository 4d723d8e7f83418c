"""The calls made most on a short path: the advisor's cycle (*process a new message*, reply,
archive, and reply-and-next) and an upstream service's single message, answered without the
framework's per-request machinery.

The cycle's three calls are what every advisor makes all day; through Litestar's guard,
dependency injection, signature model and response objects each cost ~470 µs of the
service's CPU on this machine, ~240 µs here (``make bench-service-cpu``; docs/performance.md,
"The advisor's cycle on a short path"). A message in (``POST /v1/teams/{team}/messages``) is
what a webhook-style integration sends for every customer message, one per request. The
short path answers a request only when it is the plain, valid form of one of them: POST, no
query string, well-formed ids, a valid ``Idempotency-Key`` if any, a token that may make the
call, and no body (the cycle) or one JSON message that decodes whole (a message in).
Anything else (an error in the request, a refused token, a body on the cycle, a trailing
slash, a message that does not decode) goes to the framework's route, which answers it as it
always has (a body already read is handed to it as it came): the short path never has to
reproduce an error it did not cause. What it does answer (the operation's result or its
error) is byte for byte what the framework's route answers, with the same access-log line
and metrics (``tests/test_http_hot.py`` holds the two paths to that).

The framework's routes stay the documentation (OpenAPI) and the fallback;
``PUSHINBOX_HOT_ROUTES=0`` turns the short path off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from dispatcher import defaults, ops
from dispatcher.keys import ID_PATTERN, TEAM_ID_PATTERN
from httpapi import metrics
from httpapi.access_log import observe
from httpapi.auth import ADVISOR_SELF, INGEST, authenticate
from httpapi.common import ADV, TEAM, ingest_result
from httpapi.problems import PROBLEM, error_parts
from httpapi.schemas import ActionOut, MessageIn

__all__ = ["TEMPLATES", "HotRoutes"]

_ADV = ADV.replace(":str", "")
#: The routes answered here, as the framework names them (the metrics' ``route`` label).
TEMPLATES = {
    "next": _ADV + "/next",
    "reply": _ADV + "/messages/{message}/reply",
    "reply-and-next": _ADV + "/messages/{message}/reply-and-next",
    "archive": _ADV + "/messages/{message}/archive",
    "ingest": TEAM.replace(":str", "") + "/messages",
}
_PATH = re.compile(r"/v1/teams/([^/]+)/advisors/([^/]+)/(?:(next)|messages/([^/]+)/"
                   r"(reply-and-next|reply|archive))")
_INGEST = re.compile(r"/v1/teams/([^/]+)/messages")
#: A message in is taken up to the framework route's own limit (larger: the framework's 413).
INGEST_MAX_BODY = defaults.MAX_BODY_BYTES + 16 * 1024
_ID = re.compile(ID_PATTERN)
_TEAM = re.compile(TEAM_ID_PATTERN)
_JSON = [(b"content-type", b"application/json")]
_PROBLEM = [(b"content-type", PROBLEM.encode())]
_encode = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(MessageIn).decode
#: ASGI's scope, receive and send, untyped here: the framework's typed ones are for its own
#: objects.
Scope = Any
Receive = Any
Send = Any
#: What answers a request the short path took: given the app's state, receive and send, it
#: answers whether it answered, and the receive the framework should read the request's body
#: from when it did not (the same, or one that gives again what the short path read).
Answer = Callable[[Any, Receive, Send], Awaitable[tuple[bool, Receive]]]
#: A response: status, headers, body.
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


class HotRoutes:
    """Matches a request against the short path's routes (``take``) and answers it."""

    def __init__(self, access_log: bool) -> None:
        self.access_log = access_log

    def take(self, scope: Scope) -> Answer | None:
        """If the short path may take this request: what answers it (an ``Answer``); it
        answers False, having sent nothing, when the token is refused or the body does not
        decode. Else None. Either way the framework's route answers what the short path does
        not."""
        if (scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string")
                or scope.get("root_path")):
            return None
        m = _PATH.fullmatch(scope["path"])
        if m is None:
            i = _INGEST.fullmatch(scope["path"])
            return self._message_in(scope, i.group(1)) if i is not None else None
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
            elif name == b"idempotency-key" and (is_next or action == "reply-and-next"):
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

        async def answer(state: Any, receive: Receive, send: Send) -> tuple[bool, Receive]:
            try:
                await authenticate(state, header, ADVISOR_SELF["allow"], team, advisor)
            except Exception:  # refused (or Redis away): the framework answers
                return False, receive

            async def work() -> Reply:
                if is_next:
                    push = await state.d.run(ops.next_message(team, advisor, request_id))
                    if push.status == "empty":
                        return 204, [], b""
                    metrics.observe_push(team, push, int(time.time() * 1000))
                    return 200, _JSON, _encode(push)
                if action == "reply-and-next":
                    out = await state.d.run(ops.reply_next(team, advisor, message, request_id))
                    metrics.observe_push(team, out, int(time.time() * 1000))
                    return 200, _JSON, _encode(out)
                status = await state.d.run(ops.act(action, team, advisor, message))
                return 200, _JSON, _encode(ActionOut(message, status))

            await self._reply(scope, send, work)
            return True, receive

        return answer

    def _message_in(self, scope: Scope, team: str) -> Answer | None:
        """A message in: one JSON message, its length given, within the route's limit."""
        if _TEAM.search(team) is None:
            return None
        auth = kind = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if auth is not None:
                    return None
                auth = value
            elif name == b"content-type":
                if kind is not None:
                    return None
                kind = value
            elif name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            elif name == b"transfer-encoding":
                return None
        if kind is None or kind.lower() != b"application/json" or length is None \
                or not 0 < length <= INGEST_MAX_BODY:
            return None
        header = auth.decode("latin-1") if auth is not None else ""
        scope["path_params"] = {"team": team}
        scope["path_template"] = TEMPLATES["ingest"]

        async def answer(state: Any, receive: Receive, send: Send) -> tuple[bool, Receive]:
            try:
                await authenticate(state, header, INGEST["allow"], team, None)
            except Exception:  # refused (or Redis away): the framework answers
                return False, receive
            got: list[dict[str, Any]] = []  # what was read, for the framework if it answers
            size, more = 0, True
            while more and size <= length:
                event = await receive()
                got.append(event)
                if event["type"] != "http.request":
                    break  # (the client went away: the framework sees it as it came)
                size += len(event.get("body", b""))
                more = event.get("more_body", False)
            try:
                if more or size != length:
                    raise ValueError("not the body its length announced")
                data = _decode_message(b"".join(e.get("body", b"") for e in got))
            except (ValueError, msgspec.DecodeError):
                return False, _replay(got, receive)

            async def work() -> Reply:
                result = await state.d.run(ops.ingest_one(team, msgspec.structs.asdict(data)))
                return 202, _JSON, _encode(ingest_result(data.id, result))

            await self._reply(scope, send, work)
            return True, receive

        return answer

    async def _reply(self, scope: Scope, send: Send, work: Callable[[], Awaitable[Reply]]) -> None:
        """Send what ``work`` answers, or its error as problem+json, with the access-log line
        and metrics of the framework's middleware."""

        async def respond(send_: Send) -> None:
            try:
                code, headers, body = await work()
            except Exception as exc:  # every error has its problem+json
                code, headers, body = _problem(exc, scope["path"])
            await _send(send_, code, headers, body)

        await observe(scope, send, respond, self.access_log)


def _problem(exc: Exception, path: str) -> Reply:
    """An error's status, headers and problem+json body, as the framework's handler gives."""
    code, body, extra = error_parts(exc, path)
    return code, [*_PROBLEM, *((k.lower().encode(), v.encode())
                               for k, v in (extra or {}).items())], body


def _replay(got: list[dict[str, Any]], receive: Receive) -> Receive:
    """A receive that gives again what was read, then reads on."""
    pending = list(got)

    async def replay() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replay


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if status != 204:  # No Content has no length either (RFC 9110 8.6), as the framework sends it
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
