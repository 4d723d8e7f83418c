"""Live updates: one reader of each team's event stream per process, fanned out to every
Server-Sent Events client of that team in this process. No client polls Redis: a burst of
events costs one stock read per team and one figures read per watched advisor the events
name (the others get the figures last sent with the new stock); an open stream's token and
team are re-checked once per period for all the streams that share them.

Every update carries the id of the stream event it reflects; a client that reconnects with
``Last-Event-ID`` first gets what it missed (messages assigned to it meanwhile), then the
current state, so it misses nothing; a new client gets the current state first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
import structlog

from dispatcher import defaults, events, keys, ops
from dispatcher.api import AsyncDispatcher
from dispatcher.errors import MalformedError, PushinboxError
from dispatcher.model import AdvisorStats

__all__ = [
    "BLOCK_MS",
    "FIGURE_EVENTS",
    "PRESENCE_EVENTS",
    "QUEUE_SIZE",
    "REPLAY_MAX",
    "STOCK_EVENTS",
    "STREAM_ID",
    "Hub",
    "Subscriber",
    "Update",
    "assigned_updates",
    "check_last_event_id",
    "opening",
]

log = structlog.get_logger("pushinbox.live")

#: Events after which the team's waiting stock may have changed (dispatcher/events.py).
STOCK_EVENTS = events.names(stock=True)
#: Events after which an advisor's own figures may have changed.
FIGURE_EVENTS = events.names(figures=True)
#: What changes the supervisors' team view, and the least time between two of its snapshots.
VIEW_EVENTS = STOCK_EVENTS | FIGURE_EVENTS | events.names(presence=True) | {
    "advisor_set", "groups_changed"}
VIEW_INTERVAL_S = 0.5
#: Events after which who may receive messages changed: team streams get `advisors`.
PRESENCE_EVENTS = events.names(presence=True)
STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
#: Most events a reconnecting client is replayed; one further behind gets ``resync`` (reload
#: your current messages) with the state now, so a replay costs a bounded read.
REPLAY_MAX = 2000
#: Updates a slow client may lag behind before it is dropped (it reconnects and resumes).
QUEUE_SIZE = 256
#: How long one XREAD blocks (ms); short enough to notice a feed has no client left.
BLOCK_MS = 5000


@dataclass(frozen=True)
class Update:
    event: str
    id: str
    data: Any
    #: the update as a Server-Sent Event, encoded once for all the clients it goes to
    #: (streams.py): a stock change reaches 1,000 streams of a team as the same bytes
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(eq=False)
class Subscriber:
    team: str
    advisor: str | None
    view: bool = False  # a supervisor's team feed: it gets the team view too
    queue: asyncio.Queue[Update | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def offer(self, update: Update | None) -> bool:
        try:
            self.queue.put_nowait(update)
            return True
        except asyncio.QueueFull:
            return False


class Hub:
    """The process's team feeds; created at start-up, closed at shutdown."""

    def __init__(self, d: AsyncDispatcher, blocking: aredis.Redis) -> None:
        self.d = d
        self.blocking = blocking  # its own connections: XREAD BLOCK holds one per team
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.reads = 0  # XREAD calls made: what a test counts to prove there is no polling
        self.beats: dict[tuple[str, str], float] = {}  # (team, advisor) -> last presence write
        # the team view: the next snapshot's timer per team, the last one's time and event id
        self.view_due: dict[str, asyncio.TimerHandle] = {}
        self.view_last: dict[str, float] = {}
        self.view_id: dict[str, str] = {}
        self.view_tasks: set[asyncio.Task[None]] = set()
        # the figures last sent to each watched advisor: a change of the stock alone sends
        # them again with the new stock, read from Redis only when an event names them
        self.figures: dict[tuple[str, str], AdvisorStats] = {}
        # why open streams must end (token revoked, team or advisor deleted): one check per
        # (token, team, advisor) a period, shared by the streams that have them in common
        self.checks: dict[Any, tuple[float, asyncio.Future[str | None]]] = {}

    async def shared_check(self, key: Any, ttl: float,
                           check: Callable[[], Awaitable[str | None]]) -> str | None:
        """``check()``'s answer for ``key``, made at most once per ``ttl`` seconds in this
        process: the streams of one token (a wall of supervisor screens, a console's tabs)
        cost one token read and one existence read a period, not one each. A check under
        way is awaited, not repeated; a stream that leaves does not cancel it."""
        now = asyncio.get_running_loop().time()
        hit = self.checks.get(key)
        if hit is None or now - hit[0] >= ttl:
            if len(self.checks) >= defaults.TOKEN_CACHE_MAX:  # bounded: drop the stale ones
                self.checks = {k: v for k, v in self.checks.items() if now - v[0] < ttl}
            hit = (now, asyncio.ensure_future(check()))
            self.checks[key] = hit
        return await asyncio.shield(hit[1])

    def subscribe(self, team: str, advisor: str | None, view: bool = False) -> Subscriber:
        sub = Subscriber(team, advisor, view)
        self.subscribers.setdefault(team, set()).add(sub)
        if team not in self.tasks or self.tasks[team].done():
            self.tasks[team] = asyncio.create_task(self._feed(team), name=f"feed-{team}")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.team)
        if subs is not None:
            subs.discard(sub)
            if sub.advisor and not any(s.advisor == sub.advisor for s in subs):
                self.figures.pop((sub.team, sub.advisor), None)
            if not subs:  # the last client left: stop the team's blocking read now
                del self.subscribers[sub.team]
                task = self.tasks.pop(sub.team, None)
                if task is not None:
                    task.cancel()

    async def close(self) -> None:
        for timer in self.view_due.values():
            timer.cancel()
        for subs in self.subscribers.values():
            for sub in subs:
                sub.offer(None)
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def last_id(self, team: str) -> str:
        rows: Any = await self.d.redis.xrevrange(keys.events(team), count=1)
        return str(rows[0][0].decode()) if rows else "0-0"

    async def _feed(self, team: str) -> None:
        """Read the team's stream while it has subscribers; one task per team."""
        last: str | None = None
        while self.subscribers.get(team):
            try:
                if last is None:
                    last = await self.last_id(team)
                self.reads += 1
                rows: Any = await self.blocking.xread({keys.events(team): last}, count=500,
                                                 block=BLOCK_MS)
                if not rows:
                    continue
                entries = [(eid.decode(), {k.decode(): v.decode() for k, v in f.items()})
                           for eid, f in rows[0][1]]
                last = entries[-1][0]
                await self._fan_out(team, entries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: keep the clients, retry
                log.warning("feed_error", team=team, error=str(exc))
                await asyncio.sleep(1)
        if self.tasks.get(team) is asyncio.current_task():
            self.tasks.pop(team, None)

    async def _fan_out(self, team: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        subs = list(self.subscribers.get(team, ()))
        last = entries[-1][0]
        kinds = {f["e"] for _, f in entries}
        stock = None
        if kinds & STOCK_EVENTS:
            stock = await self.d.run(ops.team_stock(team))
            for sub in subs:
                self._send(sub, Update("stock", last, stock))
        if kinds & PRESENCE_EVENTS:
            for sub in subs:
                if sub.advisor is None:
                    self._send(sub, Update("advisors", last, {"changed": True}))
        if kinds & VIEW_EVENTS and any(s.view for s in subs):
            self._view_soon(team, last)
        watched = {s.advisor for s in subs if s.advisor}
        named_all = {f.get("a") for _, f in entries if f["e"] in FIGURE_EVENTS}
        # a figures event naming no advisor (requeued) may have moved anyone's
        named = watched if None in named_all else {a for a in named_all if a}
        touched = named | (watched if stock is not None else set())
        day = ops.day_iso(int(last.split("-")[0]))  # the day of the newest event (UTC)
        mine: dict[str, list[Subscriber]] = {}  # each advisor's own streams (not N x N)
        for sub in subs:
            if sub.advisor:
                mine.setdefault(sub.advisor, []).append(sub)
        for adv in watched & touched:
            for upd in await assigned_updates(self.d, team, adv, entries):
                for sub in mine[adv]:
                    self._send(sub, upd)
            sent = self.figures.get((team, adv))
            if (adv not in named and stock is not None and sent is not None
                    and sent.day == day and sent.break_started_at is None):
                # their own figures are as sent (no event named them): the new stock only
                figures = dataclasses.replace(sent, stock=stock.total)
            else:
                try:
                    figures = await self.d.run(ops.advisor_stats(team, adv, stock=stock))
                except PushinboxError:
                    continue
            self.figures[(team, adv)] = figures
            for sub in mine[adv]:
                self._send(sub, Update("figures", last, figures))

    def _view_soon(self, team: str, last: str) -> None:
        """One team-view snapshot for what just happened: at once, or VIEW_INTERVAL_S after
        the previous one (a busy team gets two a second, each a few round trips, whatever
        the number of events or supervisors)."""
        self.view_id[team] = last
        if team in self.view_due:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self.view_last.get(team, 0.0) + VIEW_INTERVAL_S - loop.time())
        self.view_due[team] = loop.call_later(wait, self._view_now, team)

    def _view_now(self, team: str) -> None:
        self.view_due.pop(team, None)
        self.view_last[team] = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._send_view(team))
        self.view_tasks.add(task)
        task.add_done_callback(self.view_tasks.discard)

    async def _send_view(self, team: str) -> None:
        try:
            view = await self.d.run(ops.team_live(team))
        except Exception as exc:  # Redis away, the team deleted: the next change tries again
            log.warning("team_view_failed", team=team, error=str(exc))
            return
        for sub in list(self.subscribers.get(team, ())):
            if sub.view:
                self._send(sub, Update("team", self.view_id.get(team, "0-0"), view))

    def _send(self, sub: Subscriber, update: Update) -> None:
        if not sub.offer(update):  # too slow: drop it; it reconnects with Last-Event-ID
            self.unsubscribe(sub)
            with contextlib.suppress(asyncio.QueueEmpty):
                sub.queue.get_nowait()
            sub.offer(None)


async def assigned_updates(d: AsyncDispatcher, team: str, advisor: str,
                           entries: list[tuple[str, dict[str, str]]]) -> list[Update]:
    """Messages given to ``advisor`` by a supervisor or a triage rule (not by their own press)."""
    out = []
    for eid, f in entries:
        if f["e"] == "assigned" and f.get("a") == advisor and f.get("via") != "push":
            try:
                message = await d.run(ops.message(team, f["m"]))
            except PushinboxError:
                continue
            out.append(Update("assigned", eid, message))
    return out


def check_last_event_id(value: str | None) -> str | None:
    """A ``Last-Event-ID`` the stream can resume from, or a MalformedError (400) naming it."""
    if value is None or value == "":
        return None
    m = STREAM_ID.fullmatch(value)
    if m is None or max(int(m.group(1)), int(m.group(2))) >= 2**64:
        raise MalformedError("Last-Event-ID must be an event id such as 1700000000000-0",
                              field="Last-Event-ID")
    return value


async def opening(d: AsyncDispatcher, hub: Hub, team: str, advisor: str | None,
                  last_event_id: str | None) -> list[Update]:
    """What a client gets first: what it missed since ``last_event_id``, then the state now."""
    out: list[Update] = []
    now_id = await hub.last_id(team)
    if advisor and check_last_event_id(last_event_id):
        since, replayed = str(last_event_id), 0
        while True:
            missed = await d.run(ops.events(team, since=since, count=500))
            if replayed + len(missed) > REPLAY_MAX:  # too far behind: start afresh
                out = [Update("resync", now_id, {"reason": "too many events missed"})]
                break
            replayed += len(missed)
            entries = [(e["id"], e) for e in missed]
            out += await assigned_updates(d, team, advisor, entries)
            if len(missed) < 500:
                break
            since = missed[-1]["id"]
    stock = await d.run(ops.team_stock(team))
    out.append(Update("stock", now_id, stock))
    if advisor:
        figures = await d.run(ops.advisor_stats(team, advisor, stock=stock))
        hub.figures.setdefault((team, advisor), figures)  # (the feed's own read is newer)
        out.append(Update("figures", now_id, figures))
    return out
