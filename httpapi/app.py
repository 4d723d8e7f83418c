"""The HTTP service (Litestar, ASGI): the routes of each audience (httpapi/routes/), one
guard for bearer tokens (auth.py), errors as problem+json (problems.py), one access-log line
per request (access_log.py), live updates from one feed per team (live.py, streams.py)."""

from __future__ import annotations

import contextlib

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Receive, Scope, Send

from dispatcher import defaults
from dispatcher.api import AsyncDispatcher
from dispatcher.connection import connect_async
from dispatcher.errors import PushinboxError
from httpapi import live, metrics
from httpapi.access_log import AccessLog
from httpapi.auth import TokenCache
from httpapi.config import ServiceConfig
from httpapi.hot import HotRoutes
from httpapi.problems import on_error
from httpapi.routes.admin import AdminController
from httpapi.routes.advisor import AdvisorController, LiveController
from httpapi.routes.operations import DOCS_ASSETS, OperationsController, pages
from httpapi.routes.supervisor import SupervisorController, WebhookController
from httpapi.routes.upstream import UpstreamController
from httpapi.streams import StreamSlots

__all__ = ["Service", "create_app"]

CONTROLLERS = [UpstreamController, AdvisorController, LiveController, SupervisorController,
               WebhookController, AdminController, OperationsController]


class Service(Litestar):
    """The Litestar app, with the advisor's cycle and a message in on a short path in front
    (httpapi/hot.py)."""

    hot: HotRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive,  # type: ignore[override]
                       send: Send) -> None:
        if self.hot is not None and (answer := self.hot.take(scope)) is not None:
            done, receive = await answer(self.state, receive, send)
            if done:
                return
        await super().__call__(scope, receive, send)


def create_app(config: ServiceConfig | None = None) -> Service:
    """The ASGI app (``pushinbox serve`` runs it under uvicorn)."""
    cfg = config or ServiceConfig()
    state = State({"config": cfg, "tokens": TokenCache(cfg.token_cache_s),
                   "slots": StreamSlots(cfg.max_streams_per_token, cfg.max_streams_per_team)})

    async def start(app: Litestar) -> None:
        client = connect_async(cfg.redis_url)
        # One connection per team feed blocks in XREAD: a pool of its own, sized for teams.
        blocking = connect_async(cfg.redis_url, socket_timeout=None, max_connections=10_000)
        d = AsyncDispatcher(client, jobs=cfg.jobs, clock=cfg.clock,
                            on_script=lambda s, t: metrics.script(s).observe(t))
        app.state.d = d
        app.state.blocking = blocking
        app.state.hub = live.Hub(d, blocking)
        with contextlib.suppress(PushinboxError):  # Redis away at start: /readyz says so
            await d.ready()

    async def stop(app: Litestar) -> None:
        await app.state.hub.close()
        await app.state.d.redis.aclose()
        await app.state.blocking.aclose()

    app = Service(
        route_handlers=[*CONTROLLERS, *pages()],
        state=state,
        on_startup=[start],
        on_shutdown=[stop],
        middleware=[AccessLog(cfg.access_log)],
        exception_handlers={Exception: on_error},
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
    app.hot = HotRoutes(cfg.access_log) if cfg.hot_routes else None
    return app
