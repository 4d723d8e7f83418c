"""The HTTP service: advisors' clients, supervisors' tools and upstream services.

A Litestar app (chosen by measurement: docs/performance.md) over ``AsyncDispatcher``: every
handler runs one operation of ``dispatcher.ops``, so the service has no logic of its own and
keeps no state; any number of processes can serve at once. Errors are problem+json.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
import structlog
import swagger_ui_bundle
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Example, SecurityScheme
from litestar.params import Body, Parameter
from litestar.response import Redirect, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Receive, Scope, Send

from dispatcher import defaults, ops, tokens, webhooks
from dispatcher.api import AsyncDispatcher, Jobs
from dispatcher.connection import connect_async
from dispatcher.errors import (
    ForbiddenError,
    PushinboxError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
)
from dispatcher.keys import ID_PATTERN, TEAM_ID_PATTERN
from dispatcher.model import Message, Push, Stock
from dispatcher.service import live, metrics
from dispatcher.service.schemas import (
    ActionOut,
    AdvisorIn,
    AdvisorOut,
    AssignIn,
    BreakEndOut,
    BreakOut,
    BreaksOut,
    ChannelOut,
    CustomerTagsIn,
    CustomerTagsOut,
    FiguresOut,
    GroupsChangedOut,
    GroupsIn,
    GroupsOut,
    Health,
    HelpIn,
    HookIn,
    HookOut,
    HoursIn,
    IngestResult,
    MessageBatchIn,
    MessageBatchOut,
    MessageIn,
    PreviewRow,
    Problem,
    RebucketingOut,
    RoleIn,
    ScreenOut,
    SessionOut,
    StockOut,
    TeamIn,
    TeamOut,
    WhoAmI,
)

log = structlog.get_logger("pushinbox.http")
access_log = structlog.get_logger("pushinbox.access")

PROBLEM = "application/problem+json"
#: Who may call a route: scopes, "advisor" meaning the advisor named in the path (or, on a
#: team route without an advisor, any advisor of the team).
ADVISOR_SELF = {"allow": ("advisor", "admin")}
TEAM_READ = {"allow": ("advisor", "supervisor", "admin")}
SUPERVISOR = {"allow": ("supervisor", "admin")}
INGEST = {"allow": ("ingest", "admin")}
ADMIN = {"allow": ("admin",)}
PUBLIC: dict[str, Any] = {}

TeamId = Annotated[str, Parameter(pattern=ID_PATTERN)]
TeamPath = Annotated[str, Parameter(pattern=TEAM_ID_PATTERN)]


@dataclass
class ServiceConfig:
    redis_url: str = "redis://127.0.0.1:6390/0"
    #: Jobs runner for long moves (RQ in production); None runs them inline.
    jobs: Jobs | None = None
    max_batch: int = defaults.INGEST_BATCH_MAX
    token_cache_s: float = defaults.TOKEN_CACHE_S
    clock: Callable[[], int] | None = None
    access_log: bool = True
    #: How often an advisor's open live stream counts as presence (see _keep_present).
    stream_presence_s: float = defaults.STREAM_PRESENCE_S


def _problem(status: int, title: str, detail: str, field: str | None = None,
             code: str | None = None, headers: dict[str, str] | None = None) -> Response[bytes]:
    body = msgspec.json.encode(Problem(f"urn:pushinbox:problem:{code or status}", title, status,
                                       detail, field, code))
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def _on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, PushinboxError):
        status = exc.http_status
        headers = {"Retry-After": "1"} if isinstance(exc, UnavailableError) else None
        if status >= 500 and not isinstance(exc, UnavailableError):
            log.error("operation_failed", error=str(exc), path=request.url.path)
        if isinstance(exc, UnauthorizedError):
            headers = {"WWW-Authenticate": "Bearer"}
        return _problem(status, exc.code.replace("_", " "), exc.message, exc.field, exc.code,
                        headers)
    if isinstance(exc, ValidationException):
        field, detail = _validation_detail(exc)
        return _problem(422, "invalid", detail, field, "invalid")
    if isinstance(exc, RecursionError | UnicodeDecodeError | msgspec.DecodeError):
        # A body nested too deep or not UTF-8: unreadable, not a failure of ours.
        return _problem(400, "malformed", "the request body is not valid UTF-8 JSON within "
                        "the nesting limit", "body", "malformed")
    if isinstance(exc, ValueError) and "null byte" in str(exc):
        return _problem(404, "not found", "no such resource")
    if isinstance(exc, HTTPException):
        detail = exc.detail or "request refused"
        if exc.status_code == 404:  # the framework's text may name files on this machine
            return _problem(404, "not found", "no such resource")
        if exc.status_code == 413:
            return _problem(413, "too large", "the request body is too large", "body",
                            "too_large")
        if exc.status_code == 400:
            detail = f"the request is malformed: {detail}"
        return _problem(exc.status_code, detail.lower(), detail, None, None,
                        dict(exc.headers or {}))
    log.exception("unexpected_error", path=request.url.path)
    return _problem(500, "internal error", "the service failed; the error is logged")


def _validation_detail(exc: ValidationException) -> tuple[str | None, str]:
    """msgspec/Litestar validation errors name a key; ours name a field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            msg = str(item.get("message", exc.detail))
            if msg.startswith("Expected") or "at `$" in msg:
                path = msg.split("at `$", 1)[1].rstrip("`").lstrip(".") if "at `$" in msg else ""
                field = path or key
                return field, f"{field}: {msg.split(' - at ')[0]}" if field else msg
            return key, f"{key}: {msg}" if key else msg
    return None, str(exc.detail)


# --- auth -------------------------------------------------------------------------------------
class TokenCache:
    """Checked tokens for a few seconds: revocation takes effect within ``ttl``, and a busy
    client costs no token read per request. Keyed by the token's digest (never its text) and
    bounded; a malformed token is refused before it is looked up or remembered."""

    def __init__(self, ttl: float, size: int = defaults.TOKEN_CACHE_MAX) -> None:
        self.ttl = ttl
        self.size = size
        self._seen: dict[bytes, tuple[float, tokens.Token | None]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    async def lookup(self, d: AsyncDispatcher, token: str) -> tokens.Token | None:
        if not tokens.well_formed(token):
            return None
        key = hashlib.blake2b(token.encode(), digest_size=16).digest()
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = await d.run(tokens.authenticate(token))
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (now, found)
        return found


def _state(connection: ASGIConnection[Any, Any, Any, Any]) -> State:
    return connection.app.state


async def auth_guard(connection: ASGIConnection[Any, Any, Any, Any],
                     handler: BaseRouteHandler) -> None:
    """Authenticate the bearer token and check its scope against the route and path."""
    allow = handler.opt.get("allow")
    if allow is None:
        return
    header = connection.headers.get("authorization", "")
    if len(header) > defaults.MAX_AUTH_HEADER:
        raise UnauthorizedError("the Authorization header is too long to hold a token")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise UnauthorizedError("a bearer token is required (Authorization: Bearer <token>)")
    st = _state(connection)
    tok = await st.tokens.lookup(st.d, value.strip())
    if tok is None:
        raise UnauthorizedError("the token is unknown or revoked")
    team = connection.path_params.get("team")
    advisor = connection.path_params.get("advisor")
    connection.scope["state"]["token"] = tok
    if handler.opt.get("no_team") and tok.scope in allow:
        return
    if not permitted(tok, allow, team, advisor):
        article = "an" if tok.scope[0] in "aeiou" else "a"
        raise ForbiddenError(f"{article} {tok.scope} token may not do this here",
                             field="authorization")
    if tok.scope == "advisor" and advisor and connection.scope.get("method") == "GET":
        with contextlib.suppress(PushinboxError):  # a read counts as presence, if logged in
            await st.d.run(ops.heartbeat(str(team), advisor))


def permitted(tok: tokens.Token, allow: tuple[str, ...], team: str | None,
              advisor: str | None) -> bool:
    if tok.scope not in allow:
        return False
    if tok.scope == "admin":
        return True
    if team is None:
        return False
    if tok.scope == "ingest":
        return tok.may_team(team)
    if tok.team != team:
        return False
    return tok.scope != "advisor" or advisor is None or advisor == tok.advisor


# --- access log and metrics -------------------------------------------------------------------
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


# --- helpers ----------------------------------------------------------------------------------
def _d(request: Request[Any, Any, Any]) -> AsyncDispatcher:
    d: AsyncDispatcher = request.app.state.d
    return d


def _stock(stock: Stock) -> StockOut:
    return StockOut(stock.total, [ChannelOut(c.channel, c.waiting, c.oldest_age_s)
                                  for c in stock.channels])


def _ingest_result(msg_id: str, result: str) -> IngestResult:
    kind, _, advisor = result.partition(":")
    return IngestResult(msg_id, kind, advisor or None)  # type: ignore[arg-type]


def _errors(*extra: int) -> dict[int, ResponseSpec]:
    """The problem+json answers a route may give (documented for clients and the fuzzer)."""
    described = {
        400: "Malformed request (e.g. the body is not JSON)",
        401: "Missing, unknown or revoked token",
        403: "The token's scope does not allow this",
        404: "Unknown team, advisor, message or route",
        409: "The action does not fit the current state",
        413: "A message or a batch is too large",
        422: "Bad input; `field` names what is wrong",
        503: "Redis is unreachable; retry after `Retry-After` seconds",
    }
    codes = (400, 401, 403, 404, 409, 422, 503, *extra)
    return {c: ResponseSpec(Problem, description=described[c], media_type=PROBLEM,
                            generate_examples=False) for c in codes}


MESSAGE_EXAMPLE = {
    "id": "wa-1001", "conversation": "conv-77", "customer": "cust-42", "channel": "whatsapp",
    "body": {"text": "Hello, my parcel has not arrived"}, "language": "en",
    "customer_tags": ["VIP"],
}
GROUPS_EXAMPLE = {
    "order": "oldest_conversation",
    "groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
               {"name": "Automatically reassigned", "match": {"reassigned": True}}],
}


# --- upstream services ------------------------------------------------------------------------
@post("/v1/teams/{team:str}/messages", opt=INGEST, status_code=202, responses=_errors(413),
      tags=["upstream"], summary="Ingest one message (idempotent by id)",
      request_max_body_size=defaults.MAX_BODY_BYTES + 16 * 1024)
async def ingest_one(
    request: Request[Any, Any, Any], team: TeamPath,
    data: Annotated[MessageIn, Body(examples=[Example("message", value=MESSAGE_EXAMPLE)])],
) -> IngestResult:
    result = await _d(request).run(ops.ingest_one(team, msgspec.structs.asdict(data)))
    return _ingest_result(data.id, result)


@post("/v1/teams/{team:str}/messages/batch", opt=INGEST, status_code=202,
      responses=_errors(413), tags=["upstream"],
      summary="Ingest a batch atomically (each message idempotent by id)",
      request_max_body_size=defaults.INGEST_BATCH_MAX_BYTES)
async def ingest_batch(request: Request[Any, Any, Any], team: TeamPath,
                       data: MessageBatchIn) -> MessageBatchOut:
    limit = request.app.state.config.max_batch
    if len(data.messages) > limit:
        raise TooLargeError(f"a batch holds at most {limit} messages", field="messages")
    results = await _d(request).run(
        ops.ingest_many(team, [msgspec.structs.asdict(m) for m in data.messages]))
    return MessageBatchOut([_ingest_result(m.id, r)
                            for m, r in zip(data.messages, results, strict=True)])


@put("/v1/teams/{team:str}/customers/{customer:str}/tags", opt=INGEST, responses=_errors(),
     tags=["upstream"], summary="A customer's tags changed")
async def customer_tags(request: Request[Any, Any, Any], team: TeamPath, customer: TeamId,
                        data: CustomerTagsIn) -> CustomerTagsOut:
    moved = await _d(request).run(ops.set_customer_tags(team, customer, data.tags))
    return CustomerTagsOut(customer, moved)


# --- advisors ---------------------------------------------------------------------------------
ADV = "/v1/teams/{team:str}/advisors/{advisor:str}"


@post(ADV + "/session", opt=ADVISOR_SELF, responses=_errors(), tags=["advisor"],
      status_code=200, summary="Log in")
async def login(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId) -> SessionOut:
    epoch = await _d(request).run(ops.login(team, advisor))
    return SessionOut(advisor, "online", epoch)


@delete(ADV + "/session", opt=ADVISOR_SELF, responses=_errors(), tags=["advisor"],
        status_code=200, summary="Log out: the advisor's messages go back to the team")
async def logout(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId) -> SessionOut:
    job = await _d(request).run(ops.logout(team, advisor))
    return SessionOut(advisor, "offline", None, job)


@post(ADV + "/next", opt=ADVISOR_SELF, status_code=200, tags=["advisor"],
      summary="Process a new message",
      description="200 with the conversation's waiting messages (a retry returns the same "
                  "ones until they are processed); 204 when the team's stock is empty.",
      responses={**_errors(), 204: ResponseSpec(None, description="The stock is empty")})
async def next_message(
    request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId,
    idempotency_key: Annotated[str | None, Parameter(
        header="Idempotency-Key", required=False, max_length=200,
        pattern=ID_PATTERN)] = None,
) -> Response[Push]:
    d = _d(request)
    push = await d.run(ops.next_message(team, advisor, idempotency_key))
    if push.status == "empty":
        return Response(None, status_code=204)  # type: ignore[arg-type]
    metrics.observe_push(team, push, int(time.time() * 1000))
    return Response(push)


Cursor = Annotated[str | None, Parameter(
    required=False, max_length=9, pattern=r"^[0-9]{1,9}(?![\s\S])",
    description="From the `Link: <…>; rel=\"next\"` header of the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=ops.PAGE_MAX, description="Messages per page")]
PAGED = ("Paged: at most `limit` messages (default and maximum 1,000); when more follow, "
         "the `Link` header names the next page (`rel=\"next\"`).")


def _paged(request: Request[Any, Any, Any], page: ops.Page) -> Response[list[Message]]:
    if page.next_cursor is None:
        return Response(page.items)
    query = dict(request.query_params)
    query["cursor"] = page.next_cursor
    link = str(request.url.with_replacements(query=urlencode(query)))
    return Response(page.items, headers={"Link": f'<{link}>; rel="next"'})


@get(ADV + "/messages", opt=TEAM_READ, description=PAGED,
     responses=_errors(), tags=["advisor"], summary="Your current messages")
async def current(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId,
                  cursor: Cursor = None, limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
    return _paged(request, await _d(request).run(ops.current_page(team, advisor, cursor,
                                                                   limit)))


def _action(script: str, summary: str) -> Any:
    @post(ADV + "/messages/{message:str}/" + script.replace("_", "-"), opt=ADVISOR_SELF,
          status_code=200, responses=_errors(), tags=["advisor"], summary=summary,
          operation_id=f"message_{script}", name=f"message_{script}")
    async def handler(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId,
                      message: TeamId) -> ActionOut:
        off = script == "unhold"
        status = await _d(request).run(
            ops.act("hold" if off else script, team, advisor, message,
                    **({"off": True} if off else {})))
        return ActionOut(message, status)  # type: ignore[arg-type]

    return handler


reply = _action("reply", "Reply: the message is done and counts as a response")
archive = _action("archive", "Archive: the message is done")
hold = _action("hold", "Put on hold (stays in your hands)")
unhold = _action("unhold", "Take off hold")


@post(ADV + "/messages/{message:str}/help", opt=ADVISOR_SELF, status_code=200,
      responses=_errors(), tags=["advisor"], summary="Request help from a supervisor")
async def request_help(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId,
                       message: TeamId, data: HelpIn | None = None) -> ActionOut:
    note = data.note if data else ""
    status = await _d(request).run(ops.act("help", team, advisor, message, note=note))
    return ActionOut(message, status)  # type: ignore[arg-type]


@post(ADV + "/break", opt=ADVISOR_SELF, status_code=200, responses=_errors(),
      tags=["advisor"], summary="Start a break (ends at the end of the working-hours range)")
async def start_break(request: Request[Any, Any, Any], team: TeamPath,
                      advisor: TeamId) -> BreakOut:
    info = await _d(request).run(ops.start_break(team, advisor))
    return BreakOut(info.status, info.since, info.until, info.job)  # type: ignore[arg-type]


@delete(ADV + "/break", opt=ADVISOR_SELF, status_code=200, responses=_errors(),
        tags=["advisor"], summary="End a break")
async def end_break(request: Request[Any, Any, Any], team: TeamPath,
                    advisor: TeamId) -> BreakEndOut:
    ms = await _d(request).run(ops.end_break(team, advisor))
    return BreakEndOut(ms > 0, round(ms / 1000, 3))


@get(ADV + "/screen", opt=TEAM_READ, responses=_errors(),
     tags=["advisor"], summary="Everything the advisor's screen shows, in one call")
async def screen(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId) -> ScreenOut:
    d = _d(request)
    stock = await d.run(ops.team_stock(team))
    stats = await d.run(ops.advisor_stats(team, advisor, stock=stock))
    held = (await d.run(ops.current_page(team, advisor))).items
    return ScreenOut(
        advisor, stats.state, stats.break_started_at,  # type: ignore[arg-type]
        FiguresOut(stats.day, stats.responses, stats.archives, stats.break_seconds,
                   stats.assigned, stock.total),
        _stock(stock), held)


@get(ADV + "/live", opt=TEAM_READ, tags=["live"],
     responses=_errors(), summary="Live updates for the advisor (Server-Sent Events)",
     description="Events: `stock` (team stock per channel), `figures` (the advisor's day), "
                 "`assigned` (a message given by a supervisor or a triage rule), `resync` "
                 "(more than 2,000 events were missed: reload your current messages), "
                 "`closed` (the token was revoked, or the team or advisor deleted). "
                 "Reconnect with `Last-Event-ID` to get what was missed.",
     media_type="text/event-stream")
async def advisor_live(request: Request[Any, Any, Any], team: TeamPath,
                       advisor: TeamId) -> ServerSentEvent:
    d = _d(request)
    live.check_last_event_id(request.headers.get("last-event-id"))  # 400 before the stream
    await d.run(ops.advisor_stats(team, advisor))  # 404 before the stream starts
    return ServerSentEvent(_stream(request, team, advisor))


@get("/v1/teams/{team:str}/live", opt=TEAM_READ, tags=["live"], responses=_errors(),
     summary="Live team stock per channel (Server-Sent Events)",
     description="Events: `stock` (per channel), `advisors` (someone logged in or out, or "
                 "started or ended a break: who can receive changed), `closed`.",
     media_type="text/event-stream")
async def team_live(request: Request[Any, Any, Any], team: TeamPath) -> ServerSentEvent:
    live.check_last_event_id(request.headers.get("last-event-id"))
    await _d(request).run(ops.require_team(team))
    return ServerSentEvent(_stream(request, team, None))


async def _still_allowed(request: Request[Any, Any, Any], team: str,
                         advisor: str | None) -> str | None:
    """Why an open stream must end now (token revoked, team or advisor deleted), or None;
    None too while Redis cannot say (the stream waits for it like the feed does)."""
    st = request.app.state
    _, _, raw = request.headers.get("authorization", "").partition(" ")
    try:
        found = await st.tokens.lookup(st.d, raw.strip())
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


async def _keep_present(request: Request[Any, Any, Any], team: str, advisor: str,
                        now: float) -> None:
    """An advisor with the console open is present: their own live stream refreshes presence,
    at most once per STREAM_PRESENCE_S per advisor and process, whatever the number of tabs."""
    beats: dict[tuple[str, str], float] = request.app.state.hub.beats
    if now - beats.get((team, advisor), -1e9) < request.app.state.config.stream_presence_s:
        return
    beats[(team, advisor)] = now
    with contextlib.suppress(PushinboxError):  # logged out meanwhile: a stream never logs in
        await _d(request).run(ops.heartbeat(team, advisor))


async def _stream(request: Request[Any, Any, Any], team: str,
                  advisor: str | None) -> AsyncIterator[ServerSentEventMessage]:
    """The live feed; it re-checks its token, team and advisor every token-cache period, so
    a revocation or deletion ends it within that delay, as it ends new requests."""
    d, hub = _d(request), request.app.state.hub
    recheck = max(0.1, request.app.state.config.token_cache_s)
    tok = request.scope["state"].get("token")
    own = advisor is not None and tok is not None and tok.scope == "advisor"
    sub = hub.subscribe(team, advisor)
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
                    await _keep_present(request, team, str(advisor), now)
                reason = await _still_allowed(request, team, advisor)
                if reason is not None:
                    yield ServerSentEventMessage(data=json.dumps({"reason": reason}),
                                                 event="closed")
                    return
            if now >= next_alive:
                next_alive = now + defaults.SSE_KEEPALIVE_S
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            try:
                upd = await asyncio.wait_for(sub.queue.get(),
                                             max(0.0, min(next_check, next_alive) - now))
            except TimeoutError:
                continue
            if upd is None:
                return
            next_alive = loop.time() + defaults.SSE_KEEPALIVE_S
            yield _sse(upd)
    finally:
        metrics.SSE_CLIENTS.dec()
        hub.unsubscribe(sub)


def _sse(upd: live.Update) -> ServerSentEventMessage:
    data = _stock(upd.data) if isinstance(upd.data, Stock) else upd.data
    body = msgspec.json.encode(data).decode()
    return ServerSentEventMessage(data=body, event=upd.event, id=upd.id)


# --- supervisors ------------------------------------------------------------------------------
TEAM = "/v1/teams/{team:str}"


@get(TEAM, opt=SUPERVISOR, responses=_errors(), tags=["supervisor"], summary="Team settings")
async def team_show(request: Request[Any, Any, Any], team: TeamPath) -> TeamOut:
    s = await _d(request).run(ops.team_settings(team))
    hours = HoursIn(**s.pop("hours")) if s["hours"] else None
    return TeamOut(**{k: v for k, v in s.items() if k != "hours"}, hours=hours)


@get(TEAM + "/stock", opt=TEAM_READ, responses=_errors(), tags=["supervisor"],
     summary="The team's waiting messages, total and per channel")
async def stock(request: Request[Any, Any, Any], team: TeamPath) -> StockOut:
    found = await _d(request).run(ops.team_stock(team))
    metrics.set_stock(team, found)
    return _stock(found)


@get(TEAM + "/advisors", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Advisors with their state and assigned messages")
async def advisors(request: Request[Any, Any, Any], team: TeamPath) -> list[AdvisorOut]:
    return [AdvisorOut(**a) for a in await _d(request).run(ops.advisors(team))]


@get(TEAM + "/preview", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="The ordered list: what the next presses get")
async def preview(request: Request[Any, Any, Any], team: TeamPath,
                  n: Annotated[int, Parameter(ge=1, le=1000)] = 10) -> list[PreviewRow]:
    return [PreviewRow(**r) for r in await _d(request).run(ops.preview(team, n))]


@post(TEAM + "/messages/{message:str}/assign", opt=SUPERVISOR, status_code=200,
      responses=_errors(), tags=["supervisor"],
      summary="Assign a message (its conversation) to an advisor by hand")
async def assign(request: Request[Any, Any, Any], team: TeamPath, message: TeamId,
                 data: AssignIn) -> list[Message]:
    tok = request.scope["state"]["token"]
    return await _d(request).run(ops.assign(team, data.advisor, message, by=tok.id))


@get(TEAM + "/messages/{message:str}", opt=SUPERVISOR, responses=_errors(),
     tags=["supervisor"], summary="One message, wherever it is")
async def message_show(request: Request[Any, Any, Any], team: TeamPath,
                       message: TeamId) -> Message:
    return await _d(request).run(ops.message(team, message))


@get(TEAM + "/help-requests", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Messages whose advisor asked for help", description=PAGED)
async def help_requests(request: Request[Any, Any, Any], team: TeamPath, cursor: Cursor = None,
                        limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
    return _paged(request, await _d(request).run(ops.place_page(team, "help", cursor, limit)))


@get(TEAM + "/quarantine", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Poison messages set aside after too many requeues", description=PAGED)
async def quarantine(request: Request[Any, Any, Any], team: TeamPath, cursor: Cursor = None,
                     limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
    return _paged(request, await _d(request).run(ops.place_page(team, "quarantine", cursor,
                                                                 limit)))


@get(TEAM + "/groups", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Priority groups and the order inside them")
async def groups_show(request: Request[Any, Any, Any], team: TeamPath) -> GroupsOut:
    s = await _d(request).run(ops.groups(team))
    return msgspec.convert({"order": s.order, "groups": s.groups}, GroupsOut)


@put(TEAM + "/groups", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Change priority groups (the stock is re-bucketed by a job)")
async def groups_set(
    request: Request[Any, Any, Any], team: TeamPath,
    data: Annotated[GroupsIn, Body(examples=[Example("groups", value=GROUPS_EXAMPLE)])],
) -> GroupsChangedOut:
    res = await _d(request).run(ops.set_groups(team, msgspec.to_builtins(data)))
    return GroupsChangedOut(res["version"], bool(res["rebucket"]), res["job"])


@get(TEAM + "/rebucketing", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Progress of the re-bucketing after the last change of groups")
async def rebucketing(request: Request[Any, Any, Any], team: TeamPath) -> RebucketingOut:
    return RebucketingOut(**await _d(request).run(ops.rebucket_progress(team)))


@get(TEAM + "/hours", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Working hours (null when none are set)")
async def hours_show(request: Request[Any, Any, Any], team: TeamPath) -> HoursIn | None:
    found = await _d(request).run(ops.hours(team))
    return HoursIn(**found.to_dict()) if found else None


@put(TEAM + "/hours", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Set working hours (breaks end at the end of a range)")
async def hours_set(request: Request[Any, Any, Any], team: TeamPath, data: HoursIn) -> HoursIn:
    found = await _d(request).run(ops.set_hours(team, msgspec.to_builtins(data)))
    return HoursIn(**found.to_dict())


@get(TEAM + "/breaks", opt=SUPERVISOR, responses=_errors(), tags=["supervisor"],
     summary="Break time per day, per advisor and for the team")
async def breaks(request: Request[Any, Any, Any], team: TeamPath, start: date,
                 days: Annotated[int, Parameter(ge=1, le=366)] = 7) -> BreaksOut:
    return msgspec.convert(await _d(request).run(ops.breaks(team, start, days)), BreaksOut)


@get(TEAM + "/webhooks", opt=SUPERVISOR, responses=_errors(), tags=["webhooks"],
     summary="The team's webhooks (secrets are never shown again)")
async def hooks_list(request: Request[Any, Any, Any], team: TeamPath) -> list[HookOut]:
    return [HookOut(**h.to_dict()) for h in await _d(request).run(webhooks.list_hooks(team))]


@post(TEAM + "/webhooks", opt=SUPERVISOR, status_code=201, responses=_errors(),
      tags=["webhooks"], summary="Register a webhook; the answer holds its signing secret")
async def hooks_create(request: Request[Any, Any, Any], team: TeamPath, data: HookIn) -> HookOut:
    webhooks.check_events(data.events)
    await asyncio.to_thread(webhooks.check_destination, data.url)  # resolves: off the loop
    hook = await _d(request).run(webhooks.create_hook(team, data.url, data.events))
    return HookOut(**hook.to_dict())


@delete(TEAM + "/webhooks/{hook:str}", opt=SUPERVISOR, status_code=200, responses=_errors(),
        tags=["webhooks"], summary="Remove a webhook")
async def hooks_delete(request: Request[Any, Any, Any], team: TeamPath, hook: TeamId) -> Health:
    await _d(request).run(webhooks.delete_hook(team, hook))
    return Health("deleted")


# --- admin ------------------------------------------------------------------------------------
@post("/v1/teams", opt=ADMIN, status_code=201, responses=_errors(), tags=["admin"],
      summary="Create a team (or rename an existing one)")
async def team_create(request: Request[Any, Any, Any], data: TeamIn) -> TeamOut:
    d = _d(request)
    await d.run(ops.create_team(data.team, data.name))
    return await team_show.fn(request, data.team)  # type: ignore[no-any-return]


@put(TEAM + "/roles/{role:str}", opt=ADMIN, responses=_errors(), tags=["admin"],
     summary="Create or change a role (push mode, capacity)")
async def role_set(request: Request[Any, Any, Any], team: TeamPath, role: TeamId,
                   data: RoleIn) -> Health:
    await _d(request).run(ops.set_role(team, role, push=data.push, capacity=data.capacity))
    return Health("ok")


@put(ADV, opt=ADMIN, responses=_errors(), tags=["admin"], summary="Create or change an advisor")
async def advisor_set(request: Request[Any, Any, Any], team: TeamPath, advisor: TeamId,
                      data: AdvisorIn) -> Health:
    await _d(request).run(ops.set_advisor(team, advisor, data.role, data.name))
    return Health("ok")


# --- who am I (the web pages start here) ------------------------------------------------------
ANY_TOKEN = {"allow": ("advisor", "supervisor", "ingest", "admin"), "no_team": True}


@get("/v1/whoami", opt=ANY_TOKEN, responses=_errors(), tags=["admin"],
     summary="The calling token's scope, team and advisor")
async def whoami(request: Request[Any, Any, Any]) -> WhoAmI:
    tok: tokens.Token = request.scope["state"]["token"]
    return WhoAmI(tok.id, tok.scope, tok.team, tok.advisor, tok.teams)


@get("/", opt=PUBLIC, include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/ui/console.html")


# --- operations -------------------------------------------------------------------------------
@get("/healthz", opt=PUBLIC, tags=["operations"], summary="The process is up",
     responses={503: ResponseSpec(Problem, media_type=PROBLEM, generate_examples=False)})
async def healthz() -> Health:
    return Health("ok")


@get("/readyz", opt=PUBLIC, tags=["operations"], summary="Redis is reachable, scripts loaded",
     responses={503: ResponseSpec(Problem, media_type=PROBLEM, generate_examples=False)})
async def readyz(request: Request[Any, Any, Any]) -> Health:
    await _d(request).ready()
    return Health("ready")


@get("/metrics", opt=PUBLIC, tags=["operations"], summary="Prometheus metrics",
     media_type="text/plain", include_in_schema=False)
async def metrics_view(request: Request[Any, Any, Any]) -> Response[bytes]:
    # Waiting counts are read now, for every team (two round trips), not left from the last
    # time someone happened to read a stock.
    with contextlib.suppress(PushinboxError):
        for team, channels in (await _d(request).run(ops.waiting_counts())).items():
            metrics.set_waiting(team, channels)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@get("/openapi.json", opt=PUBLIC, include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    schema = request.app.openapi_schema.to_schema()
    return Response(json.dumps(schema).encode(), media_type="application/json")


DOCS_ASSETS = "/docs-assets"

ROUTES = [
    ingest_one, ingest_batch, customer_tags,
    login, logout, next_message, current, reply, archive, hold, unhold, request_help,
    start_break, end_break, screen, advisor_live, team_live,
    team_show, stock, advisors, preview, assign, message_show, help_requests, quarantine,
    groups_show, groups_set, rebucketing, hours_show, hours_set, breaks,
    hooks_list, hooks_create, hooks_delete,
    team_create, role_set, advisor_set,
    healthz, readyz, metrics_view, openapi_json, whoami, home,
    create_static_files_router("/ui", [Path(__file__).parent / "static"], name="ui",
                               cache_control=CacheControlHeader(no_cache=True)),
    create_static_files_router(DOCS_ASSETS, [Path(swagger_ui_bundle.swagger_ui_path)],
                               name="docs-assets", include_in_schema=False,
                               cache_control=CacheControlHeader(max_age=86400)),
]


def create_app(config: ServiceConfig | None = None) -> Litestar:
    """The ASGI app; ``uvicorn dispatcher.service:app`` reads its config from the environment."""
    cfg = config or ServiceConfig()
    state = State({"config": cfg, "tokens": TokenCache(cfg.token_cache_s)})

    async def start(app: Litestar) -> None:
        client = connect_async(cfg.redis_url)
        # One connection per team feed blocks in XREAD: a pool of its own, sized for teams.
        blocking = connect_async(cfg.redis_url, socket_timeout=None, max_connections=10_000)
        d = AsyncDispatcher(client, jobs=cfg.jobs, clock=cfg.clock,
                            on_script=lambda s, t: metrics.SCRIPT.labels(s).observe(t))
        app.state.d = d
        app.state.blocking = blocking
        app.state.hub = live.Hub(d, blocking)
        with contextlib.suppress(PushinboxError):  # Redis away at start: /readyz says so
            await d.ready()

    async def stop(app: Litestar) -> None:
        await app.state.hub.close()
        await app.state.d.redis.aclose()
        await app.state.blocking.aclose()

    return Litestar(
        route_handlers=ROUTES,
        guards=[auth_guard],
        state=state,
        on_startup=[start],
        on_shutdown=[stop],
        middleware=[AccessLog(cfg.access_log)],
        exception_handlers={Exception: _on_error},
        request_max_body_size=defaults.MAX_REQUEST_BYTES,
        openapi_config=OpenAPIConfig(
            title="pushinbox",
            version="1",
            description="Push-mode dispatching of customer messages. Every call carries a "
                        "bearer token (`pushinbox token create`); errors are problem+json.",
            security=[{"bearer": []}],
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer")}),
            path="/docs",
            # Swagger UI from the swagger-ui-bundle package, served here: /docs works offline.
            render_plugins=[SwaggerRenderPlugin(
                path="/", js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon="<link rel='icon' href='/ui/favicon.svg' type='image/svg+xml'>")],
        ),
        debug=False,
    )
