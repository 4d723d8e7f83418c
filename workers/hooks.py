"""Webhook deliveries: the pump hands each hook its next events; a job POSTs them, signed.

Each hook reads the team's event stream through a consumer group of its own (``h:<hook id>``,
created by ``hook_set``). The pump gives an idle hook at most ``HOOK_JOB_EVENTS`` events in
one RQ job on the hooks queue (``defaults.RQ_HOOK_QUEUE``, served after the dispatcher's own
jobs), and no more until that job is done: one job per hook in flight, so a hook that is
slow, failing or hostile holds one job at a time whatever its team's traffic. The job POSTs
each event on its own (body and headers as before), every delivery under one deadline for the
whole call, the answer's body never read; when the job's time budget is spent it hands the
rest to a new job at the back of the queue, so hooks take turns. A failed delivery is retried
with backoff (the job resumes at the event that failed); after the last retry the hook's
events of that job are given up (logged).

Events a pump read but never handed over are claimed again after a minute. Delivery is
therefore at least once: the ``Pushinbox-Delivery`` header (the event id) lets a receiver drop
repeats. Destinations are checked before each delivery (``webhooks.check_destination``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any

import httpx
import redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from dispatcher import defaults, keys, webhooks
from dispatcher.api import Dispatcher
from dispatcher.errors import PushinboxError, ValidationError
from dispatcher.log import get_logger
from dispatcher.model import unpack
from workers import jobs

__all__ = ["RECLAIM_IDLE_MS", "DeliveryFailed", "HookPump", "deliver", "group", "pump"]

log = get_logger("pushinbox.hooks")
#: Entries a pump read but never acknowledged are claimed again after this long (ms).
RECLAIM_IDLE_MS = 60_000
_DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx in time; RQ retries the job with backoff."""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def group(hook_id: str) -> str:
    return f"h:{hook_id}"


def _in_flight(q: Queue, job_id: str | None) -> bool:
    if not job_id:
        return False
    try:
        status = Job.fetch(job_id, connection=q.connection).get_status()
    except NoSuchJobError:
        return False
    return status not in _DONE


def _read(d: Dispatcher, stream: str, hook_id: str, consumer: str, count: int) -> list[Any]:
    entries: list[Any] = []
    try:
        claimed: Any = d.redis.xautoclaim(stream, group(hook_id), consumer, RECLAIM_IDLE_MS,
                                          start_id="0-0", count=count)
        entries += claimed[1]
        if len(entries) < count:
            fresh: Any = d.redis.xreadgroup(group(hook_id), consumer, {stream: ">"},
                                            count=count - len(entries))
            if fresh:
                entries += fresh[0][1]
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # A hook registered before hooks had groups of their own: it starts from now.
        d.redis.xgroup_create(stream, group(hook_id), id="$", mkstream=True)
    return entries


def pump(d: Dispatcher, q: Queue, team: str, consumer: str,
         count: int = defaults.HOOK_JOB_EVENTS,
         backoff: tuple[int, ...] = defaults.HOOK_BACKOFF_S) -> int:
    """Hand each idle hook of the team its next events; returns how many jobs were enqueued."""
    hooks = {_text(k): unpack(v) for k, v in d.redis.hgetall(keys.hooks(team)).items()}
    if not hooks:
        return 0
    stream = keys.events(team)
    running = {_text(k): _text(v) for k, v in d.redis.hgetall(keys.hook_jobs(team)).items()}
    enqueued = 0
    for hook_id, hook in sorted(hooks.items()):
        if _in_flight(q, running.get(hook_id)):
            continue
        entries = _read(d, stream, hook_id, consumer, count)
        batch = []
        for eid, fields in entries:
            if fields:  # None: trimmed from the capped stream before it was delivered
                event = {_text(k): _text(v) for k, v in fields.items()}
                if event["e"] in hook["events"]:
                    body = webhooks.body_bytes(webhooks.payload(team, _text(eid), event))
                    batch.append([_text(eid), body.decode()])
        if batch:
            job = _enqueue(q, team, hook_id, batch, backoff)
            d.redis.hset(keys.hook_jobs(team), hook_id, job.id)
            enqueued += 1
        if entries:
            d.redis.xack(stream, group(hook_id), *[eid for eid, _ in entries])
    return enqueued


def _enqueue(q: Queue, team: str, hook_id: str, batch: list[list[str]],
             backoff: tuple[int, ...]) -> Job:
    digest = hashlib.sha1(f"{team}\0{hook_id}\0{batch[0][0]}\0{len(batch)}".encode())
    return q.enqueue(deliver, team, hook_id, batch, list(backoff),
                     job_id=f"pushinbox-hook-{digest.hexdigest()[:24]}",
                     retry=Retry(max=len(backoff), interval=list(backoff)) if backoff else None,
                     result_ttl=3600, failure_ttl=7 * 86400,
                     job_timeout=int(defaults.HOOK_JOB_BUDGET_S + defaults.HOOK_TIMEOUT_S + 30))


async def _post_all(hook: dict[str, Any], hook_id: str, batch: list[list[str]],
                    budget_s: float) -> tuple[int, str | None]:
    """POST each event in turn; returns how many were delivered and why it stopped early."""
    deadline = time.monotonic() + budget_s
    sent = 0
    try:  # the address is checked again at delivery: DNS can change
        await asyncio.to_thread(webhooks.check_destination, hook["url"])
    except ValidationError as exc:
        return sent, exc.message
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        for event_id, body in batch:
            left = deadline - time.monotonic()
            if left <= 0:
                return sent, None  # budget spent: the rest goes to the back of the queue
            data = body.encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "pushinbox-webhooks",
                webhooks.SIGNATURE_HEADER: webhooks.sign(hook["secret"], data),
                "Pushinbox-Event": str(json.loads(body)["type"]),
                "Pushinbox-Delivery": event_id,
                "Pushinbox-Hook": hook_id,
            }
            try:
                async with asyncio.timeout(min(defaults.HOOK_TIMEOUT_S, max(left, 1.0))), \
                        client.stream("POST", hook["url"], content=data, headers=headers,
                                      timeout=defaults.HOOK_TIMEOUT_S) as answer:
                    status = answer.status_code  # the body is never read
            except (TimeoutError, httpx.HTTPError, OSError) as exc:
                return sent, f"{type(exc).__name__}: {exc}"
            if not 200 <= status < 300:
                return sent, f"answered {status}"
            sent += 1
    return sent, None


def deliver(team: str, hook_id: str, batch: list[list[str]],
            backoff: list[int] | None = None) -> int:
    """POST a hook's events (``[event id, body]`` pairs), signed; raises so RQ retries from
    the event that failed. Returns how many were delivered by this run."""
    d = jobs.dispatcher()
    raw = d.redis.hget(keys.hooks(team), hook_id)
    if raw is None:
        log.info("hook_gone", team=team, hook=hook_id, events=len(batch))
        return 0
    job = get_current_job()
    done = int(job.meta.get("done", 0)) if job else 0
    sent, failure = asyncio.run(_post_all(unpack(raw), hook_id, batch[done:],
                                          defaults.HOOK_JOB_BUDGET_S))
    done += sent
    if failure is not None:
        if job:
            job.meta["done"] = done
            job.save_meta()  # type: ignore[no-untyped-call]
        last = job is None or not job.retries_left
        log.warning("hook_gave_up" if last else "hook_failed", team=team, hook=hook_id,
                    event_id=batch[done][0], error=failure,
                    undelivered=len(batch) - done if last else None)
        raise DeliveryFailed(f"hook {hook_id}: {failure}")
    if done < len(batch):  # time budget spent: another hook's turn, then the rest of ours
        queue = Queue(job.origin, connection=job.connection) if job else None
        if queue is not None:
            rest = _enqueue(queue, team, hook_id, batch[done:],
                            tuple(backoff if backoff is not None else defaults.HOOK_BACKOFF_S))
            d.redis.hset(keys.hook_jobs(team), hook_id, rest.id)
    log.info("hook_delivered", team=team, hook=hook_id, delivered=sent)
    return sent


class HookPump(threading.Thread):
    """Runs ``pump`` for every team with webhooks, every HOOK_PUMP_INTERVAL_S, until stopped.
    It survives anything a round raises (Redis away, a bad record): logged, retried later."""

    def __init__(self, d: Dispatcher, q: Queue,
                 interval: float = defaults.HOOK_PUMP_INTERVAL_S) -> None:
        super().__init__(name="pushinbox-hooks", daemon=True)
        self.d, self.queue, self.interval = d, q, interval
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.stopped = threading.Event()
        self.rounds = 0
        self.ok_rounds = 0  # rounds that reached every team: what a health check reads

    def run(self) -> None:
        delay = self.interval
        while not self.stopped.is_set():
            try:
                for team in self.d.teams():
                    pump(self.d, self.queue, team, self.consumer)
                delay = self.interval
                self.ok_rounds += 1
            except (redis.RedisError, PushinboxError) as exc:  # Redis away: back off, retry
                log.warning("hook_pump_error", error=str(exc))
                delay = min(30.0, delay * 2)
            except Exception:  # a bug must not end deliveries for good
                log.exception("hook_pump_failed")
                delay = min(30.0, delay * 2)
            self.rounds += 1
            self.stopped.wait(delay)
