"""Webhook deliveries: the pump turns team events into RQ jobs; each job POSTs one signed event.

The pump reads each team's event stream through the consumer group ``hooks`` (created by the
``hook_set`` script), so several workers share the work and every event is handed to one of
them; an event is acknowledged only after its jobs are enqueued, and entries a dead pump left
unacknowledged are claimed again after a minute. Delivery is therefore at least once: the
``Pushinbox-Delivery`` header (the event id) lets a receiver drop repeats.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from typing import Any

import httpx
import redis
import structlog
from rq import Queue, Retry

from dispatcher import defaults, keys, webhooks
from dispatcher.api import Dispatcher
from dispatcher.model import unpack
from workers import jobs

log = structlog.get_logger("pushinbox.hooks")
GROUP = "hooks"
#: Entries a pump read but never acknowledged are claimed again after this long (ms).
RECLAIM_IDLE_MS = 60_000


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; RQ retries the job with backoff."""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def pump(d: Dispatcher, q: Queue, team: str, consumer: str, count: int = 200,
         backoff: tuple[int, ...] = defaults.HOOK_BACKOFF_S) -> int:
    """Enqueue deliveries for the team's new events; returns how many jobs were enqueued."""
    hooks = [unpack(v) for v in d.redis.hgetall(keys.hooks(team)).values()]
    if not hooks:
        return 0
    stream = keys.events(team)
    entries: list[Any] = []
    with contextlib.suppress(redis.ResponseError):  # no group yet: nothing to claim
        claimed: Any = d.redis.xautoclaim(stream, GROUP, consumer, RECLAIM_IDLE_MS,
                                          start_id="0-0", count=count)
        entries += claimed[1]
    fresh: Any = d.redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
    if fresh:
        entries += fresh[0][1]
    enqueued = 0
    for eid, fields in entries:
        if fields:  # None: trimmed from the capped stream before it was delivered
            event = {_text(k): _text(v) for k, v in fields.items()}
            for h in hooks:
                if event["e"] in h["events"]:
                    body = webhooks.body_bytes(webhooks.payload(team, _text(eid), event))
                    digest = hashlib.sha1(f"{team}\0{h['id']}\0{_text(eid)}".encode())
                    q.enqueue(deliver, team, h["id"], _text(eid), body.decode(),
                              job_id=f"pushinbox-hook-{digest.hexdigest()[:24]}",
                              retry=Retry(max=len(backoff), interval=list(backoff)),
                              result_ttl=3600, failure_ttl=7 * 86400)
                    enqueued += 1
        d.redis.xack(stream, GROUP, eid)
    return enqueued


def deliver(team: str, hook_id: str, event_id: str, body: str) -> int:
    """POST one event to one hook, signed; raises (so RQ retries) unless the answer is 2xx."""
    raw = jobs.dispatcher().redis.hget(keys.hooks(team), hook_id)
    if raw is None:
        log.info("hook_gone", team=team, hook=hook_id, event_id=event_id)
        return 0
    hook = unpack(raw)
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
        answer = httpx.post(hook["url"], content=data, headers=headers,
                            timeout=defaults.HOOK_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        log.warning("hook_failed", team=team, hook=hook_id, event_id=event_id, error=str(exc))
        raise DeliveryFailed(f"{hook['url']}: {exc}") from exc
    if not 200 <= answer.status_code < 300:
        log.warning("hook_refused", team=team, hook=hook_id, event_id=event_id,
                    status=answer.status_code)
        raise DeliveryFailed(f"{hook['url']} answered {answer.status_code}")
    log.info("hook_delivered", team=team, hook=hook_id, event_id=event_id)
    return answer.status_code


class HookPump(threading.Thread):
    """Runs ``pump`` for every team with webhooks, every HOOK_PUMP_INTERVAL_S, until stopped."""

    def __init__(self, d: Dispatcher, q: Queue,
                 interval: float = defaults.HOOK_PUMP_INTERVAL_S) -> None:
        super().__init__(name="pushinbox-hooks", daemon=True)
        self.d, self.queue, self.interval = d, q, interval
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                for team in self.d.teams():
                    pump(self.d, self.queue, team, self.consumer)
            except redis.RedisError as exc:  # Redis away: try again next round
                log.warning("hook_pump_error", error=str(exc))
            self.stopped.wait(self.interval)
