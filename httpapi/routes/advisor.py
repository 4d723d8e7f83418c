"""Advisors: their session, *Process a new message*, their actions on the messages in their
hands, breaks, the screen in one call; and the live updates (advisor and team streams)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody
from litestar.response import ServerSentEvent

from dispatcher import ops
from dispatcher.api import AsyncDispatcher
from dispatcher.keys import ID_PATTERN
from dispatcher.model import Message, Push, ReplyAndPush
from httpapi import live, metrics
from httpapi.auth import ADVISOR_SELF, TEAM_READ
from httpapi.common import (
    ADV,
    PAGED,
    TEAM,
    Cursor,
    DispatcherDep,
    Limit,
    TeamId,
    TeamPath,
    paged,
    stock_out,
)
from httpapi.problems import errors
from httpapi.routes import Audience
from httpapi.schemas import (
    ActionOut,
    BreakEndOut,
    BreakOut,
    FiguresOut,
    HelpIn,
    ScreenOut,
    SessionOut,
)
from httpapi.streams import open_stream

__all__ = ["AdvisorController", "LiveController"]


async def _act(d: AsyncDispatcher, action: str, team: str, advisor: str, message: str,
               **extra: Any) -> ActionOut:
    status = await d.run(ops.act(action, team, advisor, message, **extra))
    return ActionOut(message, status)  # type: ignore[arg-type]


class AdvisorController(Audience):
    """The advisor named in the path (or an admin); reads are open to the team's supervisors."""

    path = ADV
    tags = ["advisor"]
    opt = ADVISOR_SELF

    @post("/session", responses=errors(), status_code=200, summary="Log in")
    async def login(self, d: DispatcherDep, team: TeamPath, advisor: TeamId) -> SessionOut:
        epoch = await d.run(ops.login(team, advisor))
        return SessionOut(advisor, "online", epoch)

    @delete("/session", responses=errors(), status_code=200,
            summary="Log out: the advisor's messages go back to the team")
    async def logout(self, d: DispatcherDep, team: TeamPath, advisor: TeamId) -> SessionOut:
        job = await d.run(ops.logout(team, advisor))
        return SessionOut(advisor, "offline", None, job)

    @post("/next", status_code=200, summary="Process a new message",
          description="200 with the conversation's waiting messages (a retry returns the same "
                      "ones until they are processed); 204 when the team's stock is empty.",
          responses={**errors(), 204: ResponseSpec(None, description="The stock is empty")})
    async def next_message(
        self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
        idempotency_key: Annotated[str | None, HeaderParameter(
            name="Idempotency-Key", required=False, max_length=200,
            pattern=ID_PATTERN)] = None,
    ) -> Response[Push]:
        push = await d.run(ops.next_message(team, advisor, idempotency_key))
        if push.status == "empty":
            return Response(None, status_code=204)  # type: ignore[arg-type]
        metrics.observe_push(team, push, int(time.time() * 1000))
        return Response(push)

    @get("/messages", opt=TEAM_READ, description=PAGED, responses=errors(),
         summary="Your current messages")
    async def current(self, request: Request[Any, Any, Any], d: DispatcherDep,
                      team: TeamPath, advisor: TeamId, cursor: Cursor = None,
                      limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
        return paged(request, await d.run(ops.current_page(team, advisor, cursor, limit)))

    @post("/messages/{message:str}/reply", status_code=200, responses=errors(),
          summary="Reply: the message is done and counts as a response",
          operation_id="message_reply", name="message_reply")
    async def reply(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                    message: TeamId) -> ActionOut:
        return await _act(d, "reply", team, advisor, message)

    @post("/messages/{message:str}/reply-and-next", status_code=200, responses=errors(),
          summary="Reply, then process a new message, in one call",
          description="The advisor's whole cycle: the reply (`replied`: ok, or noop when "
                      "it was replied already) and the press's answer (`status` and "
                      "`messages`, as *Process a new message*'s; `status` empty when the "
                      "stock is). Refused whole, nothing answered and nothing pushed, when "
                      "either part is refused. `Idempotency-Key` as for `next`.",
          operation_id="message_reply_and_next", name="message_reply_and_next")
    async def reply_and_next(
        self, d: DispatcherDep, team: TeamPath, advisor: TeamId, message: TeamId,
        idempotency_key: Annotated[str | None, HeaderParameter(
            name="Idempotency-Key", required=False, max_length=200,
            pattern=ID_PATTERN)] = None,
    ) -> ReplyAndPush:
        out = await d.run(ops.reply_next(team, advisor, message, idempotency_key))
        metrics.observe_push(team, out, int(time.time() * 1000))
        return out

    @post("/messages/{message:str}/archive", status_code=200, responses=errors(),
          summary="Archive: the message is done",
          operation_id="message_archive", name="message_archive")
    async def archive(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                      message: TeamId) -> ActionOut:
        return await _act(d, "archive", team, advisor, message)

    @post("/messages/{message:str}/hold", status_code=200, responses=errors(),
          summary="Put on hold (stays in your hands)",
          operation_id="message_hold", name="message_hold")
    async def hold(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                   message: TeamId) -> ActionOut:
        return await _act(d, "hold", team, advisor, message)

    @post("/messages/{message:str}/unhold", status_code=200, responses=errors(),
          summary="Take off hold", operation_id="message_unhold", name="message_unhold")
    async def unhold(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                     message: TeamId) -> ActionOut:
        return await _act(d, "hold", team, advisor, message, off=True)

    @post("/messages/{message:str}/help", status_code=200, responses=errors(),
          summary="Request help from a supervisor")
    async def request_help(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                           message: TeamId, data: JSONBody[HelpIn | None] = None) -> ActionOut:
        return await _act(d, "help", team, advisor, message, note=data.note if data else "")

    @post("/break", status_code=200, responses=errors(),
          summary="Start a break (ends at the end of the working-hours range)")
    async def start_break(self, d: DispatcherDep, team: TeamPath,
                          advisor: TeamId) -> BreakOut:
        info = await d.run(ops.start_break(team, advisor))
        return BreakOut(info.status, info.since, info.until, info.job)  # type: ignore[arg-type]

    @delete("/break", status_code=200, responses=errors(), summary="End a break")
    async def end_break(self, d: DispatcherDep, team: TeamPath,
                        advisor: TeamId) -> BreakEndOut:
        ms = await d.run(ops.end_break(team, advisor))
        return BreakEndOut(ms > 0, round(ms / 1000, 3))

    @get("/screen", opt=TEAM_READ, responses=errors(),
         summary="Everything the advisor's screen shows, in one call")
    async def screen(self, d: DispatcherDep, team: TeamPath, advisor: TeamId) -> ScreenOut:
        stock = await d.run(ops.team_stock(team))
        stats = await d.run(ops.advisor_stats(team, advisor, stock=stock))
        held = (await d.run(ops.current_page(team, advisor))).items
        return ScreenOut(
            advisor, stats.state, stats.break_started_at,  # type: ignore[arg-type]
            FiguresOut(stats.day, stats.responses, stats.archives, stats.break_seconds,
                       stats.assigned, stock.total),
            stock_out(stock), held)


class LiveController(Audience):
    """Server-Sent Events: an advisor's updates and the team's stock, resumable."""

    path = TEAM
    tags = ["live"]
    opt = TEAM_READ

    @get("/advisors/{advisor:str}/live", responses=errors(429),
         summary="Live updates for the advisor (Server-Sent Events)",
         description="Events: `stock` (team stock per channel), `figures` (the advisor's day), "
                     "`assigned` (a message given by a supervisor or a triage rule), `resync` "
                     "(more than 2,000 events were missed: reload your current messages), "
                     "`closed` (the token was revoked, or the team or advisor deleted). "
                     "Reconnect with `Last-Event-ID` to get what was missed.",
         media_type="text/event-stream")
    async def advisor_live(self, request: Request[Any, Any, Any], d: DispatcherDep,
                           team: TeamPath, advisor: TeamId) -> ServerSentEvent:
        live.check_last_event_id(request.headers.get("last-event-id"))  # 400 before the stream
        await d.run(ops.advisor_stats(team, advisor))  # 404 before the stream starts
        return open_stream(request, d, team, advisor)

    @get("/live", responses=errors(429),
         summary="Live team stock per channel (Server-Sent Events)",
         description="Events: `stock` (per channel), `advisors` (someone logged in or out, or "
                     "started or ended a break: who can receive changed), `team` (for "
                     "supervisor and admin tokens: the team view of `GET …/team-view`, at "
                     "most every half second while something changes), `closed`.",
         media_type="text/event-stream")
    async def team_live(self, request: Request[Any, Any, Any], d: DispatcherDep,
                        team: TeamPath) -> ServerSentEvent:
        live.check_last_event_id(request.headers.get("last-event-id"))
        await d.run(ops.require_team(team))
        return open_stream(request, d, team, None)
