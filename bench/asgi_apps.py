"""The same endpoint (one Lua call, a small JSON answer) in three ASGI frameworks, for
bench/frameworks.py: what the framework itself costs per request."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import msgspec
import redis.asyncio as aredis
from litestar import Litestar, post
from redis.exceptions import NoScriptError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dispatcher.connection import lane_for

SRC = "return redis.call('INCR', KEYS[1])"
_SHA = hashlib.sha1(SRC.encode()).hexdigest()
_redis = aredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_lane = lane_for(_redis)


async def _script(keys: list[str], args: list[str]) -> Any:
    """The one Lua call, made as the service makes its own (on a ScriptLane), so the bare
    app stays the like-for-like reference of the service's handlers."""
    assert _lane is not None
    command = ("EVALSHA", _SHA, len(keys), *keys, *args)
    try:
        return await _lane.call(command)
    except NoScriptError:
        await _redis.script_load(SRC)
        return await _lane.call(command)


async def _star(request: Request) -> JSONResponse:
    n = await _script(keys=["{t}:n"], args=[request.path_params["team"]])
    return JSONResponse({"n": n, "team": request.path_params["team"]})


starlette_app = Starlette(routes=[Route("/t/{team}/next", _star, methods=["POST"])])


class Out(msgspec.Struct):
    n: int
    team: str


@post("/t/{team:str}/next", status_code=200)
async def _lite(team: str) -> Out:
    return Out(n=await _script(keys=["{t}:n"], args=[team]), team=team)


litestar_app = Litestar([_lite])


def _fastapi() -> Any:
    from fastapi import FastAPI, Path
    from pydantic import BaseModel

    class FOut(BaseModel):
        n: int
        team: str

    app = FastAPI()

    @app.post("/t/{team}/next", response_model=FOut)
    async def fa(team: str = Path(pattern=r"^[a-z]+$")) -> FOut:
        return FOut(n=await _script(keys=["{t}:n"], args=[team]), team=team)

    return app


try:
    fastapi_app = _fastapi()
except ImportError:  # the bench extra is not installed
    fastapi_app = None
