"""The dispatcher API: the one way every client (CLI, HTTP service, workers) reaches Redis.

Each operation is written once in ``dispatcher.ops`` as a generator of I/O requests; this
module executes them: ``Dispatcher`` on a blocking redis-py client, ``AsyncDispatcher`` on
``redis.asyncio`` for the HTTP service. Every state change is one Lua script call (one round
trip, atomic); reads that only show state are pipelined plain reads. Long moves (logout
requeue, re-bucketing) are handed to a ``Jobs`` runner: RQ in production
(``workers.scheduling.RQJobs``), inline by default, so a library user gets a correct system
without a worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio as aredis

from dispatcher import defaults, keys, ops
from dispatcher.connection import ScriptLane, lane_for
from dispatcher.errors import (
    OutOfMemoryError,
    PushinboxError,
    UnavailableError,
    ValidationError,
    error_for_code,
)
from dispatcher.hours import WorkingHours
from dispatcher.log import get_logger
from dispatcher.model import (
    AdvisorStats,
    CheckReport,
    Message,
    Push,
    ReplyAndPush,
    Stock,
    pack,
    unpack,
)
from dispatcher.ops import BreakInfo, Op
from dispatcher.rules import PrioritySettings, TriageRule
from dispatcher.scripts import ScriptSet, library
from dispatcher.scripts import names as scripts_names

__all__ = ["AsyncDispatcher", "BreakInfo", "Dispatcher", "InlineJobs", "Jobs", "inline_job",
           "reachable", "replicas_to_wait"]

log = get_logger("pushinbox")
T = TypeVar("T")

_SCRIPT_ERROR = re.compile(r"PI (\w+) (\S+) (.*?)(?: script: \w+, on @user_\w+:\d+\.)?$")
_DOWN = (redis.ConnectionError, redis.TimeoutError)
_FULL = "used memory > 'maxmemory'"
_SyncRedis = redis.Redis
_AsyncRedis = aredis.Redis


class Jobs(Protocol):
    """Where the dispatcher hands long or delayed work."""

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None: ...

    def rebucket(self, team: str) -> str | None: ...

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None: ...


def inline_job(job: ops.Job, batch: int) -> Op[Any] | None:
    """The one inline-jobs policy of both drivers, when no jobs runner is given: a move runs
    at once in the caller, batch by batch; a break's scheduled end is left to ``tick``."""
    if job.kind == "requeue_advisor":
        team, advisor, epoch = job.args
        return ops.requeue_advisor(team, advisor, epoch, batch)
    if job.kind == "rebucket":
        return ops.rebucket(job.args[0], batch)
    return None


class InlineJobs:
    """``inline_job`` as a Jobs runner of a Dispatcher (what ``jobs=None`` does)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    def _run(self, kind: str, *args: Any) -> None:
        op = inline_job(ops.Job(kind, args), self._d.batch_size)
        if op is not None:
            self._d.run(op)

    def requeue_advisor(self, team: str, advisor: str, epoch: int) -> str | None:
        self._run("requeue_advisor", team, advisor, epoch)
        return None

    def rebucket(self, team: str) -> str | None:
        self._run("rebucket", team)
        return None

    def end_break_at(self, team: str, advisor: str, epoch: int, at_ms: int) -> str | None:
        return None


class _Translate:
    """A context that turns Redis being away (connection refused, reset, timed out) into
    UnavailableError (HTTP 503 with Retry-After), Redis at its maxmemory refusing a write
    into OutOfMemoryError (503 too), and with ``scripts`` a script's refusal
    (``PI <code> <field> <message>``) into its PushinboxError. Stateless and class-based:
    entered on every call of both drivers, it costs no generator per call."""

    __slots__ = ("scripts",)

    def __init__(self, scripts: bool) -> None:
        self.scripts = scripts

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        if isinstance(exc, _DOWN):
            raise UnavailableError(f"Redis is unreachable: {exc}") from exc
        if isinstance(exc, redis.ResponseError):
            # refused at a script's start (-OOM), or at a write inside one (its error text)
            if isinstance(exc, redis.exceptions.OutOfMemoryError) or _FULL in str(exc):
                raise OutOfMemoryError(f"Redis is out of memory: {exc}") from exc
            if self.scripts:
                raise _translate(exc) from exc


_REACHABLE = _Translate(scripts=False)
_SCRIPT_CALL = _Translate(scripts=True)


def reachable() -> _Translate:
    """The one place where Redis being away becomes UnavailableError, for every call of both
    drivers: ``with reachable(): ...``."""
    return _REACHABLE


def replicas_to_wait(given: int | None) -> int:
    """One durability policy for both drivers: replicas every script call waits for (Redis
    WAIT); ``given``, else PUSHINBOX_WAIT_REPLICAS, else 0."""
    return int(os.environ.get("PUSHINBOX_WAIT_REPLICAS", "0")) if given is None else given


def _behind(name: str, acknowledged: Any, wanted: int) -> None:
    if int(acknowledged) < wanted:
        log.warning("replicas_behind", script=name, acknowledged=int(acknowledged),
                    wanted=wanted)


class _Driver:
    """What both drivers share: their settings, the scripts on their client, how each kind
    of request an operation yields is prepared (only the awaiting differs), the inline-jobs
    policy, the replication wait and the per-script hook.

    ``clock`` (milliseconds since the epoch) replaces Redis ``TIME`` for tests that control
    time; in production every process uses the Redis clock, so they all agree.
    ``wait_replicas`` > 0 makes every script call wait (Redis ``WAIT``, at most
    ``wait_timeout_ms``) until that many replicas hold its writes, so a failover cannot lose
    an acknowledged operation; it costs a replication round trip per call
    (docs/reliability.md). Default: PUSHINBOX_WAIT_REPLICAS, else 0. ``on_script`` is called
    with each script's name and seconds (the service's latency histogram).
    """

    def __init__(
        self,
        client: Any,
        *,
        jobs: Jobs | None = None,
        clock: Callable[[], int] | None = None,
        batch_size: int = defaults.BATCH_SIZE,
        wait_replicas: int | None = None,
        wait_timeout_ms: int = defaults.WAIT_TIMEOUT_MS,
        on_script: Callable[[str, float], None] | None = None,
        functions: bool | None = None,
    ) -> None:
        self.redis = client
        self.scripts = ScriptSet(client)
        #: Call the scripts as one function library (FCALL, Redis >= 7): the helpers are
        #: defined once per load instead of once per call (a quarter of a cycle's Redis CPU,
        #: docs/performance.md). None: decided at the first call, from the server (Redis >= 7
        #: and not a Cluster: FCALL; else EVALSHA). PUSHINBOX_FUNCTIONS=1 / 0 forces it.
        self.functions: bool | None = _functions_setting(functions)
        if isinstance(client, redis.RedisCluster | aredis.RedisCluster):
            if self.functions:
                raise ValidationError("the scripts as a function library (PUSHINBOX_FUNCTIONS=1) "
                                      "need one server or Sentinel, not a Cluster",
                                      field="PUSHINBOX_FUNCTIONS")
            self.functions = False  # a library would have to be loaded on every master
        self._library, self._prefix = library()
        self._library_name = "pushinbox_" + self._prefix[2:-1]
        self._auto = False  # decided from the server (a refusal then falls back to EVALSHA)
        #: Where long moves go (RQ in production); None runs them inline (``inline_job``).
        self.jobs = jobs
        self.clock = clock
        self.batch_size = batch_size
        self.wait_replicas = replicas_to_wait(wait_replicas)
        self.wait_timeout_ms = wait_timeout_ms
        self.on_script = on_script

    def _pipeline(self, request: ops.Commands) -> Any:
        pipe = self.redis.pipeline(transaction=False)
        for cmd in request.cmds:
            getattr(pipe, cmd.name)(*cmd.args, **cmd.kwargs)
        return pipe

    def _queue_call(self, target: Any, name: str, args: list[Any]) -> Any:
        """The script's call on ``target`` (the client or a pipeline): FCALL of the library's
        function, else redis-py's EVALSHA (which reloads the script on NOSCRIPT)."""
        if self.functions:
            return target.fcall(self._prefix + name, 1, *args)
        return self.scripts[name](keys=args[:1], args=args[1:], client=target)

    def _wait(self, pipe: Any) -> Any:
        """With ``wait_replicas``, a script call and WAIT go on one connection (a pipeline the
        caller queued the script on), so WAIT covers the script's writes."""
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        return pipe

    def _result(self, name: str, raw: Any, started: float) -> Any:
        if self.wait_replicas:
            raw, replicas = raw
            _behind(name, replicas, self.wait_replicas)
        if self.on_script is not None:
            self.on_script(name, time.perf_counter() - started)
        return unpack(raw)

    def _refused(self, exc: redis.ResponseError) -> bool:
        """Whether ``exc`` is the server refusing the library (an ACL without FUNCTION or
        FCALL, a managed service that disables them) while the mode was decided from the
        server: then it is served with EVALSHA from now on. Forced with
        PUSHINBOX_FUNCTIONS=1, a refusal stays an error."""
        refusal = isinstance(exc, redis.exceptions.NoPermissionError)
        if not (self._auto and self.functions and refusal):
            return False
        _library_refused(exc)
        self.functions = False
        return True

    def _now(self, sec: Any, usec: Any) -> int:
        return int(sec) * 1000 + int(usec) // 1000


class Dispatcher(_Driver):
    """Push-mode dispatching on Redis, on a blocking redis-py client (the CLI, the workers,
    library users). ``d.run(op)`` executes any operation of ``dispatcher.ops``; the methods
    below are shorthands for the common ones. See ``_Driver`` for the options."""

    redis: _SyncRedis

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Dispatcher:
        """``redis://…`` for one server, ``redis+cluster://…`` for a Redis Cluster."""
        from dispatcher.connection import connect

        return cls(connect(url), **kwargs)

    # --- executing operations -----------------------------------------------------------------
    def run(self, op: Op[T]) -> T:
        """Execute one operation of ``dispatcher.ops``, answering each request it makes."""
        try:
            request = next(op)
            while True:
                request = op.send(self._answer(request))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _answer(self, request: ops.Effect) -> Any:
        if isinstance(request, ops.Script):
            return self.call(request.name, request.team, **request.opts)
        if isinstance(request, ops.Commands):
            with reachable():
                return self._pipeline(request).execute()
        if isinstance(request, ops.Now):
            return self.now_ms()
        if self.jobs is not None:
            return getattr(self.jobs, request.kind)(*request.args)
        inline = inline_job(request, self.batch_size)
        if inline is not None:
            self.run(inline)
        return None

    def call(self, script: str, team: str, /, **opts: Any) -> Any:
        """Run one script for ``team``; script errors become PushinboxError subclasses."""
        name, args = _script_args(script, team, opts, self.clock)
        if self.functions is None:
            self._decide()
        started = time.perf_counter()
        with _SCRIPT_CALL:
            try:
                raw = self._once(name, args)
            except redis.ResponseError as exc:
                if _missing_function(exc, self.functions):
                    try:  # first use, flushed, restarted, or a new version: load it once
                        self.redis.function_load(self._library, replace=True)
                    except redis.ResponseError as refused:
                        if not self._refused(refused):
                            raise
                elif not self._refused(exc):
                    raise
                raw = self._once(name, args)
        return self._result(name, raw, started)

    def _once(self, name: str, args: list[Any]) -> Any:
        if self.wait_replicas:
            pipe = self.redis.pipeline(transaction=False)
            self._queue_call(pipe, name, args)
            return self._wait(pipe).execute()
        return self._queue_call(self.redis, name, args)

    def _decide(self) -> None:
        """Auto mode, at the first call: FCALL where the server has functions, else EVALSHA.
        The library is loaded only when a call finds it missing (compiling it blocks Redis
        for milliseconds: not once per CLI call or forked job)."""
        with reachable():
            try:
                info = self.redis.info("server")
            except redis.ResponseError:  # an ACL without INFO (@dangerous): EVALSHA
                info = {}
            self.functions = _supports_functions(info)
        self._auto = True

    def now_ms(self) -> int:
        """The dispatcher's clock: the test clock, else Redis TIME (one clock for everyone)."""
        if self.clock is not None:
            return self.clock()
        with reachable():
            return self._now(*self.redis.time())

    def ping(self) -> bool:
        with reachable():
            return bool(self.redis.ping())

    # --- teams, roles, advisors, settings (see dispatcher.ops for each) ------------------------
    def create_team(self, team: str, name: str | None = None) -> None:
        self.run(ops.create_team(team, name))
        log.info("team_created", team=team)

    def delete_team(self, team: str) -> int:
        """Remove a team and everything it holds (messages, advisors, figures, webhooks)."""
        deleted = self.run(ops.delete_team(team, defaults.DELETE_BATCH))
        log.info("team_deleted", team=team, keys=deleted)
        return deleted

    def teams(self) -> list[str]:
        return self.run(ops.teams())

    def migrate(self, team: str, down: bool = False) -> dict[str, int]:
        """Fold the team's one-message waiting lists into their conversations' records, its
        customers' sets of conversations into hashes and its channels' per-message index
        into counts per second (``down``: back, before a downgrade); returns how many
        conversations, customers and waiting messages (``stock``) changed."""
        moved = self.run(ops.migrate(team, down, defaults.DELETE_BATCH))
        log.info("team_migrated", team=team, down=down, **moved)
        return moved

    def team_settings(self, team: str) -> dict[str, Any]:
        return self.run(ops.team_settings(team))

    def configure(self, team: str, **options: Any) -> None:
        """Change team options (see ``ops.configure``); each is validated first."""
        self.run(ops.configure(team, **options))

    def set_hours(self, team: str, spec: object) -> WorkingHours:
        return self.run(ops.set_hours(team, spec))

    def hours(self, team: str) -> WorkingHours | None:
        return self.run(ops.hours(team))

    def set_role(self, team: str, role: str, *, push: bool = True, capacity: int = 1) -> None:
        self.run(ops.set_role(team, role, push=push, capacity=capacity))

    def roles(self, team: str) -> list[dict[str, Any]]:
        return self.run(ops.roles(team))

    def set_advisor(self, team: str, advisor: str, role: str, name: str | None = None,
                    skills: list[str] | None = None) -> None:
        self.run(ops.set_advisor(team, advisor, role, name, skills))

    def advisors(self, team: str) -> list[dict[str, Any]]:
        return self.run(ops.advisors(team))

    def set_groups(self, team: str, spec: object) -> dict[str, Any]:
        """Replace priority groups / order; re-buckets the waiting stock through ``jobs``."""
        res = self.run(ops.set_groups(team, spec))
        log.info("groups_changed", team=team, version=res["version"], job=res["job"])
        return res

    def groups(self, team: str) -> PrioritySettings:
        return self.run(ops.groups(team))

    def rebucket_progress(self, team: str) -> dict[str, Any]:
        return self.run(ops.rebucket_progress(team))

    def set_triage(self, team: str, rules: object) -> list[TriageRule]:
        return self.run(ops.set_triage(team, rules))

    def triage(self, team: str) -> list[TriageRule]:
        return self.run(ops.triage(team))

    # --- upstream -----------------------------------------------------------------------------
    def ingest(self, team: str, message: object) -> str:
        """Store one message; returns 'queued', 'assigned:<advisor>' or 'duplicate'."""
        return self.run(ops.ingest_one(team, message))

    def ingest_many(self, team: str, messages: Iterable[object]) -> list[str]:
        return self.run(ops.ingest_many(team, messages))

    def set_customer_tags(self, team: str, customer: str, tags: list[str]) -> int:
        return self.run(ops.set_customer_tags(team, customer, tags))

    # --- advisors -----------------------------------------------------------------------------
    def login(self, team: str, advisor: str) -> int:
        return self.run(ops.login(team, advisor))

    def logout(self, team: str, advisor: str, why: str | None = None) -> str | None:
        return self.run(ops.logout(team, advisor, why))

    def heartbeat(self, team: str, advisor: str) -> None:
        self.run(ops.heartbeat(team, advisor))

    def next(self, team: str, advisor: str, request_id: str | None = None) -> Push:
        """*Process a new message*."""
        push = self.run(ops.next_message(team, advisor, request_id))
        if push.status == "assigned" and push.message:
            m = push.message
            log.info("pushed", team=team, advisor=advisor, message=m.id, group=m.group)
        return push

    def reply(self, team: str, advisor: str, message: str) -> str:
        return self.run(ops.act("reply", team, advisor, message))

    def reply_next(self, team: str, advisor: str, message: str,
                   request_id: str | None = None) -> ReplyAndPush:
        """Reply, then *process a new message*, in one call (the advisor's whole cycle)."""
        out = self.run(ops.reply_next(team, advisor, message, request_id))
        if out.status == "assigned" and out.message:
            m = out.message
            log.info("pushed", team=team, advisor=advisor, message=m.id, group=m.group)
        return out

    def archive(self, team: str, advisor: str, message: str) -> str:
        return self.run(ops.act("archive", team, advisor, message))

    def request_help(self, team: str, advisor: str, message: str, note: str = "") -> str:
        return self.run(ops.act("help", team, advisor, message, note=note[:500]))

    def hold(self, team: str, advisor: str, message: str) -> str:
        return self.run(ops.act("hold", team, advisor, message))

    def unhold(self, team: str, advisor: str, message: str) -> str:
        return self.run(ops.act("hold", team, advisor, message, off=True))

    def take(self, team: str, advisor: str, message: str) -> list[Message]:
        return self.run(ops.take(team, advisor, message))

    def start_break(self, team: str, advisor: str) -> BreakInfo:
        return self.run(ops.start_break(team, advisor))

    def end_break(self, team: str, advisor: str, *, epoch: int | None = None,
                  at_ms: int | None = None, why: str | None = None) -> int:
        return self.run(ops.end_break(team, advisor, epoch=epoch, at_ms=at_ms, why=why))

    def current(self, team: str, advisor: str) -> list[Message]:
        return self.run(ops.current(team, advisor))

    def messages(self, team: str, ids: list[str]) -> list[Message]:
        return self.run(ops.messages(team, ids))

    def message(self, team: str, message: str) -> Message:
        return self.run(ops.message(team, message))

    # --- supervisors --------------------------------------------------------------------------
    def assign(self, team: str, advisor: str, message: str, by: str | None = None) -> list[Message]:
        return self.run(ops.assign(team, advisor, message, by))

    def send_to_stock(self, team: str, message: str) -> str:
        return self.run(ops.send_to_stock(team, message))

    def help_requests(self, team: str) -> list[Message]:
        return self.run(ops.place(team, "help"))

    def quarantined(self, team: str) -> list[Message]:
        return self.run(ops.place(team, "quarantine"))

    def preview(self, team: str, n: int = 10,
                advisor: str | None = None) -> list[dict[str, Any]]:
        return self.run(ops.preview(team, n, advisor))

    # --- statistics ---------------------------------------------------------------------------
    def stock(self, team: str) -> Stock:
        return self.run(ops.team_stock(team))

    def advisor_stats(self, team: str, advisor: str, day: date | None = None) -> AdvisorStats:
        return self.run(ops.advisor_stats(team, advisor, day))

    def breaks(self, team: str, start: date, days: int = 7) -> dict[str, Any]:
        return self.run(ops.breaks(team, start, days))

    def events(self, team: str, since: str = "-", count: int = 100,
               newest_first: bool = False) -> list[dict[str, Any]]:
        return self.run(ops.events(team, since, count, newest_first))

    def check(self, team: str) -> CheckReport:
        return self.run(ops.check(team))

    def repair(self, team: str) -> int:
        """Fix the drift `check` reports; returns the number of fixes."""
        return self.run(ops.repair(team, self.batch_size))

    # --- batched moves and the reconciler (called by jobs) ------------------------------------
    def requeue_advisor(self, team: str, advisor: str, epoch: int,
                        progress: ops.Progress = None) -> int:
        return self.run(ops.requeue_advisor(team, advisor, epoch, self.batch_size, progress))

    def rebucket(self, team: str, progress: ops.Progress = None) -> int:
        return self.run(ops.rebucket(team, self.batch_size, progress))

    def tick(self, team: str) -> dict[str, int]:
        return self.run(ops.tick(team, self.batch_size))


class AsyncDispatcher(_Driver):
    """The same operations on ``redis.asyncio``, for the HTTP service's event loop:
    ``await d.run(op)``. ``jobs`` is called in a worker thread (RQ's client is blocking);
    without one, moves run inline on this loop, batch by batch (``inline_job``)."""

    redis: _AsyncRedis

    async def run(self, op: Op[T]) -> T:
        """Execute one operation of ``dispatcher.ops`` without blocking the loop."""
        try:
            request = next(op)
            while True:
                request = op.send(await self._answer(request))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _answer(self, request: ops.Effect) -> Any:
        if isinstance(request, ops.Script):
            return await self.call(request.name, request.team, **request.opts)
        if isinstance(request, ops.Commands):
            with reachable():
                return await self._pipeline(request).execute()
        if isinstance(request, ops.Now):
            return await self.now_ms()
        if self.jobs is not None:
            return await asyncio.to_thread(getattr(self.jobs, request.kind), *request.args)
        inline = inline_job(request, self.batch_size)
        if inline is not None:
            await self.run(inline)
        return None

    async def call(self, script: str, team: str, /, **opts: Any) -> Any:
        name, args = _script_args(script, team, opts, self.clock)
        if self.functions is None:
            await self._decide()
        started = time.perf_counter()
        with _SCRIPT_CALL:
            try:
                raw = await self._once(name, args)
            except redis.ResponseError as exc:
                if _missing_function(exc, self.functions):
                    try:
                        await self.redis.function_load(self._library, replace=True)
                    except redis.ResponseError as refused:
                        if not self._refused(refused):
                            raise
                elif not self._refused(exc):
                    raise
                raw = await self._once(name, args)
        return self._result(name, raw, started)

    async def _once(self, name: str, args: list[Any]) -> Any:
        lane = None if self.wait_replicas else lane_for(self.redis)
        if lane is not None:
            return await self._on_lane(lane, name, args)
        if self.wait_replicas:
            pipe = self.redis.pipeline(transaction=False)
            queued = self._queue_call(pipe, name, args)
            if not self.functions:
                await queued  # redis.asyncio's Script call is a coroutine, even on a pipeline
            return await self._wait(pipe).execute()
        return await self._queue_call(self.redis, name, args)

    async def _on_lane(self, lane: ScriptLane, name: str, args: list[Any]) -> Any:
        """The call on the client's ScriptLane; what the server lost (flushed, restarted, a
        new version) is loaded once for every caller that finds it missing at the same time
        (a refusal to load it goes up to ``call``, which may fall back to EVALSHA)."""
        if self.functions:
            what = self._library_name
            command: tuple[Any, ...] = ("FCALL", self._prefix + name, 1, *args)
            load: tuple[Any, ...] = ("FUNCTION", "LOAD", "REPLACE", self._library)
        else:
            script = self.scripts[name]
            what, command = script.sha, ("EVALSHA", script.sha, 1, *args)
            load = ("SCRIPT", "LOAD", script.script)
        seen = lane.loads(what)
        try:
            return await lane.call(command)
        except redis.exceptions.NoScriptError:
            pass
        except redis.ResponseError as exc:
            if not _missing_function(exc, self.functions):
                raise
        await lane.load(what, seen, load)
        return await lane.call(command)

    async def _decide(self) -> None:
        with reachable():
            try:
                info = await self.redis.info("server")
            except redis.ResponseError:  # an ACL without INFO (@dangerous): EVALSHA
                info = {}
            self.functions = _supports_functions(info)
        self._auto = True

    async def now_ms(self) -> int:
        if self.clock is not None:
            return self.clock()
        with reachable():
            return self._now(*await self.redis.time())

    async def ready(self) -> bool:
        """Redis answers and holds every script (loading any that the cache lost)."""
        if self.functions is None:
            await self._decide()
        with reachable():
            if self.functions:  # a probe every few seconds: load only what is missing
                if not await self.redis.function_list(library=self._library_name):
                    try:
                        await self.redis.function_load(self._library, replace=True)
                    except redis.ResponseError as refused:
                        if not self._refused(refused):
                            raise
                        return await self.ready()
                return True
            shas = [self.scripts[n].sha for n in scripts_names()]
            present = await self.redis.script_exists(*shas)
            for name, ok in zip(scripts_names(), present, strict=True):
                if not ok:
                    await self.redis.script_load(self.scripts[name].script)
            return True


def _script_args(
    script: str, team: str, opts: dict[str, Any], clock: Callable[[], int] | None
) -> tuple[str, list[Any]]:
    """KEYS[1] = the team's cfg hash, ARGV = key prefix and the msgpack options."""
    keys.check_team(team)
    if clock is not None and "now" not in opts:
        opts = {**opts, "now": clock()}
    packed = pack({k: v for k, v in opts.items() if v is not None})
    return script, [keys.cfg(team), keys.prefix(team), packed]


def _functions_setting(functions: bool | None) -> bool | None:
    """The driver's ``functions`` option, else PUSHINBOX_FUNCTIONS (1 / 0 / auto, the
    default); None means *decide from the server at the first call*."""
    if functions is not None:
        return functions
    env = os.environ.get("PUSHINBOX_FUNCTIONS", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("", "auto"):
        return None
    raise ValidationError(f"PUSHINBOX_FUNCTIONS must be 1, 0 or auto, not {env!r}",
                          field="PUSHINBOX_FUNCTIONS")


def _supports_functions(info: dict[str, Any]) -> bool:
    """Redis 7 and later have FUNCTION LOAD / FCALL (6.2, the embedded server, has not)."""
    major = str(info.get("redis_version", "0")).split(".", 1)[0]
    return major.isdigit() and int(major) >= 7


def _library_refused(exc: redis.ResponseError) -> None:
    """A server that refuses FUNCTION LOAD (an ACL without @scripting's FUNCTION, a managed
    service that disables it) is served with EVALSHA instead: said once, in the log."""
    log.warning("function_library_refused", reason=str(exc)[:200], using="EVALSHA")


def _missing_function(exc: redis.ResponseError, functions: bool | None) -> bool:
    """FCALL of a library the server does not hold (flushed, restarted without persistence,
    a new version): load it and call again, as EVALSHA does on NOSCRIPT."""
    return bool(functions) and "Function not found" in str(exc)


def _translate(exc: redis.ResponseError) -> PushinboxError:
    text = str(exc)
    m = _SCRIPT_ERROR.search(text)
    if not m:
        return PushinboxError(f"Redis refused the operation: {text}")
    field = None if m.group(2) == "-" else m.group(2)
    return error_for_code(m.group(1), m.group(3), field)
