"""Prometheus metrics (prometheus-client). With several service processes, set
PROMETHEUS_MULTIPROC_DIR (``pushinbox serve --workers N`` does) and every process's /metrics
answers for all of them."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _mp

from dispatcher.model import Push, ReplyAndPush, Stock

__all__ = ["ASSIGNMENTS", "CONTENT_TYPE", "LATENCY", "MAX_CHANNEL_LABELS", "REQUESTS", "SCRIPT",
           "SSE_CLIENTS", "UNSERVED", "WAIT", "WAITING", "Children", "observe_push", "render",
           "set_stock", "set_waiting"]

#: The text exposition format, its charset named once: prometheus-client's constant names it
#: and Litestar appends "; charset=utf-8" to every text/* type, which made it appear twice
#: (strict parsers such as Go's mime.ParseMediaType, hence Prometheus, refuse that).
CONTENT_TYPE = "; ".join(p for p in CONTENT_TYPE_LATEST.split("; ") if not p.startswith("charset"))

ASSIGNMENTS = Counter(
    "pushinbox_assignments_total", "Messages pushed to advisors by process-a-new-message",
    ["team", "group"])
WAIT = Histogram(
    "pushinbox_wait_seconds", "Time from a message's arrival to its assignment",
    ["team"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 86400))
SCRIPT = Histogram(
    "pushinbox_script_seconds", "Latency of Lua script calls seen by the service",
    ["script"], buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1))
REQUESTS = Counter(
    "pushinbox_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "pushinbox_http_request_seconds", "HTTP request latency", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
WAITING = Gauge(
    "pushinbox_waiting_messages", "Messages waiting in a team's stock, per channel",
    ["team", "channel"], multiprocess_mode="mostrecent")
UNSERVED = Gauge(
    "pushinbox_unserved_groups", "Priority groups of a team with waiting conversations and no "
    "logged-in advisor who has the skills they require (or nobody logged in at all)",
    ["team"], multiprocess_mode="mostrecent")
SSE_CLIENTS = Gauge(
    "pushinbox_sse_clients", "Open live-update streams", multiprocess_mode="livesum")


class Children:
    """``metric.labels(*values)``, remembered: prometheus-client takes a lock, checks and
    builds the label tuple on every ``labels()`` call, five a request on the advisor's cycle
    (4 % of a py-spy profile's samples; in process 240.5 → 237.6 µs of CPU per request, within
    the noise but lower in every round). As many as the metric's own children: the label values
    these metrics take are bounded (HTTP methods httptools knows, route templates, statuses,
    scripts, teams and their groups)."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._seen: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._seen.get(values)
        if child is None:
            child = self._seen[values] = self.metric.labels(*values)
        return child


assignments, wait = Children(ASSIGNMENTS), Children(WAIT)
script, requests, latency = Children(SCRIPT), Children(REQUESTS), Children(LATENCY)


def observe_push(team: str, push: Push | ReplyAndPush, now_ms: int) -> None:
    if push.status == "assigned" and push.messages:
        first = push.messages[0]
        assignments(team, first.group or "").inc()
        wait(team).observe(max(0.0, (now_ms - first.received_at) / 1000))


#: Channel labels a team may have in ``pushinbox_waiting_messages`` (per process); further
#: channels are summed under ``_other``, so a team inventing channels cannot grow /metrics.
MAX_CHANNEL_LABELS = 20
_labelled: dict[str, set[str]] = {}


def set_stock(team: str, stock: Stock) -> None:
    set_waiting(team, {c.channel: c.waiting for c in stock.channels})


def set_waiting(team: str, channels: dict[str, int]) -> None:
    """The team's waiting messages per channel (a channel missing from ``channels`` has none)."""
    named = _labelled.setdefault(team, set())
    other = 0
    seen = set()
    for channel, waiting in sorted(channels.items(), key=lambda c: -c[1]):
        if channel in named or len(named) < MAX_CHANNEL_LABELS:
            named.add(channel)
            seen.add(channel)
            WAITING.labels(team, channel).set(waiting)
        else:
            other += waiting
    for gone in named - seen:  # a channel with nothing waiting left the index
        WAITING.labels(team, gone).set(0)
    if other or "_other" in named:
        named.add("_other")
        WAITING.labels(team, "_other").set(other)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE
    return generate_latest(), CONTENT_TYPE
