"""``pushinbox serve``: the HTTP service under uvicorn, configured from the environment so
that several worker processes (``--workers``) each build the same app."""

from __future__ import annotations

import os
import tempfile

import uvicorn
from litestar import Litestar

from dispatcher import defaults
from httpapi import ServiceConfig, create_app


def config_from_env() -> ServiceConfig:
    """REDIS_URL, RQ_REDIS_URL, PUSHINBOX_JOBS (rq | inline), PUSHINBOX_MAX_BATCH,
    PUSHINBOX_ACCESS_LOG (1 | 0), PUSHINBOX_TOKEN_CACHE_S, PUSHINBOX_HOT_ROUTES (1 | 0),
    PUSHINBOX_STREAM_PRESENCE_S, PUSHINBOX_MAX_STREAMS_PER_TOKEN, PUSHINBOX_MAX_STREAMS_PER_TEAM."""
    jobs = None
    if os.environ.get("PUSHINBOX_JOBS", "rq") == "rq":
        from workers.scheduling import RQJobs, queue

        jobs = RQJobs(queue())
    return ServiceConfig(
        redis_url=os.environ.get("REDIS_URL", f"redis://127.0.0.1:{defaults.LOCAL_REDIS_PORT}/0"),
        jobs=jobs,
        max_batch=int(os.environ.get("PUSHINBOX_MAX_BATCH", defaults.INGEST_BATCH_MAX)),
        access_log=os.environ.get("PUSHINBOX_ACCESS_LOG", "1") == "1",
        hot_routes=os.environ.get("PUSHINBOX_HOT_ROUTES", "1") == "1",
        token_cache_s=float(os.environ.get("PUSHINBOX_TOKEN_CACHE_S", defaults.TOKEN_CACHE_S)),
        stream_presence_s=float(os.environ.get("PUSHINBOX_STREAM_PRESENCE_S",
                                               defaults.STREAM_PRESENCE_S)),
        max_streams_per_token=int(os.environ.get("PUSHINBOX_MAX_STREAMS_PER_TOKEN",
                                                 defaults.MAX_STREAMS_PER_TOKEN)),
        max_streams_per_team=int(os.environ.get("PUSHINBOX_MAX_STREAMS_PER_TEAM",
                                                defaults.MAX_STREAMS_PER_TEAM)),
    )


def app_from_env() -> Litestar:
    """uvicorn's factory: ``uvicorn --factory cli.serve:app_from_env``."""
    from dispatcher.log import configure

    configure()
    return create_app(config_from_env())


def serve(url: str, host: str, port: int, workers: int, inline: bool, access_log: bool) -> None:
    os.environ["REDIS_URL"] = url
    os.environ["PUSHINBOX_JOBS"] = "inline" if inline else "rq"
    os.environ["PUSHINBOX_ACCESS_LOG"] = "1" if access_log else "0"
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each process counts for itself; /metrics adds them up from this folder.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pushinbox-metrics-")
    uvicorn.run("cli.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning", timeout_graceful_shutdown=3,
                proxy_headers=True, timeout_keep_alive=5,
                http="httpapi.protocol:GuardedHttpToolsProtocol")
