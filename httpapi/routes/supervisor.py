"""Supervisors: the team's settings and stock, the ordered list, hand assignment, help
requests and quarantine, priority groups, working hours, break figures; and webhooks."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.openapi.spec import Example
from litestar.params import Body, FromQuery, JSONBody, Parameter

from dispatcher import ops, reports, webhooks
from dispatcher.api import AsyncDispatcher
from dispatcher.model import Message
from httpapi import metrics
from httpapi.auth import SUPERVISOR, TEAM_READ
from httpapi.common import (
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
    AdvisorOut,
    AssignIn,
    BreaksOut,
    GroupsChangedOut,
    GroupsIn,
    GroupsOut,
    GroupStockRow,
    Health,
    HookIn,
    HookOut,
    HoursIn,
    PreviewRow,
    RebucketingOut,
    ReportOut,
    SkillsIn,
    SkillsOut,
    StockOut,
    TeamOut,
    TeamViewOut,
)

__all__ = ["GROUPS_EXAMPLE", "SupervisorController", "WebhookController", "team_out"]

GROUPS_EXAMPLE = {
    "order": "oldest_conversation",
    "groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
               {"name": "Automatically reassigned", "match": {"reassigned": True}}],
}


async def team_out(d: AsyncDispatcher, team: str) -> TeamOut:
    """The team's settings as the API shows them (also the answer to creating a team)."""
    s = await d.run(ops.team_settings(team))
    hours = HoursIn(**s.pop("hours")) if s["hours"] else None
    return TeamOut(**{k: v for k, v in s.items() if k != "hours"}, hours=hours)


class SupervisorController(Audience):
    path = TEAM
    tags = ["supervisor"]
    opt = SUPERVISOR

    @get("/", responses=errors(), summary="Team settings")
    async def team_show(self, d: DispatcherDep, team: TeamPath) -> TeamOut:
        return await team_out(d, team)

    @get("/stock", opt=TEAM_READ, responses=errors(),
         summary="The team's waiting messages, total and per channel")
    async def stock(self, d: DispatcherDep, team: TeamPath) -> StockOut:
        found = await d.run(ops.team_stock(team))
        metrics.set_stock(team, found)
        return stock_out(found)

    @get("/advisors", responses=errors(),
         summary="Advisors with their state and assigned messages")
    async def advisors(self, d: DispatcherDep, team: TeamPath) -> list[AdvisorOut]:
        return [AdvisorOut(**a) for a in await d.run(ops.advisors(team))]

    @put("/advisors/{advisor:str}/skills", responses=errors(),
         summary="Change an advisor's skills (replace, add, remove: one atomic step)")
    async def skills_set(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                         data: JSONBody[SkillsIn]) -> SkillsOut:
        skills = await d.run(ops.set_skills(team, advisor, skills=data.skills, add=data.add,
                                            remove=data.remove))
        return SkillsOut(advisor, skills)

    @get("/preview", responses=errors(), summary="The ordered list: what the next presses get",
         description="With `advisor`: what that advisor's next presses get (the groups whose "
                     "required skills they have).")
    async def preview(self, d: DispatcherDep, team: TeamPath,
                      n: Annotated[int, Parameter(ge=1, le=1000)] = 10,
                      advisor: Annotated[str | None, Parameter(max_length=200)] = None,
                      ) -> list[PreviewRow]:
        return [PreviewRow(**r) for r in await d.run(ops.preview(team, n, advisor))]

    @get("/team-view", responses=errors(),
         summary="The team now: advisors' states and figures, groups' waiting and pace",
         description="The same snapshot reaches the team's live stream (`GET …/live`) as "
                     "`team` events, at most every half second while something changes.")
    async def team_view(self, d: DispatcherDep, team: TeamPath) -> TeamViewOut:
        return msgspec.convert(await d.run(ops.team_live(team)), TeamViewOut)

    @get("/groups/stock", responses=errors(),
         summary="Per priority group: waiting conversations and who may take them")
    async def groups_stock(self, d: DispatcherDep, team: TeamPath) -> list[GroupStockRow]:
        return [GroupStockRow(**g) for g in await d.run(ops.group_stock(team))]

    @post("/messages/{message:str}/assign", status_code=200, responses=errors(),
          summary="Assign a message (its conversation) to an advisor by hand")
    async def assign(self, request: Request[Any, Any, Any], d: DispatcherDep,
                     team: TeamPath, message: TeamId, data: JSONBody[AssignIn]) -> list[Message]:
        tok = request.scope["state"]["token"]
        return await d.run(ops.assign(team, data.advisor, message, by=tok.id))

    @get("/messages/{message:str}", responses=errors(), summary="One message, wherever it is")
    async def message_show(self, d: DispatcherDep, team: TeamPath,
                           message: TeamId) -> Message:
        return await d.run(ops.message(team, message))

    @get("/help-requests", responses=errors(), description=PAGED,
         summary="Messages whose advisor asked for help")
    async def help_requests(self, request: Request[Any, Any, Any], d: DispatcherDep,
                            team: TeamPath, cursor: Cursor = None,
                            limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
        return paged(request, await d.run(ops.place_page(team, "help", cursor, limit)))

    @get("/quarantine", responses=errors(), description=PAGED,
         summary="Poison messages set aside after too many requeues")
    async def quarantine(self, request: Request[Any, Any, Any], d: DispatcherDep,
                         team: TeamPath, cursor: Cursor = None,
                         limit: Limit = ops.PAGE_MAX) -> Response[list[Message]]:
        return paged(request, await d.run(ops.place_page(team, "quarantine", cursor, limit)))

    @get("/groups", responses=errors(), summary="Priority groups and the order inside them")
    async def groups_show(self, d: DispatcherDep, team: TeamPath) -> GroupsOut:
        s = await d.run(ops.groups(team))
        return msgspec.convert({"order": s.order, "groups": s.groups}, GroupsOut)

    @put("/groups", responses=errors(),
         summary="Change priority groups (the stock is re-bucketed by a job)")
    async def groups_set(
        self, d: DispatcherDep, team: TeamPath,
        data: Annotated[GroupsIn, Body(examples=[Example("groups", value=GROUPS_EXAMPLE)])],
    ) -> GroupsChangedOut:
        res = await d.run(ops.set_groups(team, msgspec.to_builtins(data)))
        return GroupsChangedOut(res["version"], bool(res["rebucket"]), res["job"])

    @get("/rebucketing", responses=errors(),
         summary="Progress of the re-bucketing after the last change of groups")
    async def rebucketing(self, d: DispatcherDep, team: TeamPath) -> RebucketingOut:
        return RebucketingOut(**await d.run(ops.rebucket_progress(team)))

    @get("/hours", responses=errors(), summary="Working hours (null when none are set)")
    async def hours_show(self, d: DispatcherDep, team: TeamPath) -> HoursIn | None:
        found = await d.run(ops.hours(team))
        return HoursIn(**found.to_dict()) if found else None

    @put("/hours", responses=errors(),
         summary="Set working hours (breaks end at the end of a range)")
    async def hours_set(self, d: DispatcherDep, team: TeamPath, data: JSONBody[HoursIn]) -> HoursIn:
        found = await d.run(ops.set_hours(team, msgspec.to_builtins(data)))
        return HoursIn(**found.to_dict())

    @get("/breaks", responses=errors(), summary="Break time per day, per advisor and for the team")
    async def breaks(self, d: DispatcherDep, team: TeamPath, start: FromQuery[date],
                     days: Annotated[int, Parameter(ge=1, le=366)] = 7) -> BreaksOut:
        return msgspec.convert(await d.run(ops.breaks(team, start, days)), BreaksOut)

    @get("/reports/daily", responses=errors(), summary="A day's report (JSON, or CSV)",
         description="Per advisor, per group and per hour. `format=csv` (or `Accept: "
                     "text/csv`) answers both tables as one CSV with a `table` column. "
                     "`tz` reads the day in that time zone (default UTC; `team`: the time "
                     "zone of the team's working hours).")
    async def report_daily(self, request: Request[Any, Any, Any], d: DispatcherDep,
                           team: TeamPath, day: FromQuery[date],
                           tz: Annotated[str | None, Parameter(max_length=64)] = None,
                           format: Annotated[str | None, Parameter(
                               pattern="^(json|csv)$")] = None) -> Response[Any]:
        out = await d.run(ops.daily_report(team, day, tz))
        wants_csv = format == "csv" or (
            format is None and "text/csv" in request.headers.get("accept", ""))
        if wants_csv:
            return Response(reports.to_csv(out), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition":
                                     f'attachment; filename="{team}-{day.isoformat()}.csv"'})
        return Response(msgspec.convert(out, ReportOut))


class WebhookController(Audience):
    path = TEAM + "/webhooks"
    tags = ["webhooks"]
    opt = SUPERVISOR

    @get("/", responses=errors(), summary="The team's webhooks (secrets are never shown again)")
    async def hooks_list(self, d: DispatcherDep, team: TeamPath) -> list[HookOut]:
        return [HookOut(**h.to_dict()) for h in await d.run(webhooks.list_hooks(team))]

    @post("/", status_code=201, responses=errors(),
          summary="Register a webhook; the answer holds its signing secret")
    async def hooks_create(self, d: DispatcherDep, team: TeamPath,
                           data: JSONBody[HookIn]) -> HookOut:
        webhooks.check_events(data.events)
        await asyncio.to_thread(webhooks.check_destination, data.url)  # resolves: off the loop
        hook = await d.run(webhooks.create_hook(team, data.url, data.events))
        return HookOut(**hook.to_dict())

    @delete("/{hook:str}", status_code=200, responses=errors(), summary="Remove a webhook")
    async def hooks_delete(self, d: DispatcherDep, team: TeamPath, hook: TeamId) -> Health:
        await d.run(webhooks.delete_hook(team, hook))
        return Health("deleted")
