"""Every dispatcher operation, written once, free of I/O (the vocabulary of what an
operation may ask for is ``dispatcher.ops.effects``; the operations on tokens and webhooks
are ``dispatcher.tokens`` and ``dispatcher.webhooks``, built on the same vocabulary).

An operation is a generator: it validates its input, then *yields* what it needs done (run a
Lua script, read a few keys in one pipeline, the clock, hand a job over) and receives the answer.
The synchronous ``Dispatcher`` (CLI, workers, library users) and the ``AsyncDispatcher`` (the HTTP
service) only execute these requests, so there is one implementation of each operation whatever
the transport; the state changes themselves are the Lua scripts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from dispatcher import defaults, keys, reports
from dispatcher.errors import ConflictError, NotFoundError, ValidationError
from dispatcher.hours import WorkingHours
from dispatcher.model import (
    AdvisorStats,
    ChannelStock,
    CheckReport,
    IncomingMessage,
    Message,
    Push,
    ReplyAndPush,
    Stock,
    pack,
    unpack,
)
from dispatcher.ops.effects import Cmd, Commands, Effect, Job, Now, Op, Script, read
from dispatcher.rules import PrioritySettings, TriageRule, decompile_match

__all__ = [
    "DAY_MS",
    "PAGE_MAX",
    "STATES",
    "BreakInfo",
    "Cmd",
    "Commands",
    "Effect",
    "Job",
    "Now",
    "Op",
    "Page",
    "Progress",
    "Script",
    "act",
    "advisor_rows",
    "advisor_stats",
    "advisors",
    "assign",
    "breaks",
    "check",
    "configure",
    "create_team",
    "current",
    "current_page",
    "daily_report",
    "day_iso",
    "day_number",
    "delete_team",
    "end_break",
    "escalate",
    "escalating_teams",
    "events",
    "group_stock",
    "groups",
    "groups_stock_of",
    "heartbeat",
    "hours",
    "ingest_many",
    "ingest_one",
    "login",
    "logout",
    "message",
    "messages",
    "migrate",
    "next_message",
    "place",
    "place_page",
    "preview",
    "read",
    "rebucket",
    "rebucket_progress",
    "repair",
    "requeue_advisor",
    "requeue_now",
    "require_team",
    "roles",
    "send_to_stock",
    "set_advisor",
    "set_customer_tags",
    "set_groups",
    "set_hours",
    "set_role",
    "set_skills",
    "set_triage",
    "start_break",
    "still_there",
    "take",
    "team_live",
    "team_settings",
    "team_stock",
    "teams",
    "tick",
    "triage",
    "waiting_counts",
]

T = TypeVar("T")
DAY_MS = 86_400_000
#: Most messages one page of a list holds (HTTP `limit`; one script call reads one page).
PAGE_MAX = 1000
STATES = {"off": "offline", "on": "online", "brk": "on break"}


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


def _iso(day_num: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_num)).isoformat()


def day_iso(ms: int) -> str:
    """The UTC day of a time in ms, as the figures name it (``AdvisorStats.day``)."""
    return _iso(ms // DAY_MS)


def _overlap(since: int, now: int, day_num: int) -> int:
    """Milliseconds of [since, now) inside UTC day ``day_num``."""
    lo, hi = max(since, day_num * DAY_MS), min(now, (day_num + 1) * DAY_MS)
    return max(0, hi - lo)


def _messages(rows: Any) -> list[Message]:
    return [Message.from_script(m) for m in rows or []]


# --- teams, roles, advisors, settings ---------------------------------------------------------
def _name(name: object, field: str) -> None:
    if name is not None and (not isinstance(name, str) or len(name) > defaults.MAX_NAME_LEN):
        raise ValidationError(f"{field} must be a string of at most {defaults.MAX_NAME_LEN} "
                              "characters", field=field)


def create_team(team: str, name: str | None = None) -> Op[None]:
    keys.check_team(team)
    _name(name, "name")
    yield Script(
        "team_create",
        team,
        {
            "name": name or team,
            "order": defaults.DEFAULT_ORDER,
            "mreq": defaults.MAX_REQUEUES,
            "ret": defaults.DONE_RETENTION_S * 1000,
            "evmax": defaults.EVENT_STREAM_MAXLEN,
            "dttl": defaults.DAY_STATS_TTL_S * 1000,
            "pto": defaults.PRESENCE_TIMEOUT_S * 1000,
        },
    )
    yield Commands([Cmd("sadd", (keys.TEAMS, team))])


def delete_team(team: str, batch: int) -> Op[int]:
    """Remove a team and all it holds, batch by batch; answers how many keys went."""
    keys.check_team(team)
    cursor, deleted, first = "0", 0, True
    while True:
        res = yield Script("team_delete", team, {"cursor": cursor, "n": batch, "first": first})
        deleted += int(res["deleted"])
        cursor, first = _s(res["cursor"]), False
        if cursor == "0":
            break
    yield Commands([Cmd("srem", (keys.TEAMS, team))])
    from dispatcher.tokens import forget_team  # tokens builds on ops: imported when used

    yield from forget_team(team)
    return deleted


def migrate(team: str, down: bool = False, batch: int = 1000) -> Op[dict[str, int]]:
    """Move the team's data between this version's layouts and an earlier version's
    (scripts/lua/migrate.lua): fold each waiting list of one message into its conversation's
    record, each customer's set of conversations into a hash and each channel's per-message
    index of waiting messages into counts per second, or with ``down`` put them back, with a
    conversation's message in hands back in its set and the empty or repeated fields this
    version leaves out of new records written back (for a version before this one). One
    SCAN step of about ``batch`` keys per atomic call; safe on a live team. Also moves each
    queue kept whole as one sorted set into buckets (``queued``: waiting conversations moved),
    or back. Returns how many conversations, customers, waiting messages (``stock``) and
    queued conversations changed."""
    keys.check_team(team)
    moved = {"c": 0, "m": 0, "u": 0, "k": 0, "q": 0}
    # down: the conversations, then the messages' fields and channel index an earlier version
    # reads, then the customers, then the counts per second dropped
    for what in ("q", "c", "m", "u", "k") if down else ("c", "u", "k", "q"):
        cursor = "0"
        while True:
            res = yield Script("migrate", team, {"cursor": cursor, "n": batch, "down": down,
                                                 "what": what})
            moved[what] += int(res["moved"])
            cursor = _s(res["cursor"])
            if cursor == "0" and not res.get("again"):
                break
    return {"conversations": moved["c"], "customers": moved["u"],
            "stock": moved["m"] if down else moved["k"], "queued": moved["q"]}


def teams() -> Op[list[str]]:
    found = yield from read("smembers", keys.TEAMS)
    return sorted(_s(t) for t in found)


def require_team(team: str) -> Op[None]:
    keys.check_team(team)
    if not (yield from read("exists", keys.cfg(team))):
        raise NotFoundError(f"unknown team {team}", field="team")


def still_there(team: str, advisor: str | None = None) -> Op[tuple[bool, bool]]:
    """Does the team exist, and (when named) is the advisor still one of its advisors?"""
    team_ok, adv_ok = yield Commands([Cmd("exists", (keys.cfg(team),)),
                                      Cmd("sismember", (keys.advisors(team), advisor or ""))])
    return bool(team_ok), bool(adv_ok) or advisor is None


def team_settings(team: str) -> Op[dict[str, Any]]:
    keys.check_team(team)
    raw = yield from read("hgetall", keys.cfg(team))
    if not raw:
        raise NotFoundError(f"unknown team {team}", field="team")
    cfg = {_s(k): v for k, v in raw.items()}
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
        "max_messages": int(cfg.get("mmax", defaults.MAX_MESSAGES)),
        "max_body_bytes": int(cfg.get("bmax", defaults.MAX_BODY_BYTES_STORED)),
        "max_ingest_rate": int(cfg.get("rmax", 0)),
        # None: a team an earlier version created, until `repair` counts them
        "stored_messages": int(cfg["nm"]) if "nm" in cfg else None,
        "stored_body_bytes": int(cfg.get("nb", 0)) if "nm" in cfg else None,
        "hours": unpack(cfg["hours"]) or None,
    }


def configure(
    team: str,
    *,
    name: str | None = None,
    presence_timeout_s: int | None = None,
    untouched_after_s: int | None = None,
    logout_at_end_of_hours: bool | None = None,
    max_requeues: int | None = None,
    retention_s: int | None = None,
    max_messages: int | None = None,
    max_body_bytes: int | None = None,
    max_ingest_rate: int | None = None,
) -> Op[None]:
    """Change team options; each is validated before anything is stored. ``max_messages``:
    the messages the team may store (waiting, in hands, done within retention; 0: no bound),
    ``max_body_bytes`` the bytes of their bodies, ``max_ingest_rate`` the new messages it may
    take a second (0: no cap, the default): operators' settings (the CLI's), not a
    supervisor's: they protect the other teams."""
    fields: dict[str, Any] = {}
    week, ten_years = 7 * 86400, 3650 * 86400  # (the scripts' numbers are exact to 2^53 only)
    for name_, value, lo, hi, code, scale in (
        ("presence_timeout_s", presence_timeout_s, 10, week, "pto", 1000),
        ("untouched_after_s", untouched_after_s, 0, week, "uto", 1000),
        ("max_requeues", max_requeues, 1, 1000, "mreq", 1),
        ("retention_s", retention_s, 60, ten_years, "ret", 1000),
        ("max_messages", max_messages, 0, 10**9, "mmax", 1),
        ("max_body_bytes", max_body_bytes, 0, 2**50, "bmax", 1),
        ("max_ingest_rate", max_ingest_rate, 0, 10**6, "rmax", 1),
    ):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValidationError(f"{name_} must be a whole number from {lo} to {hi:,}",
                                  field=name_)
        fields[code] = value * scale
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name must be a non-empty string", field="name")
        fields["name"] = name
    if logout_at_end_of_hours is not None:
        if not isinstance(logout_at_end_of_hours, bool):
            raise ValidationError("logout_at_end_of_hours must be true or false",
                                  field="logout_at_end_of_hours")
        fields["lae"] = 1 if logout_at_end_of_hours else 0
    yield Script("settings_set", team, {"fields": fields})


def set_hours(team: str, spec: object) -> Op[WorkingHours]:
    parsed = WorkingHours.parse(spec)
    yield Script("settings_set", team, {"fields": {"hours": pack(parsed.to_dict())}})
    return parsed


def hours(team: str) -> Op[WorkingHours | None]:
    spec = (yield from team_settings(team))["hours"]
    return WorkingHours.parse(spec) if spec else None


def set_role(team: str, role: str, *, push: bool = True, capacity: int = 1) -> Op[None]:
    keys.check_id(role, "role")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100:
        raise ValidationError("capacity must be a whole number from 1 to 100", "capacity")
    yield Script("role_set", team, {"role": role, "push": bool(push), "cap": capacity})


def roles(team: str) -> Op[list[dict[str, Any]]]:
    found = yield from read("smembers", keys.roles(team))
    names = sorted(_s(r) for r in found)
    rows = yield Commands([Cmd("hmget", (keys.role(team, r), "push", "cap")) for r in names])
    return [
        {"role": r, "push": _s(v[0]) == "1", "capacity": int(v[1])}
        for r, v in zip(names, rows, strict=True)
    ]


def set_advisor(team: str, advisor: str, role: str, name: str | None = None,
                skills: list[str] | None = None) -> Op[None]:
    """Create or change an advisor; ``skills`` replaces theirs (None keeps them)."""
    keys.check_id(advisor, "advisor")
    keys.check_id(role, "role")
    _name(name, "name")
    opts: dict[str, Any] = {"adv": advisor, "role": role, "name": name or advisor}
    if skills is not None:
        opts["skills"] = keys.check_skills(skills, "skills")
        opts["max"] = defaults.MAX_SKILLS
    yield Script("advisor_set", team, opts)


def set_skills(team: str, advisor: str, *, skills: list[str] | None = None,
               add: list[str] | tuple[str, ...] = (), remove: list[str] | tuple[str, ...] = ()
               ) -> Op[list[str]]:
    """Change an advisor's skills: replace them (``skills``), then add and remove some, in
    one atomic step (two supervisors editing at once lose nothing). Returns the new skills;
    more than MAX_SKILLS is refused, naming "skills", and changes nothing."""
    keys.check_id(advisor, "advisor")
    opts: dict[str, Any] = {"adv": advisor, "add": keys.check_skills(list(add), "add"),
                            "rm": keys.check_skills(list(remove), "remove"),
                            "max": defaults.MAX_SKILLS}
    if skills is not None:
        opts["skills"] = keys.check_skills(skills, "skills")
    res = yield Script("advisor_skills", team, opts)
    return [_s(x) for x in res["skills"]]


def advisors(team: str) -> Op[list[dict[str, Any]]]:
    found = yield from read("smembers", keys.advisors(team))
    names = sorted(_s(a) for a in found)
    cmds = []
    for a in names:
        cmds += [Cmd("hmget", (keys.advisor(team, a), "name", "role", "st", "sk")),
                 Cmd("zcard", (keys.current(team, a),))]
    rows = yield Commands(cmds)
    out = []
    for i, a in enumerate(names):
        v, held = rows[2 * i], rows[2 * i + 1]
        state = _s(v[2])
        out.append({"advisor": a, "name": _s(v[0]), "role": _s(v[1]),
                    "state": STATES.get(state, state), "assigned": int(held),
                    "skills": _skills(v[3])})
    return out


def _skills(raw: bytes | None) -> list[str]:
    """An advisor's skills as stored (a msgpack list, or empty for none)."""
    return [_s(x) for x in unpack(raw)] if raw else []


def set_groups(team: str, spec: object) -> Op[dict[str, Any]]:
    """Replace priority groups / order; the waiting stock is re-bucketed by a job."""
    settings = PrioritySettings.parse(spec)
    res = yield Script("groups_set", team,
                       {"groups": pack(settings.compiled()), "order": settings.order})
    job = (yield Job("rebucket", (team,))) if res["rebucket"] else None
    return {"version": res["version"], "rebucket": res["rebucket"], "job": job}


def groups(team: str) -> Op[PrioritySettings]:
    keys.check_team(team)
    raw = yield from read("hmget", keys.cfg(team), "groups", "order")
    if raw[0] is None:
        raise NotFoundError(f"unknown team {team}", field="team")
    return PrioritySettings(
        order=_s(raw[1]),
        groups=[{"name": g["n"], "match": decompile_match(g["m"] or {}),
                 **({"requires_skills": g["rs"]} if g.get("rs") else {}),
                 **({"target_wait": g["tw"]} if g.get("tw") else {})}
                for g in unpack(raw[0])],
    )


def rebucket_progress(team: str) -> Op[dict[str, Any]]:
    """How far the re-bucketing after the last settings change has gone (a batch of 0 moves
    nothing and counts what is left: exactly while each queue of the older settings has at
    most 16 buckets, about 2,000 conversations, past that its buckets times 64, so that no
    batch reads them all; 0 only once none is left: scripts/lua/includes/queue.lua)."""
    settings = yield from team_settings(team)
    res = yield Script("rebucket_batch", team, {"n": 0})
    left = int(res["left"])
    return {"version": settings["version"], "done": left == 0, "conversations_left": left}


def set_triage(team: str, rules: object) -> Op[list[TriageRule]]:
    parsed = TriageRule.parse_list(rules)
    yield Script("triage_set", team, {"rules": pack([r.compiled() for r in parsed])})
    return parsed


def triage(team: str) -> Op[list[TriageRule]]:
    keys.check_team(team)
    raw = yield from read("hget", keys.cfg(team), "triage")
    if raw is None:
        raise NotFoundError(f"unknown team {team}", field="team")
    return [TriageRule(name=r["n"], match=decompile_match(r["m"] or {}), advisor=r.get("a"),
                       skill=r.get("s"))
            for r in unpack(raw)]


# --- upstream ---------------------------------------------------------------------------------
def _ingest_args(msgs: list[Any]) -> dict[str, Any]:
    """An ingest call's arguments: the messages and the bounds it holds them to (read at each
    call: a deployment's or a test's change of a default applies at once)."""
    return {"msgs": msgs, "maxch": defaults.MAX_CHANNELS, "maxconv": defaults.MAX_CONVERSATION,
            "maxmsg": defaults.MAX_MESSAGES, "maxbytes": defaults.MAX_BODY_BYTES_STORED,
            "retag_n": defaults.BATCH_SIZE}


def ingest_one(team: str, message: object) -> Op[str]:
    """Store one message: 'queued', 'assigned:<advisor>' or 'duplicate'."""
    parsed = IncomingMessage.parse(message)
    result: list[Any] = yield Script("ingest", team, _ingest_args(parsed.to_script()))
    if len(result) > 1:
        yield from _retag_rest(team, result.pop())
    return str(result[0])


def ingest_many(team: str, messages: Iterable[object]) -> Op[list[str]]:
    """Store a batch atomically: all messages are validated first; a conflict stores none.

    Each result is 'queued', 'assigned:<advisor>' or 'duplicate'.
    """
    parsed = []
    for i, m in enumerate(messages):
        try:
            parsed.append(IncomingMessage.parse(m))
        except ValidationError as exc:
            raise type(exc)(  # keeps TooLargeError a 413
                f"message {i}: {exc.message}", field=f"messages[{i}].{exc.field}"
            ) from exc
    if not parsed:
        return []
    result: list[Any] = yield Script("ingest", team,
                                     _ingest_args([v for p in parsed for v in p.to_script()]))
    if len(result) > len(parsed):
        yield from _retag_rest(team, result.pop())
    return result


def _retag_rest(team: str, rest: list[Any]) -> Op[int]:
    """Go on re-placing the waiting conversations of customers whose new tags came with a
    message: ingest did a page each, these calls the rest, a page a call."""
    moved = 0
    for cust, cursor in rest:
        moved += yield from _retag(team, _s(cust), {"cursor": _s(cursor)})
    return moved


def _retag(team: str, customer: str, first: dict[str, Any]) -> Op[int]:
    """customer_tags from ``first`` (the tags, or a cursor to go on from) until the last page:
    each call re-places about BATCH_SIZE conversations, however many the customer has."""
    moved, args = 0, {"cust": customer, "n": defaults.BATCH_SIZE, **first}
    while True:
        res = yield Script("customer_tags", team, args)
        moved += int(res["moved"])
        cursor = _s(res.get("cursor", "0"))
        if cursor == "0":
            return moved
        args = {"cust": customer, "n": defaults.BATCH_SIZE, "cursor": cursor}


def set_customer_tags(team: str, customer: str, tags: list[str]) -> Op[int]:
    """A customer's tags changed: their waiting conversations move to the group they match."""
    keys.check_id(customer, "customer")
    clean = IncomingMessage.parse(
        {"id": "x", "conversation": "x", "customer": customer, "channel": "x", "body": "",
         "customer_tags": tags}
    ).customer_tags or []
    moved: int = yield from _retag(team, customer, {"tags": pack(sorted(clean))})
    return moved


# --- advisors ---------------------------------------------------------------------------------
def login(team: str, advisor: str) -> Op[int]:
    keys.check_id(advisor, "advisor")
    res = yield Script("login", team, {"adv": advisor})
    return int(res["epoch"])


def logout(team: str, advisor: str, why: str | None = None) -> Op[str | None]:
    """The advisor is offline at once; their messages are requeued by a job (id returned)."""
    keys.check_id(advisor, "advisor")
    res = yield Script("logout", team, {"adv": advisor, "why": why})
    if res["held"]:
        job: str | None = yield Job("requeue_advisor", (team, advisor, int(res["epoch"])))
        return job
    return None


def heartbeat(team: str, advisor: str) -> Op[None]:
    """Presence for the reaper from an advisor's client; never logs anyone in."""
    keys.check_id(advisor, "advisor")
    yield Script("login", team, {"adv": advisor, "touch_only": True})


def next_message(team: str, advisor: str, request_id: str | None = None) -> Op[Push]:
    """*Process a new message*."""
    keys.check_id(advisor, "advisor")
    if request_id is not None:
        keys.check_id(request_id, "request_id")
    res = yield Script("next", team, {"adv": advisor, "req": request_id,
                                      "esc": defaults.ESCALATE_ON_PRESS})
    return Push(res["status"], _messages(res["messages"]))


def reply_next(team: str, advisor: str, message: str,
               request_id: str | None = None) -> Op[ReplyAndPush]:
    """*Reply, then process a new message*, in one call: the advisor's whole cycle. Nothing is
    done when either part is refused (the message is not theirs, they are not logged in or not
    in a push role)."""
    keys.check_id(advisor, "advisor")
    keys.check_id(message, "message")
    if request_id is not None:
        keys.check_id(request_id, "request_id")
    res = yield Script("reply_next", team, {"adv": advisor, "msg": message, "req": request_id,
                                            "esc": defaults.ESCALATE_ON_PRESS})
    return ReplyAndPush(str(res["replied"]), res["status"], _messages(res["messages"]))


def act(script: str, team: str, advisor: str, message: str, **opts: Any) -> Op[str]:
    """reply / archive / help / hold on one of the advisor's messages."""
    keys.check_id(advisor, "advisor")
    keys.check_id(message, "message")
    res = yield Script(script, team, {"adv": advisor, "msg": message, **opts})
    return str(res["status"])


def take(team: str, advisor: str, message: str) -> Op[list[Message]]:
    """A classic-inbox advisor (push mode off) picks a waiting message."""
    keys.check_id(advisor, "advisor")
    keys.check_id(message, "message")
    res = yield Script("take", team, {"adv": advisor, "msg": message})
    return _messages(res["messages"])


def start_break(team: str, advisor: str) -> Op[BreakInfo]:
    """Start a break; it ends at the end of the current working-hours range by itself."""
    keys.check_id(advisor, "advisor")
    spec = yield from hours(team)
    until = None
    if spec is not None:
        now = yield Now()
        end = spec.current_range_end(datetime.fromtimestamp(now / 1000, UTC))
        until = int(end.timestamp() * 1000) if end else None
    res = yield Script("break_start", team, {"adv": advisor, "until": until})
    job = None
    if res["status"] == "ok" and until is not None:
        job = yield Job("end_break_at", (team, advisor, int(res["epoch"]), until))
    return BreakInfo(res["status"], int(res["epoch"]), int(res["since"]), res.get("until"), job)


def end_break(
    team: str,
    advisor: str,
    *,
    epoch: int | None = None,
    at_ms: int | None = None,
    why: str | None = None,
) -> Op[int]:
    """End a break; its length in ms (0: no break, or that break already ended)."""
    keys.check_id(advisor, "advisor")
    res = yield Script("break_end", team, {"adv": advisor, "epoch": epoch, "at": at_ms,
                                             "why": why})
    return int(res["ms"])


@dataclass(frozen=True)
class Page:
    """One page of a long list; ``next_cursor`` reads the next one (None: this was the last).
    Pages are by position: a message that leaves the list between two reads moves the later
    ones up by one, so a client reading page after page can miss it (it left anyway)."""

    items: list[Message]
    next_cursor: str | None


def _cursor(cursor: str | None, limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= PAGE_MAX:
        raise ValidationError(f"limit must be from 1 to {PAGE_MAX}", field="limit")
    if cursor is None or cursor == "":
        return 0
    if not isinstance(cursor, str) or not cursor.isdigit() or len(cursor) > 9:
        raise ValidationError("cursor must be a cursor this API returned", field="cursor")
    return int(cursor)


def _page(team: str, opts: dict[str, Any], cursor: str | None, limit: int) -> Op[Page]:
    start = _cursor(cursor, limit)
    res = yield Script("view", team, {**opts, "from": start, "n": limit})
    items = _messages(res["items"])
    return Page(items, str(start + limit) if res["more"] else None)


def current_page(team: str, advisor: str, cursor: str | None = None,
                 limit: int = PAGE_MAX) -> Op[Page]:
    """*Your current messages*, a page at a time (oldest assignment first)."""
    keys.check_id(advisor, "advisor")
    return (yield from _page(team, {"adv": advisor}, cursor, limit))


def place_page(team: str, where: str, cursor: str | None = None,
               limit: int = PAGE_MAX) -> Op[Page]:
    """The help requests or the quarantine (``where``), a page at a time."""
    return (yield from _page(team, {"place": where}, cursor, limit))


def _all(pages: Callable[[str | None], Op[Page]]) -> Op[list[Message]]:
    out: list[Message] = []
    cursor: str | None = None
    while True:
        page = yield from pages(cursor)
        out += page.items
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def current(team: str, advisor: str) -> Op[list[Message]]:
    """*Your current messages*: pushed, triaged, assigned by hand, on hold (every page)."""
    return (yield from _all(lambda c: current_page(team, advisor, c)))


def messages(team: str, ids: list[str]) -> Op[list[Message]]:
    for i in ids:
        keys.check_id(i, "message")
    return _messages((yield Script("view", team, {"ids": ids})))


def message(team: str, message_id: str) -> Op[Message]:
    found = yield from messages(team, [message_id])
    if not found:
        raise NotFoundError(f"unknown message {message_id}", field="message")
    return found[0]


# --- supervisors ------------------------------------------------------------------------------
def assign(team: str, advisor: str, message_id: str, by: str | None = None) -> Op[list[Message]]:
    keys.check_id(advisor, "advisor")
    keys.check_id(message_id, "message")
    res = yield Script("assign", team, {"adv": advisor, "msg": message_id, "by": by})
    return _messages(res["messages"])


def send_to_stock(team: str, message_id: str) -> Op[str]:
    keys.check_id(message_id, "message")
    res = yield Script("send_to_stock", team, {"msg": message_id})
    return str(res["status"])


def place(team: str, where: str) -> Op[list[Message]]:
    """The help requests or the quarantine (every page)."""
    return (yield from _all(lambda c: place_page(team, where, c)))


def preview(team: str, n: int = 10, advisor: str | None = None) -> Op[list[dict[str, Any]]]:
    """The first ``n`` conversations of the ordered list: what the next presses get (each
    with its waiting count and its first 20 messages, 200 messages in all). With ``advisor``:
    what that advisor's next presses get (the groups whose skills they have)."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
        raise ValidationError("n must be from 1 to 1000", field="n")
    opts: dict[str, Any] = {"n": n, "esc": defaults.ESCALATE_ON_PRESS}
    if advisor is not None:
        opts["adv"] = keys.check_id(advisor, "advisor")
    rows = yield Script("preview", team, opts)
    return [
        {"position": i + 1, "conversation": r["conversation"], "group": r["group"],
         "why": r["why"], "waiting": int(r["waiting"]), "messages": _messages(r["messages"])}
        for i, r in enumerate(rows)
    ]


def group_stock(team: str) -> Op[list[dict[str, Any]]]:
    """Per priority group of the current settings (then *everything else*): the waiting
    conversations, the skills it requires, how many logged-in advisors (on a break or not)
    have them, and ``unserved`` when some wait and none of those may take them."""
    keys.check_team(team)
    found = yield from groups_stock_of([team])
    if team not in found:
        raise NotFoundError(f"unknown team {team}", field="team")
    return found[team]


def queue_sizes(qks: list[str], also: list[Cmd] | None = None) -> Op[tuple[list[int], list[Any]]]:
    """How many conversations wait in each queue (scripts/lua/includes/queue.lua: a ZCARD per
    bucket its index lists, and one of the queue's own key, the bucket an earlier version kept
    whole), with ``also`` in the first of the two round trips; returns the sizes and what
    ``also`` answered. A queue of more than ``defaults.COUNTED_BUCKETS`` buckets is counted
    from its first ones, times its buckets (what one team's huge stock costs every scrape of
    /metrics stays bounded)."""
    most = defaults.COUNTED_BUCKETS
    first = yield Commands([c for qk in qks for c in (
        Cmd("zrange", (keys.queue_index(qk), 0, most - 1)), Cmd("zcard", (qk,)),
        Cmd("zcard", (keys.queue_index(qk),)))] + (also or []))
    listed = [[_s(b) for b in first[3 * i] if _s(b) != ""] for i in range(len(qks))]
    cmds = [Cmd("zcard", (keys.queue_bucket(qk, b),))
            for qk, bs in zip(qks, listed, strict=True) for b in bs]
    counts = iter((yield Commands(cmds)) if cmds else [])
    sizes = []
    for i, bs in enumerate(listed):
        counted = sum(int(next(counts)) for _ in bs)
        every = int(first[3 * i + 2]) - (len(first[3 * i]) - len(bs))  # its buckets but ''
        if bs and every > len(bs):  # the rest, as full as those counted
            counted = round(counted * every / len(bs))
        sizes.append(int(first[3 * i + 1]) + counted)
    return sizes, first[3 * len(qks):]


def queue_heads(qks: list[str], last: bool) -> Op[list[Any]]:
    """The first conversation of each queue (``last``: its last), or None: the first buckets
    its index lists (an emptied one stays listed until a press passes it), else the queue's
    own key (an earlier version's whole set); two round trips."""
    first = yield Commands([c for qk in qks for c in (
        Cmd("zrange", (keys.queue_index(qk), -8 if last else 0, -1 if last else 7)),
        Cmd("zrange", (qk, -1 if last else 0, -1 if last else 0)))])
    listed = [[_s(b) for b in (reversed(first[2 * i]) if last else first[2 * i])]
              for i in range(len(qks))]
    cmds = [Cmd("zrange", (keys.queue_bucket(qk, b), -1 if last else 0, -1 if last else 0))
            for qk, bs in zip(qks, listed, strict=True) for b in bs]
    rows = iter((yield Commands(cmds)) if cmds else [])
    heads = []
    for i, bs in enumerate(listed):
        found = [r[0] for r in (next(rows) for _ in bs) if r]
        own = first[2 * i + 1]
        heads.append(found[0] if found else (own[0] if own and not bs else None))
    return heads


def groups_stock_of(teams: list[str]) -> Op[dict[str, list[dict[str, Any]]]]:
    """``group_stock`` of several teams in four round trips whatever their number (what
    /metrics exports at scrape time; the second only for teams that ever restricted a
    conversation to a skill); unknown teams are left out. Per team: the buckets of each group
    (and restricted queue), a ZCARD each, and an HMGET per logged-in advisor."""
    first = yield Commands([c for t in teams for c in (
        Cmd("hmget", (keys.cfg(t), "ver", "groups", "rsq")),
        Cmd("zrange", (keys.online(t), 0, -1)))])
    vers = {t: int(first[2 * i][0]) for i, t in enumerate(teams) if first[2 * i][0] is not None}
    marked = [t for i, t in enumerate(teams) if t in vers and first[2 * i][2]]
    restricted = (yield Commands([Cmd("smembers", (keys.restricted_skills(t, vers[t]),))
                                  for t in marked])) if marked else []
    rskills: dict[str, list[str]] = {t: [] for t in vers}
    rskills.update({t: sorted(_s(x) for x in r) for t, r in zip(marked, restricted, strict=True)})
    plan = []
    qks: list[str] = []
    cmds: list[Cmd] = []
    for i, t in enumerate(teams):
        cfg, online = first[2 * i], first[2 * i + 1]
        if t not in vers:
            continue
        groups = [(_s(g["n"]), [_s(x) for x in g.get("rs") or []]) for g in unpack(cfg[1])]
        groups.append(("everything else", []))
        names = [_s(a) for a in online]
        plan.append((t, groups, len(qks), len(cmds), len(names)))
        for g in range(len(groups)):
            qks.append(keys.queue(t, vers[t], g))
            qks += [keys.restricted_queue(t, vers[t], g, sk) for sk in rskills[t]]
        cmds += [Cmd("hmget", (keys.advisor(t, a), "st", "sk")) for a in names]
    sizes, rows = yield from queue_sizes(qks, cmds)
    out: dict[str, list[dict[str, Any]]] = {}
    for t, groups, at, adv_at, n_adv in plan:
        width = 1 + len(rskills[t])
        counts = sizes[at:at + len(groups) * width]
        advs = rows[adv_at:adv_at + n_adv]
        has = [set(_skills(v[1])) for v in advs if v[0] is not None and _s(v[0]) != "off"]
        out[t] = []
        for gi, (name, needs) in enumerate(groups):
            main = int(counts[gi * width])
            by_skill = {sk: int(n) for sk, n in zip(
                rskills[t], counts[gi * width + 1:(gi + 1) * width], strict=True) if int(n)}
            may = sum(1 for h in has if set(needs) <= h)
            unserved = (main > 0 and may == 0) or any(
                not any(set(needs) | {sk} <= h for h in has) for sk in by_skill)
            out[t].append({"group": name, "requires_skills": needs,
                           "waiting": main + sum(by_skill.values()),
                           "restricted": by_skill, "advisors_who_may_take": may,
                           "unserved": unserved})
    return out


# --- statistics (O(1) reads of what the scripts keep) -----------------------------------------
def team_stock(team: str) -> Op[Stock]:
    """The team's waiting messages, total and per channel, with the oldest one's age."""
    yield from require_team(team)
    found = yield from read("smembers", keys.channels(team))
    chans = sorted(_s(c) for c in found)
    cmds = []
    for c in chans:  # counted per second (channels.lua), and an earlier version's index
        cmds += [Cmd("hget", (keys.channel_counts(team, c), "n")),
                 Cmd("zrange", (keys.channel_seconds(team, c), 0, 0), {"withscores": True}),
                 Cmd("zcard", (keys.channel_waiting(team, c),)),
                 Cmd("zrange", (keys.channel_waiting(team, c), 0, 0), {"withscores": True})]
    rows = yield Commands(cmds)
    now = yield Now()
    out = []
    for i, c in enumerate(chans):
        n, first, n_old, first_old = rows[4 * i: 4 * i + 4]
        oldest = min((r[0][1] for r in (first, first_old) if r), default=None)
        age = round(max(0, now - oldest) / 1000, 3) if oldest is not None else None
        out.append(ChannelStock(c, int(n or 0) + int(n_old), age))
    return Stock(sum(c.waiting for c in out), out)


def waiting_counts(limit: int = 1000) -> Op[dict[str, dict[str, int]]]:
    """Waiting messages per channel of the first ``limit`` teams (by name), in two round trips
    whatever the number of teams: what /metrics exports at scrape time."""
    names = sorted(_s(t) for t in (yield from read("smembers", keys.TEAMS)))[:limit]
    chans = yield Commands([Cmd("smembers", (keys.channels(t),)) for t in names])
    pairs = [(t, _s(c)) for t, cs in zip(names, chans, strict=True) for c in sorted(cs)]
    counts = yield Commands([cmd for t, c in pairs for cmd in (
        Cmd("hget", (keys.channel_counts(t, c), "n")),
        Cmd("zcard", (keys.channel_waiting(t, c),)))])  # and an earlier version's index
    out: dict[str, dict[str, int]] = {t: {} for t in names}
    for i, (t, c) in enumerate(pairs):
        out[t][c] = int(counts[2 * i] or 0) + int(counts[2 * i + 1])
    return out


def advisor_stats(team: str, advisor: str, day: date | None = None,
                  stock: Stock | None = None) -> Op[AdvisorStats]:
    """Personal statistics for a UTC day (today by default); a running break counts.
    ``stock``: the team's stock when the caller has just read it (no second read)."""
    keys.check_id(advisor, "advisor")
    now = yield Now()
    dn = day_number(day) if day else now // DAY_MS
    figures, adv, assigned = yield Commands([
        Cmd("hmget", (keys.day(team, dn), f"r:{advisor}", f"x:{advisor}", f"b:{advisor}")),
        Cmd("hmget", (keys.advisor(team, advisor), "st", "bs")),
        Cmd("zcard", (keys.current(team, advisor),)),
    ])
    if adv[0] is None:
        yield from require_team(team)
        raise NotFoundError(f"unknown advisor {advisor} in team {team}", field="advisor")
    brk = int(figures[2] or 0)
    since = int(adv[1]) if _s(adv[0]) == "brk" and adv[1] else None
    if since is not None:
        brk += _overlap(since, now, dn)
    if stock is None:
        stock = yield from team_stock(team)
    return AdvisorStats(
        advisor=advisor,
        day=_iso(dn),
        state=STATES[_s(adv[0])],
        responses=int(figures[0] or 0),
        archives=int(figures[1] or 0),
        break_seconds=round(brk / 1000, 3),
        assigned=int(assigned),
        stock=stock.total,
        break_started_at=since,
    )


RECENT_MINUTES = 15


def team_live(team: str) -> Op[dict[str, Any]]:
    """The team now, for supervisors: per advisor their state and since when (on a break:
    since it started; handling: since the oldest conversation in hand reached them; online and
    holding nothing: since they logged in), what they hold and the age of the oldest of it,
    today's responses and archives, their skills; per group the waiting conversations, the age
    of the oldest of them (the head of the group under the team's order), arrivals and pushes
    in the last 15 minutes, and who may take them. A handful of round trips whatever the
    team's size (each pipelines a command or two per advisor or group)."""
    keys.check_team(team)
    now = yield Now()
    found = yield from groups_stock_of([team])
    if team not in found:
        raise NotFoundError(f"unknown team {team}", field="team")
    members, cfg = yield Commands([Cmd("smembers", (keys.advisors(team),)),
                                   Cmd("hmget", (keys.cfg(team), "ver", "order", "ng"))])
    names = sorted(_s(a) for a in members)
    dk = keys.day(team, now // DAY_MS)
    minute = now // 60_000
    ver, order, ng = int(cfg[0]), _s(cfg[1]), int(cfg[2] or 0)
    newest = order.startswith("newest")
    cmds = []
    for a in names:
        cmds += [Cmd("hmget", (keys.advisor(team, a), "name", "st", "li", "bs", "sk")),
                 Cmd("zrange", (keys.current(team, a), 0, 0), {"withscores": True}),
                 Cmd("zcard", (keys.current(team, a),)),
                 Cmd("hmget", (dk, f"r:{a}", f"x:{a}"))]
    cmds += [Cmd("hgetall", (keys.recent_minute(team, m),))
             for m in range(minute - RECENT_MINUTES + 1, minute + 1)]
    rows = yield Commands(cmds)
    head_convs = yield from queue_heads([keys.queue(team, ver, g) for g in range(ng + 1)], newest)
    per_adv, recent = rows[:4 * len(names)], rows[4 * len(names):]
    oldest_held = [per_adv[4 * i + 1][0][0] if per_adv[4 * i + 1] else None
                   for i in range(len(names))]
    more = yield Commands(
        # a message's arrival is the millisecond of its `ord` unless it keeps a `ts`
        [Cmd("hmget", (keys.message(team, _s(m)), "ts", "ord")) for m in oldest_held if m] +
        # a conversation opened into the stock keeps no `fw` while it equals its start `so`
        [Cmd("hmget", (keys.conversation(team, _s(c)), "fw", "so")) for c in head_convs if c])
    held_ts = iter(more[:sum(1 for m in oldest_held if m)])
    head_fw = iter(more[sum(1 for m in oldest_held if m):])
    advisors = []
    for i, a in enumerate(names):
        v, top, held, figs = per_adv[4 * i:4 * i + 4]
        st = _s(v[1])
        first = top[0] if top else None
        ts_ord = next(held_ts) if first else None
        ts = None
        if ts_ord:
            ts = ts_ord[0] or (int(ts_ord[1]) // 1000 if ts_ord[1] else None)
        if st == "brk":
            state, since = "on break", int(v[3]) if v[3] else None
        elif st == "off":
            state, since = "offline", None
        elif int(held):
            state, since = f"handling {int(held)}", int(first[1]) if first else None
        else:
            state, since = "available", int(v[2]) if v[2] else None
        advisors.append({
            "advisor": a, "name": _s(v[0]), "state": state, "since": since,
            "seconds_in_state": round((now - since) / 1000, 1) if since else None,
            "holding": int(held),
            "oldest_held_s": round((now - int(ts)) / 1000, 1) if ts else None,
            "responses_today": int(figs[0] or 0), "archives_today": int(figs[1] or 0),
            "skills": _skills(v[4]),
        })
    last: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for h in recent:
        for k, n in h.items():
            kind, _, group = _s(k).partition("|")
            last[group][0 if kind == "a" else 1] += int(n)
    groups_out = []
    for gi, g in enumerate(found[team]):
        fw_so = next(head_fw) if gi < len(head_convs) and head_convs[gi] else None
        fw = (fw_so[0] or fw_so[1]) if fw_so else None
        groups_out.append({**g, "oldest_wait_s": round((now - int(float(fw)) / 1000) / 1000, 1)
                           if fw else None,
                           "arrivals_15min": last[g["group"]][0],
                           "pushes_15min": last[g["group"]][1]})
    return {"team": team, "at": now, "advisors": advisors, "groups": groups_out}


def daily_report(team: str, day: date, tz: str | None = None) -> Op[dict[str, Any]]:
    """The day's report, in UTC or the time zone ``tz``: per advisor pushed, responses,
    archives, help requests, reassigned away, break time, handle time p50/p90; per group
    arrivals, pushes, waiting time p50/p90/max and the share within its target_wait; per hour
    pushes and waiting time. ``tz="team"``: the time zone of the team's working hours (UTC
    when it has none). One round trip for the day's hours (reports.py)."""
    if tz == "team":
        hours_spec = (yield from team_settings(team))["hours"]
        tz = (hours_spec or {}).get("timezone") or None
    first, end, zone = reports.day_hours(day, tz)
    settings = yield from groups(team)
    now = yield Now()
    hours = list(range(first, end))
    rows = yield Commands([c for h in hours for c in (
        Cmd("hgetall", (keys.report_hour(team, h),)),
        Cmd("zrange", (keys.report_max(team, h), 0, -1), {"withscores": True}))])
    running = {}
    lo, hi = first * reports.HOUR_MS, end * reports.HOUR_MS
    for a in (yield from advisor_rows(team)):
        if a["st"] == "brk" and a["bs"]:
            ended = min(now, a["bu"]) if a["bu"] else now  # a break stops at its set end
            overlap = min(ended, hi) - max(a["bs"], lo)
            if overlap > 0:
                running[a["id"]] = overlap
    report = reports.assemble(rows[0::2], rows[1::2], hours, zone,
                              {g["name"]: g["target_wait"] for g in settings.groups
                               if g.get("target_wait")}, running)
    return {"team": team, "day": day.isoformat(), "tz": tz or "UTC", **report}


def breaks(team: str, start: date, days: int = 7) -> Op[dict[str, Any]]:
    """Break seconds per day per advisor and for the team (breaks over midnight are split)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise ValidationError("days must be from 1 to 366", field="days")
    if (date.max - start).days < days - 1:
        raise ValidationError(f"start {start.isoformat()} plus {days} days is past the year 9999",
                              field="start")
    yield from require_team(team)
    now = yield Now()
    first = day_number(start)
    rows = yield Commands([Cmd("hgetall", (keys.day(team, d),))
                           for d in range(first, first + days)])
    running = {a["id"]: a["bs"] for a in (yield from advisor_rows(team)) if a["st"] == "brk"}
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
            if extra or dn == now // DAY_MS:  # a break started this very millisecond counts
                per[adv] = per.get(adv, 0) + extra
        out["days"].append({
            "day": _iso(dn),
            "team_seconds": round(sum(per.values()), 3),
            "advisors": {a: round(s, 3) for a, s in sorted(per.items())},
        })
    return out


def events(team: str, since: str = "-", count: int = 100,
           newest_first: bool = False) -> Op[list[dict[str, Any]]]:
    """The audit trail: events after ``since`` (an event id), oldest first; or, with
    ``newest_first``, the latest ``count`` events, newest first."""
    yield from require_team(team)
    if newest_first:
        rows = yield from read("xrevrange", keys.events(team), "+", "-", count=count)
    else:
        start = "(" + since if since not in ("-", "0") else "-"
        rows = yield from read("xrange", keys.events(team), start, "+", count=count)
    return [{"id": _s(eid), **{_s(k): _s(v) for k, v in f.items()}} for eid, f in rows]


def check(team: str) -> Op[CheckReport]:
    """Verify the team's invariants (see scripts/lua/check.lua)."""
    res = yield Script("check", team, {})
    return CheckReport(
        ok=bool(res["ok"]),
        problems=list(res["problems"] or []),
        problem_count=int(res["nproblems"]),
        counts={k: int(v) for k, v in res["counts"].items()},
    )


def repair(team: str, batch: int) -> Op[int]:
    """Put the team back in order after drift (scripts/lua/repair.lua), then run the
    reconciler for what it handles in batches (messages stranded with logged-out advisors).
    Returns the number of fixes."""
    res = yield Script("repair", team, {})
    done = yield from tick(team, batch)
    return int(res["fixed"]) + done["requeued"]


def advisor_rows(team: str) -> Op[list[dict[str, Any]]]:
    """The raw state of every advisor: what the reconciler and analytics work from."""
    found = yield from read("smembers", keys.advisors(team))
    names = [_s(a) for a in found]
    cmds = []
    for a in names:
        cmds += [Cmd("hmget", (keys.advisor(team, a), "st", "ep", "bep", "bu", "li", "bs")),
                 Cmd("zcard", (keys.current(team, a),))]
    rows = yield Commands(cmds)
    out = []
    for i, a in enumerate(names):
        v, held = rows[2 * i], rows[2 * i + 1]
        out.append({"id": a, "st": _s(v[0]), "ep": int(v[1] or 0), "bep": int(v[2] or 0),
                    "bu": int(v[3]) if v[3] else 0, "li": int(v[4]) if v[4] else 0,
                    "bs": int(v[5]) if v[5] else 0, "held": int(held)})
    return out


# --- batched moves and the reconciler (run by jobs) -------------------------------------------
Progress = Callable[[int, int], None] | None


def requeue_advisor(team: str, advisor: str, epoch: int, batch: int,
                    progress: Progress = None) -> Op[int]:
    """Hand a logged-out advisor's messages back, batch by batch (fenced by ``epoch``)."""
    moved = 0
    while True:
        res = yield Script("requeue_batch", team, {"adv": advisor, "epoch": epoch, "n": batch})
        moved += int(res["moved"])
        if progress:
            progress(moved, int(res["left"]))
        if res["fenced"] or not res["left"]:
            return moved


def requeue_now(team: str, advisor: str, batch: int, progress: Progress = None) -> Op[int]:
    """Hand a logged-out advisor's messages back now, in batches: what their logout's job
    does, for when that job was lost. Refused while they are logged in (their messages are
    theirs) and for an unknown advisor, naming the advisor."""
    keys.check_id(advisor, "advisor")
    row = next((r for r in (yield from advisor_rows(team)) if r["id"] == advisor), None)
    if row is None:
        raise NotFoundError(f"unknown advisor {advisor} in team {team}", field="advisor")
    if row["st"] != "off":
        raise ConflictError(f"advisor {advisor} is logged in; log them out first",
                            field="advisor")
    return (yield from requeue_advisor(team, advisor, row["ep"], batch, progress))


def rebucket(team: str, batch: int, progress: Progress = None) -> Op[int]:
    """Move the waiting stock of older settings into the current groups, batch by batch."""
    moved = 0
    while True:
        res = yield Script("rebucket_batch", team, {"n": batch})
        moved += int(res["moved"])
        if progress:
            progress(moved, int(res["left"]))
        if not res["left"]:
            return moved


def _drain(script: str, team: str, opts: dict[str, Any], count: str, batch: int) -> Op[int]:
    done = 0
    while True:
        n = int((yield Script(script, team, {**opts, "n": batch}))[count])
        done += n
        if n < batch:
            return done


def escalate(team: str, batch: int, progress: Progress = None) -> Op[int]:
    """Re-place every conversation whose wait crossed a ``waiting_longer_than`` threshold,
    ``batch`` per atomic call (presses and previews in between see a whole state); returns
    how many. What the worker's escalator runs every second; a no-op for a team without
    such a group (one call)."""
    done = 0
    while True:
        res = yield Script("escalate", team, {"n": batch})
        done += int(res["moved"])
        if progress is not None:
            progress(done, int(res["left"]))
        if int(res["left"]) == 0 or int(res["moved"]) == 0:
            return done


def escalating_teams(limit: int = 1000) -> Op[list[str]]:
    """The teams (the first ``limit`` by name) with a group that escalates by waiting time,
    in two round trips whatever their number: what the worker's escalator sweeps."""
    names = sorted(_s(t) for t in (yield from read("smembers", keys.TEAMS)))[:limit]
    marks = yield Commands([Cmd("hget", (keys.cfg(t), "tg")) for t in names])
    return [t for t, tg in zip(names, marks, strict=True) if tg and tg != b"\x90"]


def tick(team: str, batch: int) -> Op[dict[str, int]]:
    """The reconciler: what no RQ job may be trusted alone to do. Idempotent.

    Logs out silent advisors, requeues messages stranded with logged-out advisors, ends
    breaks past their working-hours end, returns untouched pushes, logs advisors out at
    the end of working hours (team option), finishes re-bucketing, escalates what waited past
    a threshold, purges old done messages.
    """
    now = yield Now()
    settings = yield from team_settings(team)
    done = {"reaped": 0, "requeued": 0, "breaks_ended": 0, "untouched": 0,
            "logged_out_end_of_hours": 0, "rebucketed": 0, "escalated": 0, "purged": 0}
    for adv in (yield from advisor_rows(team)):
        if adv["st"] == "brk" and adv["bu"] and adv["bu"] <= now:
            ended = yield from end_break(team, adv["id"], epoch=adv["bep"], at_ms=adv["bu"],
                                         why="end of working hours")
            done["breaks_ended"] += 1 if ended else 0
    reaped = yield Script("reap", team, {"cutoff": now - settings["presence_timeout_s"] * 1000,
                                         "n": 1000, "why": "not seen for too long"})
    done["reaped"] = len(reaped)
    if settings["logout_at_end_of_hours"] and settings["hours"]:
        spec = WorkingHours.parse(settings["hours"])
        moment = datetime.fromtimestamp(now / 1000, UTC)
        last_end = spec.last_end_before(moment)
        if spec.current_range_end(moment) is None and last_end is not None:
            end_ms = int(last_end.timestamp() * 1000)
            for adv in (yield from advisor_rows(team)):
                if adv["st"] != "off" and adv["li"] < end_ms:
                    yield Script("logout", team, {"adv": adv["id"], "why": "end of working hours"})
                    done["logged_out_end_of_hours"] += 1
    for adv in (yield from advisor_rows(team)):
        if adv["st"] == "off" and adv["held"]:
            done["requeued"] += yield from requeue_advisor(team, adv["id"], adv["ep"], batch)
    if settings["untouched_after_s"]:
        cutoff = now - settings["untouched_after_s"] * 1000
        done["untouched"] = yield from _drain("untouched", team, {"cutoff": cutoff}, "moved",
                                              batch)
    if settings["rebucketing"]:
        done["rebucketed"] = yield from rebucket(team, batch)
    done["escalated"] = yield from escalate(team, batch)
    done["purged"] = yield from _drain(
        "purge_done", team, {"cutoff": now - settings["retention_s"] * 1000}, "purged", batch
    )
    return done
