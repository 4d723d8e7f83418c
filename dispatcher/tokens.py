"""API tokens: who may call the HTTP service, and for what.

A token reads ``pi_<id>_<secret>``. Redis keeps, under the public ``id``, the SHA-256 of the
whole token and its scope, never the token itself; checking a token is one HGET and a
constant-time comparison of digests. Scopes:

- ``advisor``: acts only as that advisor, in their team;
- ``supervisor``: one team;
- ``ingest``: upstream services, optionally limited to some teams;
- ``admin``: ops, everything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from dispatcher import keys
from dispatcher.errors import NotFoundError, ValidationError
from dispatcher.model import pack, unpack
from dispatcher.ops import require_team
from dispatcher.ops.effects import Cmd, Commands, Now, Op, read

__all__ = [
    "SCOPES",
    "NewToken",
    "Token",
    "authenticate",
    "create_token",
    "forget_team",
    "list_tokens",
    "revoke_token",
    "well_formed",
]

SCOPES = ("advisor", "supervisor", "ingest", "admin")


@dataclass(frozen=True)
class Token:
    id: str
    scope: str
    team: str | None = None
    advisor: str | None = None
    teams: list[str] | None = None
    name: str = ""
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def may_team(self, team: str) -> bool:
        """May this token act in ``team`` at all?"""
        if self.scope == "admin":
            return True
        if self.scope == "ingest":
            return self.teams is None or team in self.teams
        return self.team == team


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: the only moment the secret is known."""

    token: str
    info: Token = field(repr=False)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    scope: str,
    *,
    team: str | None = None,
    advisor: str | None = None,
    teams: list[str] | None = None,
    all_teams: bool = False,
    name: str = "",
) -> Op[NewToken]:
    """Create a token; team and advisor must exist for the scopes that name them.

    An ingest token names its teams; it acts for every team only when ``all_teams`` says so
    (an empty list is refused, never read as "no limit")."""
    if scope not in SCOPES:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if scope in ("advisor", "supervisor"):
        if team is None:
            raise ValidationError(f"a {scope} token needs a team", field="team")
        yield from require_team(team)
    elif team is not None:
        raise ValidationError(f"a {scope} token takes no team (ingest: use teams)", "team")
    if scope == "advisor":
        if advisor is None:
            raise ValidationError("an advisor token needs an advisor", field="advisor")
        assert team is not None
        keys.check_id(advisor, "advisor")
        if not (yield from read("sismember", keys.advisors(team), advisor)):
            raise NotFoundError(f"unknown advisor {advisor} in team {team}", field="advisor")
    elif advisor is not None:
        raise ValidationError("only an advisor token names an advisor", field="advisor")
    if teams is not None or all_teams:
        if scope != "ingest":
            raise ValidationError("only an ingest token is limited to teams", field="teams")
        if teams is not None and all_teams:
            raise ValidationError("give teams or all_teams, not both", field="teams")
        if teams is not None and not teams:
            raise ValidationError("teams must name at least one team", field="teams")
        for t in teams or ():
            yield from require_team(t)
    elif scope == "ingest":
        raise ValidationError("an ingest token needs its teams (or all_teams for every team)",
                              field="teams")
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationError("name must be a string of at most 200 characters", field="name")
    token_id = secrets.token_hex(6)
    secret = f"pi_{token_id}_{secrets.token_urlsafe(32)}"
    now = yield Now()
    info = Token(token_id, scope, team, advisor, sorted(teams) if teams else None, name, now)
    record = {**info.to_dict(), "sha256": _digest(secret)}
    yield Commands([Cmd("hset", (keys.TOKENS, token_id, pack(record)))])
    return NewToken(secret, info)


def _token(record: dict[str, Any]) -> Token:
    return Token(record["id"], record["scope"], record.get("team"), record.get("advisor"),
                 record.get("teams"), record.get("name", ""), int(record.get("created_at", 0)))


def list_tokens() -> Op[list[Token]]:
    rows = yield from read("hgetall", keys.TOKENS)
    return sorted((_token(unpack(v)) for v in rows.values()), key=lambda t: t.created_at)


def revoke_token(token_id: str) -> Op[None]:
    (gone,) = yield Commands([Cmd("hdel", (keys.TOKENS, token_id))])
    if not gone:
        raise NotFoundError(f"unknown token {token_id}", field="token")


def forget_team(team: str) -> Op[int]:
    """A deleted team's tokens go with it: advisor and supervisor tokens of the team are
    revoked, ingest tokens lose the team (and are revoked when it was their only one), so a
    team created again with the same id is not reached by old tokens. Answers how many
    tokens changed."""
    rows = yield from read("hgetall", keys.TOKENS)
    cmds = []
    for token_id, raw in rows.items():
        record = unpack(raw)
        limited = record.get("teams") or []
        if record.get("team") == team or limited == [team]:
            cmds.append(Cmd("hdel", (keys.TOKENS, token_id)))
        elif team in limited:
            record["teams"] = [t for t in limited if t != team]
            cmds.append(Cmd("hset", (keys.TOKENS, token_id, pack(record))))
    if cmds:
        yield Commands(cmds)
    return len(cmds)


_SHAPE = re.compile(r"pi_[0-9a-f]{12}_[A-Za-z0-9_-]{20,64}")


def well_formed(token: str) -> bool:
    """Could this be a token we made (``pi_<12 hex>_<url-safe secret>``)? No I/O."""
    return _SHAPE.fullmatch(token) is not None


def authenticate(token: str) -> Op[Token | None]:
    """The token's scope, or None for an unknown, revoked or malformed token."""
    if not well_formed(token):
        return None
    parts = token.split("_", 2)
    raw = yield from read("hget", keys.TOKENS, parts[1])
    if raw is None:
        return None
    record = unpack(raw)
    if not hmac.compare_digest(record["sha256"], _digest(token)):
        return None
    return _token(record)
