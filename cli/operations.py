"""Running pushinbox: the stack for a newcomer (up), the HTTP service, the worker, the
reconciler; check and repair; the soak and the benchmark of a deployed Redis."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click
import redis

from cli.base import (
    Ctx,
    cli,
    pass_ctx,
)
from cli.output import emit
from dispatcher import defaults, ops
from dispatcher.api import Dispatcher
from dispatcher.errors import PushinboxError, UnavailableError
from dispatcher.log import configure as configure_logging


# --- the stack ------------------------------------------------------------------------------
@cli.command()
@click.option("--demo", is_flag=True, help="Seed a demo team with advisors and messages.")
@click.option("--data-dir", default=".pushinbox", show_default=True,
              help="Where the embedded Redis keeps its append-only file.")
@click.option("--port", default=defaults.LOCAL_REDIS_PORT, show_default=True,
              help="Port of the embedded Redis.")
@click.option("--http-port", default=defaults.HTTP_PORT, show_default=True,
              help="Port of the HTTP service.")
@click.pass_context
def up(ctx: click.Context, demo: bool, data_dir: str, port: int, http_port: int) -> None:
    """Start the stack: Redis (embedded unless REDIS_URL is set), an RQ worker, the HTTP service.

    \b
    Example:
      pushinbox up --demo        # then, in another terminal: pushinbox stock demo
    Ctrl-C stops everything it started.
    """
    from cli.stack import run_stack

    run_stack(ctx.obj, demo=demo, data_dir=data_dir, port=port, http_port=http_port,
              url_given=ctx.parent is not None and ctx.parent.get_parameter_source("redis_url")
              != click.core.ParameterSource.DEFAULT)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=defaults.HTTP_PORT, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Service processes.")
@click.option("--no-access-log", is_flag=True, help="Skip the per-request JSON log line.")
@pass_ctx
def serve(c: Ctx, host: str, port: int, workers: int, no_access_log: bool) -> None:
    """Run the HTTP service (uvicorn). It keeps no state: run as many as you like.

    \b
    Example:
      pushinbox token create admin --name ops
      pushinbox serve --port 8080 --workers 2
    """
    from cli.serve import serve as run

    click.echo(f"HTTP       http://{host}:{port}  (OpenAPI: /openapi.json, docs: /docs)")
    run(c.url, host, port, workers, c.inline, not no_access_log)


@cli.command()
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@pass_ctx
def worker(c: Ctx, burst: bool) -> None:
    """Run an RQ worker with the scheduler (break ends), the reconciler ticker and the
    escalator (waiting-time thresholds, every second).

    \b
    Examples:
      pushinbox worker                                      # the Redis of pushinbox up
      pushinbox --redis-url redis://localhost:6379/0 worker
    """

    from dispatcher.log import get_logger
    from workers import jobs
    from workers.hooks import HookPump
    from workers.scheduling import Escalator, PushinboxWorker, Ticker, hook_queue, queue

    log = get_logger("pushinbox.worker")
    configure_logging()
    q = queue(data_url=c.url)
    hq = hook_queue(q.connection)
    pumps = [HookPump(Dispatcher.from_url(c.url), hq)]

    def keep_pumping() -> None:
        """The ticker's watchdog: a pump that died anyway is logged and started again."""
        if not pumps[-1].is_alive() and not pumps[-1].stopped.is_set():
            log.error("hook_pump_died_restarting")
            pumps.append(HookPump(Dispatcher.from_url(c.url), hq))
            pumps[-1].start()

    ticker = Ticker(q, on_tick=keep_pumping)
    escalator = Escalator(Dispatcher.from_url(c.url))
    if not burst:
        ticker.start()
        escalator.start()
        pumps[0].start()
    jobs.use_redis(c.url)  # no os.environ change: nothing leaks to what runs after
    try:  # the dispatcher's jobs first, webhook deliveries after
        pause = 0.5
        while True:
            try:
                PushinboxWorker([q, hq], connection=q.connection).work(with_scheduler=True,
                                                                       burst=burst)
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # RQ rides out an outage while it waits for jobs, not while it starts (its
                # registration, the scheduler's locks): start again once Redis is back.
                if burst:
                    raise
                log.warning("worker_redis_unavailable", error=str(exc), retry_in_s=pause)
                time.sleep(pause)
                pause = min(pause * 2, defaults.WORKER_RESTART_MAX_S)
    finally:
        ticker.stopped.set()
        escalator.stopped.set()
        for p in pumps:
            p.stopped.set()
        jobs.use_redis(None)


@cli.command()
@click.argument("team", required=False)
@pass_ctx
def tick(c: Ctx, team: str | None) -> None:
    """Run the reconciler now (reaper, stranded messages, overdue breaks, purge).

    \b
    Examples:
      pushinbox tick          # every team
      pushinbox tick demo
    """
    teams = [team] if team else c.d.run(ops.teams())
    out = {t: c.d.run(ops.tick(t, c.d.batch_size)) for t in teams}
    emit(out, c.json, rows=[{"team": t, **v} for t, v in out.items()])


@cli.command()
@click.argument("teams", nargs=-1)
@click.option("--repair", is_flag=True,
              help="Fix what is reported (message records are the truth), then check again.")
@pass_ctx
def check(c: Ctx, teams: tuple[str, ...], repair: bool) -> None:
    """Verify the invariants of TEAMS (default: all); exit status 1 on any drift.

    \b
    It checks, in one atomic snapshot per team, that every message is in exactly one place
    (waiting stock, an advisor's hands, help requests, quarantine, done) matching its state;
    queued conversations and their waiting lists agree; per-channel stock indexes hold
    exactly the waiting messages; pushed / on-hold messages are in the advisor's hands and
    capacity counts match; presence matches advisor states; no logged-out advisor holds
    messages; conversation ownership counts and today's figures equal what the sets hold.

    \b
    With --repair, each team with problems is put back in order (one atomic script; the
    message records are the truth; messages no place holds go where their state says, or
    back to the stock marked reassigned), the reconciler hands stranded messages back, and
    the teams are checked again.
    """
    names = list(teams) or c.d.run(ops.teams())
    failed: dict[str, str] = {}  # one team's failure is reported; the others still run

    def attempt(team: str, action: Callable[[str], Any]) -> Any:
        try:
            return action(team)
        except UnavailableError:
            raise
        except PushinboxError as exc:
            failed[team] = exc.message
            return None

    def check_all() -> dict[str, Any]:
        found = {t: attempt(t, c.d.check) for t in names if t not in failed}
        return {t: r for t, r in found.items() if r is not None}

    reports = check_all()
    if repair:
        for t, r in reports.items():
            if not r.ok and (fixed := attempt(t, c.d.repair)) is not None:
                click.echo(f"{t}: {r.problem_count} problems, {fixed} fixes made", err=True)
        reports = check_all()
    emit({**{t: r.to_dict() for t, r in reports.items()},
          **{t: {"ok": False, "error": e} for t, e in failed.items()}}, c.json,
         rows=[{"team": t, "ok": r.ok, "problems": r.problem_count, **r.counts}
               for t, r in reports.items()])
    if not c.json:
        for t, r in reports.items():
            for p in r.problems:
                click.echo(f"{t}: {p}", err=True)
        for t, e in failed.items():
            click.echo(f"{t}: {e}", err=True)
    if failed or not all(r.ok for r in reports.values()):
        sys.exit(1)


@cli.command()
@click.argument("teams", nargs=-1)
@click.option("--down", is_flag=True,
              help="Put every waiting id back in a list, every message in hands back in its "
                   "conversation's set, every customer's conversations back in a set, every "
                   "waiting message back in its channel's index, and write back the empty "
                   "fields this version leaves out: the layout a version before this one "
                   "reads (run it before a downgrade).")
@pass_ctx
def migrate(c: Ctx, teams: tuple[str, ...], down: bool) -> None:
    """Upgrade the data of TEAMS (default: all) to this version's layout.

    \b
    A conversation with one waiting message keeps its id in its own record instead of a
    list of one (a key and about 200 bytes less per waiting conversation), a customer's
    conversations are a small hash instead of a set (about 100 bytes less per customer on
    Redis 6.2 and 7.0), and each channel's stock is counted per second of arrival instead
    of indexed per message (about 105 bytes less per waiting message), and each group's queue
    is kept in small buckets instead of one sorted set (about 80 bytes less per waiting
    conversation). This version reads
    both layouts, so upgrading the processes first
    and migrating afterwards is safe, on a live deployment: each atomic call looks at about
    a thousand keys of one team. Running it again changes nothing. See docs/deploy.md,
    "Upgrading".

    \b
    Examples:
      pushinbox migrate              # every team
      pushinbox migrate acme --down  # before going back to an earlier version
    """
    names = list(teams) or c.d.run(ops.teams())
    out = {}
    for t in names:
        moved = c.d.migrate(t, down)
        n, k, w, q = (moved["conversations"], moved["customers"], moved["stock"],
                      moved["queued"])
        out[t] = ({"folded": 0, "unfolded": n, "customers": k, "stock": w, "queued": q} if down
                  else {"folded": n, "unfolded": 0, "customers": k, "stock": w, "queued": q})
    if c.json:
        emit(out, True)
        return
    for t, v in out.items():
        if down:
            click.echo(f"{t}: {v['unfolded']} conversations unfolded into lists and sets, "
                       f"{v['customers']} customers' conversations into sets, "
                       f"{v['stock']} waiting messages indexed one by one, "
                       f"{v['queued']} waiting conversations into one set per queue")
        else:
            click.echo(f"{t}: {v['folded']} conversations folded into their records, "
                       f"{v['customers']} customers' conversations into hashes, "
                       f"{v['stock']} waiting messages counted per second, "
                       f"{v['queued']} waiting conversations into buckets")


@cli.command()
@click.option("--seconds", default=180.0, show_default=True)
@click.option("--advisors", default=30, show_default=True)
@click.option("--upstreams", default=4, show_default=True)
@click.option("--team", default=None, help="A new team to soak (default soak-<time>).")
@click.option("--private-redis", is_flag=True,
              help="Start a throw-away redis-server on a free loopback port for the soak.")
@pass_ctx
def soak(c: Ctx, seconds: float, advisors: int, upstreams: int, team: str | None,
         private_redis: bool) -> None:
    """Bounded soak: random advisors and upstream load, then every message accounted for.

    Exits 1 unless ingested = replied + archived + waiting + assigned + help + quarantine
    and `check` is clean. Run it against a test Redis, never production.
    """
    from cli.soak import run
    from dispatcher.servers import RedisServer

    server = RedisServer(appendonly=True).start() if private_redis else None
    try:
        report = run(server.url if server else c.url, team=team, seconds=seconds,
                     advisors=advisors, upstreams=upstreams)
    finally:
        if server:
            server.stop()
    emit(report.summary(), c.json)
    if report.errors or not report.accounted or not report.check_ok:
        for line in report.errors[:10] + report.problems[:10]:
            click.echo(line, err=True)
        sys.exit(1)


@cli.command()
@click.option("--waiting", default=10_000, show_default=True, type=click.IntRange(1, 10**8),
              help="Messages seeded in the scratch team's stock.")
@click.option("--advisors", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Concurrent advisors (threads) pressing next and replying.")
@click.option("--seconds", default=5.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Length of each measured round.")
@click.option("--reps", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Rounds of each case (the table gives median and min-max).")
@pass_ctx
def bench(c: Ctx, waiting: int, advisors: int, seconds: float, reps: int) -> None:
    """Measure this deployment: assign+reply cycles beside the minimal-script ceiling.

    Works in a scratch team (bench-<random>) deleted at the end. It loads the Redis it
    measures: run it before going live or in a quiet hour. Redis µs figures come from
    INFO commandstats deltas, so other EVALSHA and FCALL traffic on that server counts too.

    Example: pushinbox --redis-url redis://cache:6379/0 bench --waiting 100000
    """
    from cli.bench import format_table
    from cli.bench import run as run_bench

    d = Dispatcher.from_url(c.url)  # the scratch team's moves run inline, never through RQ
    say = (lambda _: None) if c.json else (lambda line: click.echo(line, err=True))
    result = run_bench(d, waiting=waiting, advisors=advisors, seconds=seconds, reps=reps,
                       say=say)
    if c.json:
        emit(result, True)
    else:
        click.echo(format_table(result["table"]))
