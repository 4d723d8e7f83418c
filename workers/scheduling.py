"""How jobs reach RQ: ``RQJobs`` is the dispatcher's Jobs runner in production, and the
ticker enqueues the reconciler periodically from every worker (deduplicated by job id)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from datetime import UTC, datetime

import redis
from rq import Queue

from dispatcher import defaults
from dispatcher.connection import is_cluster
from dispatcher.errors import ValidationError
from workers import jobs


def rq_redis_url() -> str:
    """RQ's queues may live on a separate, non-cluster Redis (RQ_REDIS_URL); they must when
    the dispatcher's data is on a Redis Cluster (RQ does not run on one)."""
    url = os.environ.get("RQ_REDIS_URL") or jobs.redis_url()
    if is_cluster(url):
        raise ValidationError("RQ's queues need a single Redis: set RQ_REDIS_URL when "
                              "REDIS_URL is a redis+cluster:// URL", field="RQ_REDIS_URL")
    return url


def queue(connection: redis.Redis | None = None) -> Queue:
    # RQ blocks in BLPOP for minutes; redis-py 8 would time the socket out after 5 s.
    conn = connection or redis.Redis.from_url(rq_redis_url(), socket_timeout=600)
    return Queue(defaults.RQ_QUEUE, connection=conn)


def hook_queue(connection: redis.Redis | None = None) -> Queue:
    """Webhook deliveries: a queue of their own, served after the dispatcher's."""
    conn = connection or redis.Redis.from_url(rq_redis_url(), socket_timeout=600)
    return Queue(defaults.RQ_HOOK_QUEUE, connection=conn)


def _job_id(kind: str, *parts: object) -> str:
    digest = hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()[:20]
    return f"pushinbox-{kind}-{digest}"


class RQJobs:
    """Hands the dispatcher's long and delayed work to RQ."""

    def __init__(self, q: Queue) -> None:
        self.queue = q

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None:
        job = self.queue.enqueue(jobs.requeue_advisor, team, advisor, epoch,
                                 job_id=_job_id("requeue", team, advisor, epoch))
        return str(job.id)

    def rebucket(self, team: str) -> str | None:
        job = self.queue.enqueue(jobs.rebucket, team)
        return str(job.id)

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None:
        when = datetime.fromtimestamp(at_ms / 1000, UTC)
        job = self.queue.enqueue_at(when, jobs.end_break, team, advisor, epoch, at_ms,
                                    job_id=_job_id("endbreak", team, advisor, epoch))
        return str(job.id)


def enqueue_tick(q: Queue, now: float) -> str:
    """One reconciler run per interval, whatever the number of workers (same job id)."""
    slot = int(now // defaults.TICK_INTERVAL_S)
    job = q.enqueue(jobs.tick, job_id=_job_id("tick", slot), result_ttl=60)
    return str(job.id)


class Ticker(threading.Thread):
    """Enqueues the reconciler every TICK_INTERVAL_S until stopped."""

    def __init__(self, q: Queue, interval: float = defaults.TICK_INTERVAL_S) -> None:
        super().__init__(name="pushinbox-ticker", daemon=True)
        self.queue = q
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(redis.RedisError):  # Redis away: the next tick retries
                enqueue_tick(self.queue, datetime.now(UTC).timestamp())
            self.stopped.wait(self.interval)
