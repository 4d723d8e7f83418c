"""The ``Dispatcher``: the one API every client (CLI, HTTP service, workers) goes through.

Every state change is one Lua script call (one round trip, atomic); reads that only show state
are plain Redis reads. Long moves (logout requeue, re-bucketing) are handed to a ``Jobs``
runner: RQ in production (``workers.scheduling.RQJobs``), inline by default, so a library user
gets a correct system without a worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import redis
import structlog

from dispatcher import defaults, keys
from dispatcher.errors import (
    NotFoundError,
    PushinboxError,
    UnavailableError,
    ValidationError,
    error_for_code,
)
from dispatcher.hours import WorkingHours
from dispatcher.model import (
    AdvisorStats,
    ChannelStock,
    CheckReport,
    IncomingMessage,
    Message,
    Push,
    Stock,
    pack,
    unpack,
)
from dispatcher.rules import PrioritySettings, TriageRule, decompile_match
from dispatcher.scripts import ScriptSet

log = structlog.get_logger("pushinbox")

_SCRIPT_ERROR = re.compile(r"PI (\w+) (\S+) (.*?)(?: script: [0-9a-f]+, on @user_script:\d+\.)?$")
DAY_MS = 86_400_000


class Jobs(Protocol):
    """Where the dispatcher hands long or delayed work."""

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None: ...

    def rebucket(self, team: str) -> str | None: ...

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None: ...


class InlineJobs:
    """Runs moves at once in the caller; a break's scheduled end is left to ``tick``."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None:
        self._d.requeue_advisor(team, advisor, epoch)
        return None

    def rebucket(self, team: str) -> str | None:
        self._d.rebucket(team)
        return None

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None:
        return None


@dataclass(frozen=True)
class BreakInfo:
    status: str
    epoch: int
    since: int
    until: int | None
    job: str | None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


class Dispatcher:
    """Push-mode dispatching on Redis.

    ``clock`` (milliseconds since the epoch) replaces Redis ``TIME`` for tests that control
    time; in production every process uses the Redis clock, so they all agree.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        jobs: Jobs | None = None,
        clock: Callable[[], int] | None = None,
        batch_size: int = defaults.BATCH_SIZE,
    ) -> None:
        self.redis = client
        self.scripts = ScriptSet(client)
        self.jobs: Jobs = jobs if jobs is not None else InlineJobs(self)
        self.clock = clock
        self.batch_size = batch_size

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Dispatcher:
        return cls(redis.Redis.from_url(url), **kwargs)

    # --- plumbing ---------------------------------------------------------------------------
    def call(self, script: str, team: str, /, **opts: Any) -> Any:
        """Run one script for ``team``; script errors become PushinboxError subclasses."""
        keys.check_id(team, "team")
        if self.clock is not None and "now" not in opts:
            opts["now"] = self.clock()
        opts = {k: v for k, v in opts.items() if v is not None}
        try:
            raw = self.scripts[script](keys=[keys.cfg(team)], args=[keys.prefix(team), pack(opts)])
        except redis.ResponseError as exc:
            raise _translate(exc) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise UnavailableError(f"Redis is unreachable: {exc}") from exc
        return unpack(raw)

    def _read(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise UnavailableError(f"Redis is unreachable: {exc}") from exc

    def now_ms(self) -> int:
        """The dispatcher's clock: the test clock, else Redis TIME (one clock for everyone)."""
        if self.clock is not None:
            return self.clock()
        sec, usec = self._read(self.redis.time)
        return int(sec) * 1000 + int(usec) // 1000

    def ping(self) -> bool:
        return bool(self._read(self.redis.ping))

    # --- teams, roles, advisors, settings ---------------------------------------------------
    def create_team(self, team: str, name: str | None = None) -> None:
        keys.check_id(team, "team")
        self.call(
            "team_create",
            team,
            name=name or team,
            order=defaults.DEFAULT_ORDER,
            mreq=defaults.MAX_REQUEUES,
            ret=defaults.DONE_RETENTION_S * 1000,
            evmax=defaults.EVENT_STREAM_MAXLEN,
            dttl=defaults.DAY_STATS_TTL_S * 1000,
            pto=defaults.PRESENCE_TIMEOUT_S * 1000,
        )
        self._read(lambda: self.redis.sadd(keys.TEAMS, team))
        log.info("team_created", team=team)

    def teams(self) -> list[str]:
        return sorted(_s(t) for t in self._read(lambda: self.redis.smembers(keys.TEAMS)))

    def team_settings(self, team: str) -> dict[str, Any]:
        keys.check_id(team, "team")
        raw = self._read(lambda: self.redis.hgetall(keys.cfg(team)))
        if not raw:
            raise NotFoundError(f"unknown team {team}", field="team")
        cfg = {_s(k): v for k, v in raw.items()}
        hours = unpack(cfg["hours"])
        return {
            "team": team,
            "name": _s(cfg["name"]),
            "version": int(cfg["ver"]),
            "rebucketing": bool(unpack(cfg["old"])),
            "presence_timeout_s": int(cfg["pto"]) // 1000,
            "untouched_after_s": int(cfg["uto"]) // 1000,
            "logout_at_end_of_hours": _s(cfg["lae"]) == "1",
            "max_requeues": int(cfg["mreq"]),
            "retention_s": int(cfg["ret"]) // 1000,
            "hours": hours or None,
        }

    def configure(
        self,
        team: str,
        *,
        name: str | None = None,
        presence_timeout_s: int | None = None,
        untouched_after_s: int | None = None,
        logout_at_end_of_hours: bool | None = None,
        max_requeues: int | None = None,
        retention_s: int | None = None,
    ) -> None:
        """Change team options; each is validated before anything is stored."""
        fields: dict[str, Any] = {}
        for field, value, lo in (
            ("presence_timeout_s", presence_timeout_s, 10),
            ("untouched_after_s", untouched_after_s, 0),
            ("max_requeues", max_requeues, 1),
            ("retention_s", retention_s, 60),
        ):
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValidationError(f"{field} must be a whole number >= {lo}", field=field)
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ValidationError("name must be a non-empty string", field="name")
            fields["name"] = name
        if presence_timeout_s is not None:
            fields["pto"] = presence_timeout_s * 1000
        if untouched_after_s is not None:
            fields["uto"] = untouched_after_s * 1000
        if logout_at_end_of_hours is not None:
            fields["lae"] = 1 if logout_at_end_of_hours else 0
        if max_requeues is not None:
            fields["mreq"] = max_requeues
        if retention_s is not None:
            fields["ret"] = retention_s * 1000
        self.call("settings_set", team, fields=fields)

    def set_hours(self, team: str, spec: object) -> WorkingHours:
        hours = WorkingHours.parse(spec)
        self.call("settings_set", team, fields={"hours": pack(hours.to_dict())})
        return hours

    def hours(self, team: str) -> WorkingHours | None:
        spec = self.team_settings(team)["hours"]
        return WorkingHours.parse(spec) if spec else None

    def set_role(self, team: str, role: str, *, push: bool = True, capacity: int = 1) -> None:
        keys.check_id(role, "role")
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100:
            raise ValidationError("capacity must be a whole number from 1 to 100", "capacity")
        self.call("role_set", team, role=role, push=bool(push), cap=capacity)

    def roles(self, team: str) -> list[dict[str, Any]]:
        names = sorted(_s(r) for r in self._read(lambda: self.redis.smembers(keys.roles(team))))
        pipe = self.redis.pipeline(transaction=False)
        for r in names:
            pipe.hmget(keys.role(team, r), "push", "cap")
        rows = self._read(pipe.execute)
        return [
            {"role": r, "push": _s(v[0]) == "1", "capacity": int(v[1])}
            for r, v in zip(names, rows, strict=True)
        ]

    def set_advisor(self, team: str, advisor: str, role: str, name: str | None = None) -> None:
        keys.check_id(advisor, "advisor")
        keys.check_id(role, "role")
        self.call("advisor_set", team, adv=advisor, role=role, name=name or advisor)

    def advisors(self, team: str) -> list[dict[str, Any]]:
        names = sorted(
            _s(a) for a in self._read(lambda: self.redis.smembers(keys.advisors(team)))
        )
        pipe = self.redis.pipeline(transaction=False)
        for a in names:
            pipe.hmget(keys.advisor(team, a), "name", "role", "st", "bs")
            pipe.zcard(keys.current(team, a))
        rows = self._read(pipe.execute)
        states = {"off": "offline", "on": "online", "brk": "on break"}
        out = []
        for i, a in enumerate(names):
            v, held = rows[2 * i], rows[2 * i + 1]
            out.append(
                {
                    "advisor": a,
                    "name": _s(v[0]),
                    "role": _s(v[1]),
                    "state": states.get(_s(v[2]), _s(v[2])),
                    "assigned": int(held),
                }
            )
        return out

    def set_groups(self, team: str, spec: object) -> dict[str, Any]:
        """Replace priority groups / order; re-buckets the waiting stock through ``jobs``."""
        settings = PrioritySettings.parse(spec)
        res = self.call("groups_set", team, groups=pack(settings.compiled()), order=settings.order)
        job = self.jobs.rebucket(team) if res["rebucket"] else None
        log.info("groups_changed", team=team, version=res["version"], job=job)
        return {"version": res["version"], "rebucket": res["rebucket"], "job": job}

    def groups(self, team: str) -> PrioritySettings:
        keys.check_id(team, "team")
        raw = self._read(lambda: self.redis.hmget(keys.cfg(team), "groups", "order"))
        if raw[0] is None:
            raise NotFoundError(f"unknown team {team}", field="team")
        compiled = unpack(raw[0])
        return PrioritySettings(
            order=_s(raw[1]),
            groups=[{"name": g["n"], "match": decompile_match(g["m"] or {})} for g in compiled],
        )

    def set_triage(self, team: str, rules: object) -> list[TriageRule]:
        parsed = TriageRule.parse_list(rules)
        self.call("triage_set", team, rules=pack([r.compiled() for r in parsed]))
        return parsed

    def triage(self, team: str) -> list[TriageRule]:
        raw = self._read(lambda: self.redis.hget(keys.cfg(team), "triage"))
        if raw is None:
            raise NotFoundError(f"unknown team {team}", field="team")
        return [
            TriageRule(name=r["n"], match=decompile_match(r["m"] or {}), advisor=r["a"])
            for r in unpack(raw)
        ]

    # --- upstream -----------------------------------------------------------------------------
    def ingest(self, team: str, message: object) -> str:
        """Store one message; returns 'queued', 'assigned:<advisor>' or 'duplicate'."""
        return self.ingest_many(team, [message])[0]

    def ingest_many(self, team: str, messages: Iterable[object]) -> list[str]:
        """Store a batch atomically: all messages are validated first; a conflict stores none."""
        parsed = []
        for i, m in enumerate(messages):
            try:
                parsed.append(IncomingMessage.parse(m))
            except ValidationError as exc:
                raise ValidationError(
                    f"message {i}: {exc.message}", field=f"messages[{i}].{exc.field}"
                ) from exc
        if not parsed:
            return []
        result: list[str] = self.call("ingest", team, msgs=[p.to_script() for p in parsed])
        return result

    def set_customer_tags(self, team: str, customer: str, tags: list[str]) -> int:
        """A customer's tags changed: their waiting conversations move to the group they match."""
        keys.check_id(customer, "customer")
        clean = IncomingMessage.parse(
            {"id": "x", "conversation": "x", "customer": customer, "channel": "x", "body": "",
             "customer_tags": tags}
        ).customer_tags or []
        res = self.call("customer_tags", team, cust=customer, tags=pack(sorted(clean)))
        return int(res["moved"])

    # --- advisors -----------------------------------------------------------------------------
    def login(self, team: str, advisor: str) -> int:
        keys.check_id(advisor, "advisor")
        res = self.call("login", team, adv=advisor)
        return int(res["epoch"])

    def logout(self, team: str, advisor: str, why: str | None = None) -> str | None:
        """The advisor is offline at once; their messages are requeued by a job (id returned)."""
        keys.check_id(advisor, "advisor")
        res = self.call("logout", team, adv=advisor, why=why)
        if res["held"]:
            return self.jobs.requeue_advisor(team, advisor, int(res["epoch"]))
        return None

    def heartbeat(self, team: str, advisor: str) -> None:
        """Presence for the reaper from an advisor's client; never logs anyone in."""
        keys.check_id(advisor, "advisor")
        self.call("login", team, adv=advisor, touch_only=True)

    def next(self, team: str, advisor: str, request_id: str | None = None) -> Push:
        """*Process a new message*."""
        keys.check_id(advisor, "advisor")
        res = self.call("next", team, adv=advisor, req=request_id)
        push = Push(res["status"], [Message.from_script(m) for m in res["messages"] or []])
        if push.status == "assigned" and push.message:
            m = push.message
            log.info("pushed", team=team, advisor=advisor, message=m.id, group=m.group)
        return push

    def _act(self, script: str, team: str, advisor: str, message: str, **opts: Any) -> str:
        keys.check_id(advisor, "advisor")
        keys.check_id(message, "message")
        res = self.call(script, team, adv=advisor, msg=message, **opts)
        return str(res["status"])

    def reply(self, team: str, advisor: str, message: str) -> str:
        return self._act("reply", team, advisor, message)

    def archive(self, team: str, advisor: str, message: str) -> str:
        return self._act("archive", team, advisor, message)

    def request_help(self, team: str, advisor: str, message: str, note: str = "") -> str:
        return self._act("help", team, advisor, message, note=note[:500])

    def hold(self, team: str, advisor: str, message: str) -> str:
        return self._act("hold", team, advisor, message)

    def unhold(self, team: str, advisor: str, message: str) -> str:
        return self._act("hold", team, advisor, message, off=True)

    def take(self, team: str, advisor: str, message: str) -> list[Message]:
        """A classic-inbox advisor (push mode off) picks a waiting message."""
        keys.check_id(advisor, "advisor")
        keys.check_id(message, "message")
        res = self.call("take", team, adv=advisor, msg=message)
        return [Message.from_script(m) for m in res["messages"] or []]

    def start_break(self, team: str, advisor: str) -> BreakInfo:
        """Start a break; it ends at the end of the current working-hours range by itself."""
        keys.check_id(advisor, "advisor")
        hours = self.hours(team)
        until = None
        if hours is not None:
            end = hours.current_range_end(datetime.fromtimestamp(self.now_ms() / 1000, UTC))
            until = int(end.timestamp() * 1000) if end else None
        res = self.call("break_start", team, adv=advisor, **{"until": until})
        job = None
        if res["status"] == "ok" and until is not None:
            job = self.jobs.end_break_at(team, advisor, int(res["epoch"]), until)
        return BreakInfo(res["status"], int(res["epoch"]), int(res["since"]),
                         res.get("until"), job)

    def end_break(
        self,
        team: str,
        advisor: str,
        *,
        epoch: int | None = None,
        at_ms: int | None = None,
        why: str | None = None,
    ) -> int:
        """End a break; returns its length in ms (0: no break, or that break already ended)."""
        keys.check_id(advisor, "advisor")
        res = self.call("break_end", team, adv=advisor, epoch=epoch, at=at_ms, why=why)
        return int(res["ms"])

    def current(self, team: str, advisor: str) -> list[Message]:
        """*Your current messages*: pushed, triaged, assigned by hand, on hold."""
        keys.check_id(advisor, "advisor")
        return [Message.from_script(m) for m in self.call("view", team, adv=advisor)]

    def messages(self, team: str, ids: list[str]) -> list[Message]:
        for i in ids:
            keys.check_id(i, "message")
        return [Message.from_script(m) for m in self.call("view", team, ids=ids)]

    def message(self, team: str, message: str) -> Message:
        found = self.messages(team, [message])
        if not found:
            raise NotFoundError(f"unknown message {message}", field="message")
        return found[0]

    # --- supervisors --------------------------------------------------------------------------
    def assign(self, team: str, advisor: str, message: str, by: str | None = None) -> list[Message]:
        keys.check_id(advisor, "advisor")
        keys.check_id(message, "message")
        res = self.call("assign", team, adv=advisor, msg=message, by=by)
        return [Message.from_script(m) for m in res["messages"] or []]

    def send_to_stock(self, team: str, message: str) -> str:
        keys.check_id(message, "message")
        return str(self.call("send_to_stock", team, msg=message)["status"])

    def help_requests(self, team: str) -> list[Message]:
        return [Message.from_script(m) for m in self.call("view", team, place="help")]

    def quarantined(self, team: str) -> list[Message]:
        return [Message.from_script(m) for m in self.call("view", team, place="quarantine")]

    def preview(self, team: str, n: int = 10) -> list[dict[str, Any]]:
        """The first ``n`` conversations of the ordered list: what the next presses get."""
        if not isinstance(n, int) or not 1 <= n <= 1000:
            raise ValidationError("n must be from 1 to 1000", field="n")
        rows = self.call("preview", team, n=n)
        return [
            {
                "position": i + 1,
                "conversation": r["conversation"],
                "group": r["group"],
                "why": r["why"],
                "messages": [Message.from_script(m) for m in r["messages"]],
            }
            for i, r in enumerate(rows)
        ]

    # --- statistics (O(1) reads of what the scripts keep) --------------------------------------
    def stock(self, team: str) -> Stock:
        """The team's waiting messages, total and per channel, with the oldest one's age."""
        self._require_team(team)
        chans = sorted(_s(c) for c in self._read(lambda: self.redis.smembers(keys.channels(team))))
        pipe = self.redis.pipeline(transaction=False)
        for c in chans:
            pipe.zcard(keys.channel_waiting(team, c))
            pipe.zrange(keys.channel_waiting(team, c), 0, 0, withscores=True)
        rows = self._read(pipe.execute)
        now = self.now_ms()
        out = []
        for i, c in enumerate(chans):
            n, oldest = int(rows[2 * i]), rows[2 * i + 1]
            age = round(max(0, now - oldest[0][1]) / 1000, 3) if oldest else None
            out.append(ChannelStock(c, n, age))
        return Stock(sum(c.waiting for c in out), out)

    def advisor_stats(self, team: str, advisor: str, day: date | None = None) -> AdvisorStats:
        """Personal statistics for a UTC day (today by default); a running break counts."""
        keys.check_id(advisor, "advisor")
        now = self.now_ms()
        dn = day_number(day) if day else now // DAY_MS
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.day(team, dn), f"r:{advisor}", f"x:{advisor}", f"b:{advisor}")
        pipe.hmget(keys.advisor(team, advisor), "st", "bs")
        pipe.zcard(keys.current(team, advisor))
        figures, adv, assigned = self._read(pipe.execute)
        if adv[0] is None:
            self._require_team(team)
            raise NotFoundError(f"unknown advisor {advisor} in team {team}", field="advisor")
        brk = int(figures[2] or 0)
        since = int(adv[1]) if _s(adv[0]) == "brk" and adv[1] else None
        if since is not None:
            brk += _overlap(since, now, dn)
        states = {"off": "offline", "on": "online", "brk": "on break"}
        return AdvisorStats(
            advisor=advisor,
            day=(date(1970, 1, 1) + timedelta(days=dn)).isoformat(),
            state=states[_s(adv[0])],
            responses=int(figures[0] or 0),
            archives=int(figures[1] or 0),
            break_seconds=round(brk / 1000, 3),
            assigned=int(assigned),
            stock=self.stock(team).total,
            break_started_at=since,
        )

    def breaks(self, team: str, start: date, days: int = 7) -> dict[str, Any]:
        """Break seconds per day per advisor and for the team (breaks over midnight are split)."""
        if not 1 <= days <= 366:
            raise ValidationError("days must be from 1 to 366", field="days")
        self._require_team(team)
        now = self.now_ms()
        first = day_number(start)
        pipe = self.redis.pipeline(transaction=False)
        for d in range(first, first + days):
            pipe.hgetall(keys.day(team, d))
        rows = self._read(pipe.execute)
        running = {a["id"]: a["bs"] for a in self._advisor_rows(team) if a["st"] == "brk"}
        out: dict[str, Any] = {"team": team, "days": []}
        for offset, raw in enumerate(rows):
            dn = first + offset
            per: dict[str, float] = {}
            for k, v in raw.items():
                name = _s(k)
                if name.startswith("b:"):
                    per[name[2:]] = int(v) / 1000
            for adv, since in running.items():
                extra = _overlap(since, now, dn) / 1000
                if extra:
                    per[adv] = per.get(adv, 0) + extra
            out["days"].append(
                {
                    "day": (date(1970, 1, 1) + timedelta(days=dn)).isoformat(),
                    "team_seconds": round(sum(per.values()), 3),
                    "advisors": {a: round(s, 3) for a, s in sorted(per.items())},
                }
            )
        return out

    def events(self, team: str, since: str = "-", count: int = 100) -> list[dict[str, Any]]:
        """The audit trail: events after ``since`` (an event id), oldest first."""
        self._require_team(team)
        start = "(" + since if since not in ("-", "0") else "-"
        rows = self._read(lambda: self.redis.xrange(keys.events(team), start, "+", count=count))
        return [
            {"id": _s(eid), **{_s(k): _s(v) for k, v in fields.items()}} for eid, fields in rows
        ]

    def check(self, team: str) -> CheckReport:
        """Verify the team's invariants (see scripts/lua/check.lua)."""
        res = self.call("check", team)
        return CheckReport(
            ok=bool(res["ok"]),
            problems=list(res["problems"] or []),
            problem_count=int(res["nproblems"]),
            counts={k: int(v) for k, v in res["counts"].items()},
        )

    def _require_team(self, team: str) -> None:
        keys.check_id(team, "team")
        if not self._read(lambda: self.redis.exists(keys.cfg(team))):
            raise NotFoundError(f"unknown team {team}", field="team")

    # --- batched moves and the reconciler (called by jobs) ------------------------------------
    def requeue_advisor(
        self,
        team: str,
        advisor: str,
        epoch: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Hand a logged-out advisor's messages back, batch by batch (fenced by ``epoch``)."""
        moved = 0
        while True:
            res = self.call("requeue_batch", team, adv=advisor, epoch=epoch, n=self.batch_size)
            moved += int(res["moved"])
            if progress:
                progress(moved, int(res["left"]))
            if res["fenced"] or not res["left"]:
                return moved

    def rebucket(self, team: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Move the waiting stock of older settings into the current groups, batch by batch."""
        moved = 0
        while True:
            res = self.call("rebucket_batch", team, n=self.batch_size)
            moved += int(res["moved"])
            if progress:
                progress(moved, int(res["left"]))
            if not res["left"]:
                return moved

    def tick(self, team: str) -> dict[str, int]:
        """The reconciler: what no RQ job may be trusted alone to do. Idempotent.

        Logs out silent advisors, requeues messages stranded with logged-out advisors, ends
        breaks past their working-hours end, returns untouched pushes, logs advisors out at
        the end of working hours (team option), finishes re-bucketing, purges old done messages.
        """
        now = self.now_ms()
        settings = self.team_settings(team)
        done = {"reaped": 0, "requeued": 0, "breaks_ended": 0, "untouched": 0,
                "logged_out_end_of_hours": 0, "rebucketed": 0, "purged": 0}
        for adv in self._advisor_rows(team):
            overdue = adv["st"] == "brk" and adv["bu"] and adv["bu"] <= now
            if overdue and self.end_break(team, adv["id"], epoch=adv["bep"], at_ms=adv["bu"],
                                          why="end of working hours"):
                done["breaks_ended"] += 1
        reaped = self.call("reap", team, cutoff=now - settings["presence_timeout_s"] * 1000,
                           n=1000, why="not seen for too long")
        done["reaped"] = len(reaped)
        if settings["logout_at_end_of_hours"] and settings["hours"]:
            hours = WorkingHours.parse(settings["hours"])
            moment = datetime.fromtimestamp(now / 1000, UTC)
            last_end = hours.last_end_before(moment)
            if hours.current_range_end(moment) is None and last_end is not None:
                end_ms = int(last_end.timestamp() * 1000)
                for adv in self._advisor_rows(team):
                    if adv["st"] != "off" and adv["li"] < end_ms:
                        self.call("logout", team, adv=adv["id"], why="end of working hours")
                        done["logged_out_end_of_hours"] += 1
        for adv in self._advisor_rows(team):
            if adv["st"] == "off" and adv["held"]:
                done["requeued"] += self.requeue_advisor(team, adv["id"], adv["ep"])
        if settings["untouched_after_s"]:
            cutoff = now - settings["untouched_after_s"] * 1000
            while True:
                n = int(self.call("untouched", team, cutoff=cutoff, n=self.batch_size)["moved"])
                done["untouched"] += n
                if n < self.batch_size:
                    break
        if settings["rebucketing"]:
            done["rebucketed"] = self.rebucket(team)
        while True:
            n = int(self.call("purge_done", team, cutoff=now - settings["retention_s"] * 1000,
                              n=self.batch_size)["purged"])
            done["purged"] += n
            if n < self.batch_size:
                break
        return done

    def _advisor_rows(self, team: str) -> list[dict[str, Any]]:
        names = [_s(a) for a in self._read(lambda: self.redis.smembers(keys.advisors(team)))]
        pipe = self.redis.pipeline(transaction=False)
        for a in names:
            pipe.hmget(keys.advisor(team, a), "st", "ep", "bep", "bu", "li", "bs")
            pipe.zcard(keys.current(team, a))
        rows = self._read(pipe.execute)
        out = []
        for i, a in enumerate(names):
            v, held = rows[2 * i], rows[2 * i + 1]
            out.append({"id": a, "st": _s(v[0]), "ep": int(v[1] or 0), "bep": int(v[2] or 0),
                        "bu": int(v[3]) if v[3] else 0, "li": int(v[4]) if v[4] else 0,
                        "bs": int(v[5]) if v[5] else 0, "held": int(held)})
        return out


def _overlap(since: int, now: int, day_num: int) -> int:
    """Milliseconds of [since, now) inside UTC day ``day_num``."""
    lo, hi = max(since, day_num * DAY_MS), min(now, (day_num + 1) * DAY_MS)
    return max(0, hi - lo)


def _translate(exc: redis.ResponseError) -> PushinboxError:
    text = str(exc)
    m = _SCRIPT_ERROR.search(text)
    if not m:
        return PushinboxError(f"Redis refused the operation: {text}")
    field = None if m.group(2) == "-" else m.group(2)
    return error_for_code(m.group(1), m.group(3), field)
