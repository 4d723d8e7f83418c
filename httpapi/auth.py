"""Who may call what: bearer tokens checked by one guard against the scopes a route allows
(its ``opt["allow"]``, usually set on its controller) and the team and advisor in its path."""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from dispatcher import defaults, ops, tokens
from dispatcher.api import AsyncDispatcher
from dispatcher.errors import ForbiddenError, PushinboxError, UnauthorizedError

__all__ = ["ADMIN", "ADVISOR_SELF", "ANY_TOKEN", "INGEST", "PUBLIC", "SUPERVISOR", "TEAM_READ",
           "TokenCache", "auth_guard", "authenticate", "permitted", "token_key"]

#: Who may call a route: scopes, "advisor" meaning the advisor named in the path (or, on a
#: team route without an advisor, any advisor of the team).
ADVISOR_SELF = {"allow": ("advisor", "admin")}
TEAM_READ = {"allow": ("advisor", "supervisor", "admin")}
SUPERVISOR = {"allow": ("supervisor", "admin")}
INGEST = {"allow": ("ingest", "admin")}
ADMIN = {"allow": ("admin",)}
#: Any valid token, whatever its team (the web pages start with "who am I").
ANY_TOKEN = {"allow": ("advisor", "supervisor", "ingest", "admin"), "no_team": True}
PUBLIC: dict[str, Any] = {}


def token_key(token: str) -> bytes:
    """What a process keys a token by in its memory: a digest, never the token's text."""
    return hashlib.blake2b(token.encode(), digest_size=16).digest()


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
        key = token_key(token)
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = await d.run(tokens.authenticate(token))
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (now, found)
        return found


async def authenticate(st: Any, header: str, allow: tuple[str, ...], team: str | None,
                       advisor: str | None, any_team: bool = False) -> tokens.Token:
    """The token of an ``Authorization`` header, if it may call a route open to ``allow``
    (scopes) for this team and advisor (``any_team``: whatever its team); else Unauthorized or
    Forbidden. ``st``: the app's state (its token cache and dispatcher)."""
    if len(header) > defaults.MAX_AUTH_HEADER:
        raise UnauthorizedError("the Authorization header is too long to hold a token")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise UnauthorizedError("a bearer token is required (Authorization: Bearer <token>)")
    tok: tokens.Token | None = await st.tokens.lookup(st.d, value.strip())
    if tok is None:
        raise UnauthorizedError("the token is unknown or revoked")
    if any_team and tok.scope in allow:
        return tok
    if not permitted(tok, allow, team, advisor):
        article = "an" if tok.scope[0] in "aeiou" else "a"
        raise ForbiddenError(f"{article} {tok.scope} token may not do this here",
                             field="authorization")
    return tok


async def auth_guard(connection: ASGIConnection[Any, Any, Any, Any],
                     handler: BaseRouteHandler) -> None:
    """Authenticate the bearer token and check its scope against the route and path."""
    allow = handler.opt.get("allow")
    if allow is None:
        return
    st = connection.app.state
    advisor = connection.path_params.get("advisor")
    tok = await authenticate(st, connection.headers.get("authorization", ""), allow,
                             connection.path_params.get("team"), advisor,
                             bool(handler.opt.get("no_team")))
    connection.scope["state"]["token"] = tok
    if tok.scope == "advisor" and advisor and connection.scope.get("method") == "GET":
        with contextlib.suppress(PushinboxError):  # a read counts as presence, if logged in
            await st.d.run(ops.heartbeat(str(connection.path_params.get("team")), advisor))


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
