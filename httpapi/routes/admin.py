"""Admins: teams, roles and advisors; and "who am I" for any token (the web pages start
there)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.params import JSONBody

from dispatcher import ops, tokens
from httpapi.auth import ADMIN, ANY_TOKEN
from httpapi.common import DispatcherDep, TeamId, TeamPath
from httpapi.problems import errors
from httpapi.routes import Audience
from httpapi.routes.supervisor import team_out
from httpapi.schemas import AdvisorIn, Health, RoleIn, TeamIn, TeamOut, WhoAmI

__all__ = ["AdminController"]


class AdminController(Audience):
    path = "/v1"
    tags = ["admin"]
    opt = ADMIN

    @post("/teams", status_code=201, responses=errors(),
          summary="Create a team (or rename an existing one)")
    async def team_create(self, d: DispatcherDep, data: JSONBody[TeamIn]) -> TeamOut:
        await d.run(ops.create_team(data.team, data.name))
        return await team_out(d, data.team)

    @put("/teams/{team:str}/roles/{role:str}", responses=errors(),
         summary="Create or change a role (push mode, capacity)")
    async def role_set(self, d: DispatcherDep, team: TeamPath, role: TeamId,
                       data: JSONBody[RoleIn]) -> Health:
        await d.run(ops.set_role(team, role, push=data.push, capacity=data.capacity))
        return Health("ok")

    @put("/teams/{team:str}/advisors/{advisor:str}", responses=errors(),
         summary="Create or change an advisor")
    async def advisor_set(self, d: DispatcherDep, team: TeamPath, advisor: TeamId,
                          data: JSONBody[AdvisorIn]) -> Health:
        await d.run(ops.set_advisor(team, advisor, data.role, data.name, data.skills))
        return Health("ok")

    @get("/whoami", opt=ANY_TOKEN, responses=errors(),
         summary="The calling token's scope, team and advisor")
    async def whoami(self, request: Request[Any, Any, Any]) -> WhoAmI:
        tok: tokens.Token = request.scope["state"]["token"]
        return WhoAmI(tok.id, tok.scope, tok.team, tok.advisor, tok.teams)
