"""The service's routes by audience, each a Litestar controller carrying its path, scopes,
tags and the dispatcher dependency: upstream services, advisors (and live updates),
supervisors (and webhooks), admins, and operations."""

from __future__ import annotations

from litestar import Controller

from httpapi.auth import auth_guard
from httpapi.common import DISPATCHER

__all__ = ["Audience"]


class Audience(Controller):
    """A controller of authenticated routes: the guard checks the bearer token against the
    scopes in ``opt`` (set by each audience, narrowed by a route where it differs) and the
    team and advisor in the path; ``d`` is the process's AsyncDispatcher."""

    guards = [auth_guard]
    dependencies = DISPATCHER
