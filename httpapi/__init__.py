"""The HTTP service (ASGI): ``create_app(ServiceConfig(...))``; ``pushinbox serve`` runs it.

Layout: ``app`` assembles it; ``routes/`` holds a controller per audience (upstream,
advisor and live, supervisor and webhooks, admin, operations); ``auth``, ``problems`` and
``access_log`` are the guard, the error mapping and the request log; ``live`` and
``streams`` the live updates; ``schemas`` the request and response shapes."""

from httpapi.app import create_app
from httpapi.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
