"""The service's settings (``pushinbox serve`` builds them from its options and the
environment)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dispatcher import defaults
from dispatcher.api import Jobs

__all__ = ["ServiceConfig"]


@dataclass
class ServiceConfig:
    redis_url: str = "redis://127.0.0.1:6390/0"
    #: Jobs runner for long moves (RQ in production); None runs them inline.
    jobs: Jobs | None = None
    max_batch: int = defaults.INGEST_BATCH_MAX
    token_cache_s: float = defaults.TOKEN_CACHE_S
    clock: Callable[[], int] | None = None
    access_log: bool = True
    #: The advisor's next, reply and archive on the short path (httpapi/hot.py).
    hot_routes: bool = True
    #: How often an advisor's open live stream counts as presence (routes/advisor.py).
    stream_presence_s: float = defaults.STREAM_PRESENCE_S
    #: Open live streams a token, and a team, may hold in this process (429 beyond).
    max_streams_per_token: int = defaults.MAX_STREAMS_PER_TOKEN
    max_streams_per_team: int = defaults.MAX_STREAMS_PER_TEAM
