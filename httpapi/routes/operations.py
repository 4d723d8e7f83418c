"""Operations and the web pages: health, readiness, metrics, the OpenAPI document, the
console and supervisor pages, and Swagger UI's assets. No token needed."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from litestar import Controller, Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi import ResponseSpec
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from dispatcher import ops
from dispatcher.errors import PushinboxError
from httpapi import metrics
from httpapi.common import DISPATCHER, DispatcherDep
from httpapi.problems import PROBLEM
from httpapi.schemas import Health, Problem

__all__ = ["DOCS_ASSETS", "OperationsController", "pages"]

DOCS_ASSETS = "/docs-assets"
_UNAVAILABLE = {503: ResponseSpec(Problem, media_type=PROBLEM, generate_examples=False)}


class OperationsController(Controller):
    path = "/"
    tags = ["operations"]
    dependencies = DISPATCHER

    @get("/healthz", summary="The process is up", responses=_UNAVAILABLE)
    async def healthz(self) -> Health:
        return Health("ok")

    @get("/readyz", summary="Redis is reachable, scripts loaded", responses=_UNAVAILABLE)
    async def readyz(self, d: DispatcherDep) -> Health:
        await d.ready()
        return Health("ready")

    @get("/metrics", summary="Prometheus metrics", media_type="text/plain",
         include_in_schema=False)
    async def metrics_view(self, d: DispatcherDep) -> Response[bytes]:
        # Waiting counts are read now, for every team (four round trips in all), not left
        # from the last time someone happened to read a stock.
        with contextlib.suppress(PushinboxError):
            counts = await d.run(ops.waiting_counts())
            for team, channels in counts.items():
                metrics.set_waiting(team, channels)
            # groups nobody logged in may take, read where something waits (two round trips)
            busy = [t for t, channels in counts.items() if any(channels.values())]
            found = await d.run(ops.groups_stock_of(busy)) if busy else {}
            for team in counts:
                metrics.UNSERVED.labels(team).set(
                    sum(1 for g in found.get(team, []) if g["unserved"]))
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @get("/openapi.json", include_in_schema=False)
    async def openapi_json(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        schema = request.app.openapi_schema.to_schema()
        return Response(json.dumps(schema).encode(), media_type="application/json")

    @get("/", include_in_schema=False)
    async def home(self) -> Redirect:
        return Redirect("/ui/console.html")


def pages() -> list[ControllerRouterHandler]:
    """The console and supervisor pages (/ui) and Swagger UI's files (/docs works offline)."""
    return [
        create_static_files_router("/ui", [Path(__file__).parent.parent / "static"], name="ui",
                                   cache_control=CacheControlHeader(no_cache=True)),
        create_static_files_router(DOCS_ASSETS, [Path(swagger_ui_bundle.swagger_ui_path)],
                                   name="docs-assets", include_in_schema=False,
                                   cache_control=CacheControlHeader(max_age=86400)),
    ]
