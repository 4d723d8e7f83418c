"""RQ job functions. Each is idempotent and fenced: it carries the session or break epoch it
was scheduled for, and the script does nothing once that epoch has moved on. RQ may run a job
twice or never; ``tick`` (the reconciler) is what guarantees nothing stays stranded.
"""

from __future__ import annotations

import os
from functools import cache

from dispatcher import defaults
from dispatcher.api import Dispatcher
from dispatcher.log import get_logger

__all__ = ["dispatcher", "end_break", "rebucket", "redis_url", "requeue_advisor", "tick",
           "use_redis"]

log = get_logger("pushinbox.worker")


_USE: list[str] = []  # set by the worker command for its process (and its work-horses)


def use_redis(url: str | None) -> None:
    """The worker's data Redis for this process, without touching os.environ (None: forget)."""
    _USE[:] = [url] if url else []


def redis_url() -> str:
    """Where the dispatcher's data lives (RQ's own queues may be elsewhere: RQ_REDIS_URL):
    the worker's --redis-url, else REDIS_URL."""
    return _USE[0] if _USE else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@cache
def _dispatcher(url: str) -> Dispatcher:
    # Jobs run their moves inline: they are the job. PUSHINBOX_BATCH_SIZE tunes how many
    # messages one atomic batch moves (smaller: Redis is busy for shorter stretches).
    size = int(os.environ.get("PUSHINBOX_BATCH_SIZE", defaults.BATCH_SIZE))
    return Dispatcher.from_url(url, batch_size=size)


def dispatcher() -> Dispatcher:
    return _dispatcher(redis_url())


def requeue_advisor(team: str, advisor: str, epoch: int) -> int:
    """Hand a logged-out advisor's messages back to the stock, batch by batch."""
    moved = dispatcher().requeue_advisor(team, advisor, epoch)
    log.info("requeued", team=team, advisor=advisor, epoch=epoch, moved=moved)
    return moved


def rebucket(team: str) -> int:
    """Re-bucket the waiting stock after a change of priority settings."""
    moved = dispatcher().rebucket(team)
    log.info("rebucketed", team=team, moved=moved)
    return moved


def end_break(team: str, advisor: str, epoch: int, at_ms: int) -> int:
    """End a break at the end of the working-hours range (no-op if that break already ended)."""
    ms = dispatcher().end_break(team, advisor, epoch=epoch, at_ms=at_ms,
                                why="end of working hours")
    log.info("break_end_job", team=team, advisor=advisor, epoch=epoch, ended=bool(ms))
    return ms


def tick(team: str | None = None) -> dict[str, dict[str, int]]:
    """The reconciler for one team or all: reaper, stranded messages, overdue breaks, ..."""
    d = dispatcher()
    teams = [team] if team else d.teams()
    out = {t: d.tick(t) for t in teams}
    for t, done in out.items():
        if any(done.values()):
            log.info("tick", team=t, **done)
    return out
