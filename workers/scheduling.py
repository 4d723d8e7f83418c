"""How jobs reach RQ: ``RQJobs`` is the dispatcher's Jobs runner in production, and the
ticker enqueues the reconciler periodically from every worker (deduplicated by job id)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Worker

from dispatcher import defaults
from dispatcher.connection import is_cluster
from dispatcher.errors import ValidationError
from dispatcher.log import get_logger
from workers import jobs

__all__ = ["Escalator", "PushinboxWorker", "RQJobs", "Ticker", "enqueue_tick", "hook_queue",
           "queue", "rq_redis_url"]

log = get_logger("pushinbox.jobs")


def rq_redis_url(data_url: str | None = None) -> str:
    """RQ's queues may live on a separate, non-cluster Redis (RQ_REDIS_URL); they must when
    the dispatcher's data is on a Redis Cluster (RQ does not run on one). Otherwise they live
    with the data: ``data_url`` (the CLI's --redis-url), else REDIS_URL."""
    url = os.environ.get("RQ_REDIS_URL") or data_url or jobs.redis_url()
    if is_cluster(url):
        raise ValidationError("RQ's queues need a single Redis: set RQ_REDIS_URL when "
                              "REDIS_URL is a redis+cluster:// URL", field="RQ_REDIS_URL")
    return url


class PushinboxWorker(Worker):
    """RQ's worker, keeping its scheduler alive. The scheduler (a child process that moves
    due jobs, webhook retries and break ends, to the queue) dies when Redis is away for a
    second; RQ starts another only at its maintenance, every ten minutes. This worker looks
    before each wait for a job (at least every TICK_INTERVAL_S: the ticker's jobs) and starts
    it again at once: it takes back its own locks, which carry its name."""

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> Any:
        self.revive_scheduler()
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def revive_scheduler(self) -> bool:
        """Start the scheduler again if its process ended; True if it did."""
        process = getattr(self.scheduler, "_process", None)
        if self.scheduler is None or process is None or process.is_alive():
            return False
        process.join()  # reap it: no zombie left behind
        # Redis still away: the next loop retries. Another worker's scheduler may hold the
        # locks by now: then it schedules, and this one stays down.
        with contextlib.suppress(redis.RedisError):
            self.scheduler.acquire_locks(auto_start=True)  # type: ignore[no-untyped-call]
        restarted = getattr(self.scheduler, "_process", None) is not process
        if restarted:
            log.warning("rq_scheduler_restarted", locks=sorted(self.scheduler.acquired_locks))
        return restarted


def queue(connection: redis.Redis | None = None, data_url: str | None = None) -> Queue:
    # RQ blocks in BLPOP for minutes; redis-py 8 would time the socket out after 5 s.
    conn = connection or redis.Redis.from_url(rq_redis_url(data_url), socket_timeout=600)
    return Queue(defaults.RQ_QUEUE, connection=conn)


def hook_queue(connection: redis.Redis | None = None) -> Queue:
    """Webhook deliveries: a queue of their own, served after the dispatcher's."""
    conn = connection or redis.Redis.from_url(rq_redis_url(), socket_timeout=600)
    return Queue(defaults.RQ_HOOK_QUEUE, connection=conn)


def _job_id(kind: str, *parts: object) -> str:
    digest = hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()[:20]
    return f"pushinbox-{kind}-{digest}"


class RQJobs:
    """Hands the dispatcher's long and delayed work to RQ. The state change it follows has
    happened already: when RQ's Redis cannot take the job, the work is left to the
    reconciler (every TICK_INTERVAL_S), the failure is logged and kept in ``unqueued`` so a
    caller can say so, and None is answered instead of a job id."""

    def __init__(self, q: Queue) -> None:
        self.queue = q
        self.unqueued: list[str] = []

    def _enqueue(self, what: str, call: Callable[[], Any]) -> str | None:
        try:
            return str(call().id)
        except redis.RedisError as exc:
            log.warning("job_not_queued", job=what, error=str(exc))
            self.unqueued.append(f"{what}: {exc}")
            return None

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None:
        return self._enqueue("logout requeue", lambda: self.queue.enqueue(
            jobs.requeue_advisor, team, advisor, epoch,
            job_id=_job_id("requeue", team, advisor, epoch)))

    def rebucket(self, team: str) -> str | None:
        return self._enqueue("re-bucketing", lambda: self.queue.enqueue(jobs.rebucket, team))

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None:
        when = datetime.fromtimestamp(at_ms / 1000, UTC)
        return self._enqueue("break end", lambda: self.queue.enqueue_at(
            when, jobs.end_break, team, advisor, epoch, at_ms,
            job_id=_job_id("endbreak", team, advisor, epoch)))


def enqueue_tick(q: Queue, now: float) -> str:
    """One reconciler run per interval, whatever the number of workers (same job id)."""
    slot = int(now // defaults.TICK_INTERVAL_S)
    job = q.enqueue(jobs.tick, job_id=_job_id("tick", slot), result_ttl=60)
    return str(job.id)


class Ticker(threading.Thread):
    """Enqueues the reconciler every TICK_INTERVAL_S until stopped."""

    def __init__(self, q: Queue, interval: float = defaults.TICK_INTERVAL_S,
                 on_tick: Callable[[], None] | None = None) -> None:
        super().__init__(name="pushinbox-ticker", daemon=True)
        self.queue = q
        self.interval = interval
        self.on_tick = on_tick  # the worker's watchdog (restarts a dead webhook pump)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(redis.RedisError):  # Redis away: the next tick retries
                enqueue_tick(self.queue, datetime.now(UTC).timestamp())
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:  # the watchdog must not end the ticker
                    log.exception("watchdog_failed")
            self.stopped.wait(self.interval)


class Escalator(threading.Thread):
    """Every ESCALATE_INTERVAL_S, re-places the waiting conversations whose wait crossed a
    ``waiting_longer_than`` threshold, for the teams that have such a group (two round trips
    to find them, then atomic batches per team). Presses and previews never wait for it (they
    re-place what is due themselves); it keeps the counts and the live view current and moves
    a mass crossing in the background. Several workers may run one: a batch finds what the
    others left."""

    def __init__(self, d: Any, interval: float = defaults.ESCALATE_INTERVAL_S) -> None:
        super().__init__(name="pushinbox-escalator", daemon=True)
        self.d = d
        self.interval = interval
        self.stopped = threading.Event()
        self.moved = 0

    def sweep(self) -> int:
        from dispatcher import ops

        moved = 0
        for team in self.d.run(ops.escalating_teams()):
            moved += self.d.run(ops.escalate(team, self.d.batch_size))
        self.moved += moved
        return moved

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.sweep()
            except Exception:  # Redis away, a team deleted meanwhile: the next sweep retries
                log.warning("escalation_sweep_failed", exc_info=True)
            self.stopped.wait(self.interval)
