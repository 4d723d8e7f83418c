"""The ``pushinbox`` command: start the stack, manage teams, act as an advisor, inspect queues.

Every command talks to the Redis at ``--redis-url`` / ``REDIS_URL`` (default: the one that
``pushinbox up`` starts on port 6390) and goes through the same ``Dispatcher`` API as the HTTP
service. Errors print one line and exit with status 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import redis
import yaml

from cli.output import emit, table
from dispatcher import defaults, ops
from dispatcher.api import Dispatcher
from dispatcher.errors import PushinboxError, UnavailableError, ValidationError
from dispatcher.log import configure as configure_logging
from dispatcher.model import IncomingMessage
from dispatcher.webhooks import EVENTS as HOOK_EVENTS

DEFAULT_URL = f"redis://127.0.0.1:{defaults.LOCAL_REDIS_PORT}/0"


class Ctx:
    def __init__(self, url: str, as_json: bool, inline: bool) -> None:
        self.url = url
        self.json = as_json
        self.inline = inline
        self._d: Dispatcher | None = None

    @property
    def d(self) -> Dispatcher:
        if self._d is None:
            if self.inline:
                self._d = Dispatcher.from_url(self.url)
            else:
                from workers.scheduling import RQJobs, queue

                d = Dispatcher.from_url(self.url)
                # RQ's queues live with the data given here, unless RQ_REDIS_URL says otherwise
                d.jobs = RQJobs(queue(data_url=self.url))
                self._d = d
        return self._d


pass_ctx = click.make_pass_decorator(Ctx)


class Group(click.Group):
    """Turns PushinboxError into one readable line and exit status 1; takes ``--json``
    before or after the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None and "--json" in args[1:]:
            args = ["--json", *[a for a in args if a != "--json"]]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            done = super().invoke(ctx)
        except PushinboxError as exc:
            where = f" ({exc.field})" if exc.field else ""
            click.echo(f"error: {exc.message}{where}", err=True)
            sys.exit(1)
        c = ctx.find_object(Ctx)
        for what in getattr(getattr(c and c._d, "jobs", None), "unqueued", []):
            click.echo(f"warning: the {what.split(':')[0]} job could not be queued "
                       f"({what.split(': ', 1)[-1]}); the reconciler will do the work within "
                       f"{defaults.TICK_INTERVAL_S} s", err=True)
        return done


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar="REDIS_URL", default=DEFAULT_URL, show_default=True,
              help="Redis holding the dispatcher's data.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--inline", is_flag=True,
              help="Run long moves (logout requeue, re-bucketing) here instead of in RQ.")
@click.pass_context
def cli(ctx: click.Context, redis_url: str, as_json: bool, inline: bool) -> None:
    """pushinbox: push-mode dispatching of customer messages on Redis.

    \b
    Quick start (after `make run`, in another terminal):
      pushinbox login demo alice
      pushinbox next demo alice
      pushinbox reply demo alice demo-msg-12
    """
    configure_logging(level=logging.WARNING)  # commands print results; logs are for services
    ctx.obj = Ctx(redis_url, as_json, inline)


def _load(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path} is not valid YAML or JSON: {exc}", field="file") from exc


def _msg_row(m: Any) -> dict[str, Any]:
    body = m.body.get("text", m.body) if isinstance(m.body, dict) else m.body
    return {"id": m.id, "conversation": m.conversation, "channel": m.channel,
            "group": m.group, "why": m.why, "via": m.via, "hold": m.on_hold,
            "reassigned": m.reassigned, "body": str(body)[:50]}


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
    """Run an RQ worker with the scheduler (break ends) and the reconciler ticker.

    \b
    Examples:
      pushinbox worker                                      # the Redis of pushinbox up
      pushinbox --redis-url redis://localhost:6379/0 worker
    """

    from rq import Worker

    from dispatcher.log import get_logger
    from workers import jobs
    from workers.hooks import HookPump
    from workers.scheduling import Ticker, hook_queue, queue

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
    if not burst:
        ticker.start()
        pumps[0].start()
    jobs.use_redis(c.url)  # no os.environ change: nothing leaks to what runs after
    try:  # the dispatcher's jobs first, webhook deliveries after
        pause = 0.5
        while True:
            try:
                Worker([q, hq], connection=q.connection).work(with_scheduler=True, burst=burst)
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
    teams = [team] if team else c.d.teams()
    out = {t: c.d.tick(t) for t in teams}
    emit(out, c.json, rows=[{"team": t, **v} for t, v in out.items()])



# --- teams, roles, advisors ---------------------------------------------------------------
@cli.group()
def team() -> None:
    """Create, list and configure teams."""


@team.command("create")
@click.argument("team_id")
@click.option("--name", help="Display name.")
@pass_ctx
def team_create(c: Ctx, team_id: str, name: str | None) -> None:
    """Create a team.  Example: pushinbox team create acme --name "Acme care" """
    c.d.create_team(team_id, name)
    emit({"team": team_id, "created": True}, c.json)


@team.command("delete")
@click.argument("team_id")
@click.option("--yes", is_flag=True, help="Confirm: everything the team holds is removed.")
@pass_ctx
def team_delete(c: Ctx, team_id: str, yes: bool) -> None:
    """Delete a team and everything it holds (messages, advisors, figures, webhooks).

    Example: pushinbox team delete old-team --yes
    """
    if not yes:
        raise ValidationError(f"deleting team {team_id} removes all it holds; add --yes",
                              field="yes")
    emit({"team": team_id, "deleted_keys": c.d.delete_team(team_id)}, c.json)


@team.command("list")
@pass_ctx
def team_list(c: Ctx) -> None:
    """List teams."""
    teams = c.d.teams()
    emit(teams, c.json, rows=[{"team": t} for t in teams])


@team.command("show")
@click.argument("team_id")
@pass_ctx
def team_show(c: Ctx, team_id: str) -> None:
    """Show a team's settings."""
    emit(c.d.team_settings(team_id), c.json)


@team.command("set")
@click.argument("team_id")
@click.option("--name")
@click.option("--presence-timeout", type=int, help="Seconds of silence before the reaper logs "
              "an advisor out.")
@click.option("--untouched-after", type=int,
              help="Seconds after which an untouched pushed message goes back (0: off).")
@click.option("--logout-at-end-of-hours/--no-logout-at-end-of-hours", default=None)
@click.option("--max-requeues", type=int, help="Requeues before a message is quarantined.")
@click.option("--retention", type=int, help="Seconds done messages are kept.")
@pass_ctx
def team_set(c: Ctx, team_id: str, name: str | None, presence_timeout: int | None,
             untouched_after: int | None, logout_at_end_of_hours: bool | None,
             max_requeues: int | None, retention: int | None) -> None:
    """Change team options.  Example: pushinbox team set acme --untouched-after 600"""
    c.d.configure(team_id, name=name, presence_timeout_s=presence_timeout,
                  untouched_after_s=untouched_after,
                  logout_at_end_of_hours=logout_at_end_of_hours,
                  max_requeues=max_requeues, retention_s=retention)
    emit(c.d.team_settings(team_id), c.json)


@cli.group()
def role() -> None:
    """Roles: push mode on or off, and push capacity."""


@role.command("set")
@click.argument("team_id")
@click.argument("role_name")
@click.option("--push/--no-push", default=True, show_default=True,
              help="Push mode: advisors are pushed messages and cannot pick.")
@click.option("--capacity", default=1, show_default=True,
              help="Pushed conversations an advisor may hold unprocessed.")
@pass_ctx
def role_set(c: Ctx, team_id: str, role_name: str, push: bool, capacity: int) -> None:
    """Create or change a role.  Example: pushinbox role set acme agent --push"""
    c.d.set_role(team_id, role_name, push=push, capacity=capacity)
    emit(c.d.roles(team_id), c.json, rows=c.d.roles(team_id))


@role.command("list")
@click.argument("team_id")
@pass_ctx
def role_list(c: Ctx, team_id: str) -> None:
    """List roles."""
    rows = c.d.roles(team_id)
    emit(rows, c.json, rows=rows)


@cli.group()
def advisor() -> None:
    """Advisors of a team."""


@advisor.command("add")
@click.argument("team_id")
@click.argument("advisor_id")
@click.option("--role", "role_name", required=True)
@click.option("--name")
@pass_ctx
def advisor_add(c: Ctx, team_id: str, advisor_id: str, role_name: str, name: str | None) -> None:
    """Create or change an advisor.  Example: pushinbox advisor add acme ann --role agent"""
    c.d.set_advisor(team_id, advisor_id, role_name, name)
    emit({"advisor": advisor_id, "role": role_name}, c.json)


@advisor.command("list")
@click.argument("team_id")
@pass_ctx
def advisor_list(c: Ctx, team_id: str) -> None:
    """List advisors with their state and assigned messages."""
    rows = c.d.advisors(team_id)
    emit(rows, c.json, rows=rows)


# --- settings -------------------------------------------------------------------------------
@cli.group()
def groups() -> None:
    """Priority groups: the order in which waiting messages are pushed."""


@groups.command("show")
@click.argument("team_id")
@pass_ctx
def groups_show(c: Ctx, team_id: str) -> None:
    """Show the priority groups (the implicit last group is 'everything else')."""
    s = c.d.groups(team_id)
    rows = [{"position": i + 1, "name": g["name"], "match": g["match"]}
            for i, g in enumerate(s.groups)]
    rows.append({"position": len(rows) + 1, "name": "everything else", "match": {}})
    emit(s.to_dict(), c.json, rows=rows, title=f"order inside groups: {s.order}")


@groups.command("set")
@click.argument("team_id")
@click.argument("file")
@pass_ctx
def groups_set(c: Ctx, team_id: str, file: str) -> None:
    """Replace the priority groups from a YAML or JSON file ('-': stdin).

    \b
    Example file:
      order: oldest_conversation
      groups:
        - name: VIP
          match: {customer_tags_any: [VIP]}
        - name: Reassigned
          match: {reassigned: true}
    Conditions: customer_tags_any, customer_tags_all, channel_in, reassigned,
    message_tags_any, message_tags_all, language_in, attribute_equals, attribute_in.
    """
    res = c.d.set_groups(team_id, _load(file))
    emit(res, c.json)


@cli.group()
def triage() -> None:
    """Triage rules: assign arriving messages to a named advisor."""


@triage.command("set")
@click.argument("team_id")
@click.argument("file")
@pass_ctx
def triage_set(c: Ctx, team_id: str, file: str) -> None:
    """Replace triage rules from YAML/JSON: a list of {name, match, advisor}.

    \b
    Example file:
      - name: Korean speakers
        match: {language_in: [ko]}
        advisor: minji
    """
    rules = c.d.set_triage(team_id, _load(file))
    emit([r.to_dict() for r in rules], c.json, rows=[r.to_dict() for r in rules])


@triage.command("show")
@click.argument("team_id")
@pass_ctx
def triage_show(c: Ctx, team_id: str) -> None:
    """Show triage rules."""
    rows = [r.to_dict() for r in c.d.triage(team_id)]
    emit(rows, c.json, rows=rows)


@cli.group()
def hours() -> None:
    """Working hours: breaks end by themselves at the end of a range."""


@hours.command("set")
@click.argument("team_id")
@click.argument("file")
@pass_ctx
def hours_set(c: Ctx, team_id: str, file: str) -> None:
    """Set working hours from YAML/JSON.

    \b
    Example file:
      timezone: Europe/Paris
      week:
        mon: ["09:00-12:30", "13:30-18:00"]
        sat: ["10:00-14:00"]
    """
    h = c.d.set_hours(team_id, _load(file))
    emit(h.to_dict(), c.json)


@hours.command("show")
@click.argument("team_id")
@pass_ctx
def hours_show(c: Ctx, team_id: str) -> None:
    """Show working hours."""
    h = c.d.hours(team_id)
    emit(h.to_dict() if h else None, c.json)


# --- upstream -----------------------------------------------------------------------------
@cli.command()
@click.argument("team_id")
@click.argument("file", required=False)
@click.option("--id", "msg_id", help="Message id (one message from options).")
@click.option("--conversation")
@click.option("--customer")
@click.option("--channel")
@click.option("--text", help="Message text.")
@click.option("--customer-tag", "customer_tags", multiple=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--language")
@click.option("--batch", default=100, show_default=True, help="Messages per atomic call.")
@pass_ctx
def ingest(c: Ctx, team_id: str, file: str | None, msg_id: str | None,
           conversation: str | None, customer: str | None, channel: str | None,
           text: str | None, customer_tags: tuple[str, ...], tags: tuple[str, ...],
           language: str | None, batch: int) -> None:
    """Push customer messages in: one from options, or a JSONL file ('-': stdin).

    \b
    Examples:
      pushinbox ingest demo --id m1 --conversation c1 --customer u1 --channel webchat \\
          --text "Where is my order?" --customer-tag VIP
      pushinbox ingest demo messages.jsonl
    Each JSONL line: {"id", "conversation", "customer", "channel", "body",
    "language"?, "tags"?, "attributes"?, "customer_tags"?}. Ingest is idempotent by id.
    """
    if file is None:
        if not msg_id:
            raise ValidationError("give a JSONL file, or --id with the message options", "id")
        message: dict[str, Any] = {"id": msg_id, "conversation": conversation or msg_id,
                                   "customer": customer or "anonymous",
                                   "channel": channel or "webchat", "body": {"text": text or ""}}
        if customer_tags:
            message["customer_tags"] = list(customer_tags)
        if tags:
            message["tags"] = list(tags)
        if language:
            message["language"] = language
        status = c.d.ingest(team_id, message)
        emit({"id": msg_id, "status": status}, c.json)
        return
    try:
        with (open(file, encoding="utf-8") if file != "-" else contextlib.nullcontext(
                sys.stdin)) as stream:
            numbered = [(n, ln) for n, ln in enumerate(stream.read().splitlines(), 1)
                        if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {file}: {exc}", field="file") from exc
    # The whole file is checked before anything is stored; errors name the file's line.
    msgs, line_of = [], []
    for n, line in numbered:
        try:
            msgs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {n} is not JSON: {exc}", field=f"line {n}") from exc
        try:
            IncomingMessage.parse(msgs[-1])
        except ValidationError as exc:
            raise type(exc)(f"line {n}: {exc.message}", field=exc.field) from exc
        line_of.append(n)
    counts: dict[str, int] = {}
    with click.progressbar(length=len(msgs), label="ingesting", file=sys.stderr,
                           hidden=c.json) as bar:
        for start in range(0, len(msgs), batch):
            chunk = msgs[start:start + batch]
            try:
                results = c.d.ingest_many(team_id, chunk)
            except ValidationError as exc:  # refused by Redis state (a conflict, a cap)
                stored = f"lines up to {line_of[start - 1]} were stored" if start else (
                    "nothing was stored")
                raise type(exc)(
                    f"lines {line_of[start]}-{line_of[start + len(chunk) - 1]} were refused "
                    f"({exc.message}); {stored}; ingest is idempotent by id: fix the file "
                    "and run it again", field=exc.field) from exc
            for s in results:
                key = s.split(":")[0]
                counts[key] = counts.get(key, 0) + 1
            bar.update(len(chunk))
    emit(counts, c.json)


@cli.command("customer-tags")
@click.argument("team_id")
@click.argument("customer")
@click.argument("tags", nargs=-1)
@pass_ctx
def customer_tags(c: Ctx, team_id: str, customer: str, tags: tuple[str, ...]) -> None:
    """Set a customer's tags; their waiting messages move to the group they now match.

    Example: pushinbox customer-tags demo customer-3 VIP
    """
    moved = c.d.set_customer_tags(team_id, customer, list(tags))
    emit({"customer": customer, "tags": list(tags), "conversations_moved": moved}, c.json)


# --- advisor actions --------------------------------------------------------------------------
@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@pass_ctx
def login(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Log an advisor in.  Example: pushinbox login demo alice"""
    emit({"advisor": advisor_id, "session": c.d.login(team_id, advisor_id)}, c.json)


@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@pass_ctx
def logout(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Log an advisor out; their messages go back to the team, marked reassigned."""
    job = c.d.logout(team_id, advisor_id)
    emit({"advisor": advisor_id, "logged_out": True, "requeue_job": job}, c.json)


@cli.command("next")
@click.argument("team_id")
@click.argument("advisor_id")
@click.option("--request-id", help="Client request id: a retry gets the same answer.")
@pass_ctx
def next_cmd(c: Ctx, team_id: str, advisor_id: str, request_id: str | None) -> None:
    """Process a new message: push the first message of the ordered list.

    Example: pushinbox next demo alice
    """
    p = c.d.next(team_id, advisor_id, request_id)
    if c.json:
        emit(p.to_dict(), True)
        return
    if p.status == "empty":
        click.echo("The team's stock is empty: nothing to process.")
        return
    if p.status == "pending":
        click.echo("Process this message first:")
    table([_msg_row(m) for m in p.messages])


def _action(name: str, method: str, doc: str, hidden: bool = False) -> None:
    @cli.command(name, help=doc, hidden=hidden)
    @click.argument("team_id")
    @click.argument("advisor_id")
    @click.argument("message_id")
    @pass_ctx
    def cmd(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
        status = getattr(c.d, method)(team_id, advisor_id, message_id)
        emit({"message": message_id, "action": name, "status": status}, c.json)


_action("reply", "reply", "Reply to a message (it is done and counts as a response).\n\n"
        "Example: pushinbox reply demo alice demo-msg-12")
_action("archive", "archive", "Archive a message (done; archiving twice is a no-op).\n\n"
        "Example: pushinbox archive demo alice demo-msg-12")
_action("request-help", "request_help",
        "Request help on a message: it goes to the team's help requests.\n\n"
        "Example: pushinbox request-help demo alice demo-msg-12")
_action("help", "request_help", "Old name of request-help.", hidden=True)
_action("hold", "hold", "Put a message on hold: it stays yours but no longer blocks pushes."
        "\n\nExample: pushinbox hold demo alice demo-msg-12")
_action("unhold", "unhold", "Take a message off hold.\n\n"
        "Example: pushinbox unhold demo alice demo-msg-12")


@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@click.argument("message_id")
@pass_ctx
def take(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
    """Pick a waiting message (advisors whose role has push mode off)."""
    rows = [_msg_row(m) for m in c.d.take(team_id, advisor_id, message_id)]
    emit(rows, c.json, rows=rows)


@cli.group("break")
def break_group() -> None:
    """Breaks: end by the advisor, by processing a new message, or at the end of hours.

    \b
    Examples:
      pushinbox break start demo alice
      pushinbox break end demo alice
    """


@break_group.command("start")
@click.argument("team_id")
@click.argument("advisor_id")
@pass_ctx
def break_start(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Start a break.  Example: pushinbox break start demo alice"""
    b = c.d.start_break(team_id, advisor_id)
    until = datetime.fromtimestamp(b.until / 1000, UTC).isoformat() if b.until else None
    emit({"advisor": advisor_id, "status": b.status,
          "since": datetime.fromtimestamp(b.since / 1000, UTC).isoformat(),
          "ends_at_end_of_hours": until}, c.json)


@break_group.command("end")
@click.argument("team_id")
@click.argument("advisor_id")
@pass_ctx
def break_end(c: Ctx, team_id: str, advisor_id: str) -> None:
    """End a break."""
    ms = c.d.end_break(team_id, advisor_id)
    emit({"advisor": advisor_id, "break_seconds": ms / 1000}, c.json)


@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@pass_ctx
def current(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Your current messages: pushed, triaged, assigned by hand, on hold."""
    msgs = c.d.current(team_id, advisor_id)
    emit([m.to_dict() for m in msgs], c.json, rows=[_msg_row(m) for m in msgs])


# --- supervisors -------------------------------------------------------------------------------
@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@click.argument("message_id")
@pass_ctx
def assign(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
    """Assign a message by hand (from the stock, help requests, quarantine or an advisor)."""
    rows = [_msg_row(m) for m in c.d.assign(team_id, advisor_id, message_id, by="cli")]
    emit(rows, c.json, rows=rows)


@cli.command()
@click.argument("team_id")
@click.argument("advisor_id", required=False)
@click.option("--message", "message_id", help="Send this message back to the stock instead.")
@pass_ctx
def requeue(c: Ctx, team_id: str, advisor_id: str | None, message_id: str | None) -> None:
    """Hand messages back to the team's stock, marked reassigned.

    \b
    Examples:
      pushinbox requeue demo bob              # a logged-out advisor's messages, now
      pushinbox requeue demo --message m42    # one message (and its conversation)
    """
    if message_id:
        emit({"message": message_id, "status": c.d.send_to_stock(team_id, message_id)}, c.json)
        return
    if not advisor_id:
        raise ValidationError("give an advisor, or --message", field="advisor")
    adv = next((a for a in c.d.advisors(team_id) if a["advisor"] == advisor_id), None)
    if adv is None:
        raise ValidationError(f"unknown advisor {advisor_id}", field="advisor")
    if adv["state"] != "offline":
        raise ValidationError(f"advisor {advisor_id} is logged in; log them out first", "advisor")
    rows = c.d.run(ops.advisor_rows(team_id))
    epoch = next(r["ep"] for r in rows if r["id"] == advisor_id)
    with click.progressbar(length=max(1, adv["assigned"]), label="requeueing", file=sys.stderr,
                           hidden=c.json) as bar:
        moved = c.d.requeue_advisor(team_id, advisor_id, epoch,
                                    progress=lambda done, left: bar.update(done - bar.pos))
    emit({"advisor": advisor_id, "requeued": moved}, c.json)


@cli.command()
@click.argument("team_id")
@pass_ctx
def stock(c: Ctx, team_id: str) -> None:
    """The team's waiting messages, total and per channel, with the oldest one's age."""
    s = c.d.stock(team_id)
    rows: list[dict[str, Any]] = [{"channel": ch.channel, "waiting": ch.waiting,
                                   "oldest_age_s": ch.oldest_age_s} for ch in s.channels]
    rows.append({"channel": "TOTAL", "waiting": s.total, "oldest_age_s": None})
    emit(s.to_dict(), c.json, rows=rows)


@cli.command()
@click.argument("team_id")
@click.argument("advisor_id")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="UTC day (default today).")
@pass_ctx
def stats(c: Ctx, team_id: str, advisor_id: str, day: datetime | None) -> None:
    """An advisor's figures for the UTC day: responses, archives, breaks, assigned, stock."""
    s = c.d.advisor_stats(team_id, advisor_id, day.date() if day else None)
    emit(s.to_dict(), c.json)


@cli.command()
@click.argument("team_id")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]),
              help="First UTC day (default: 6 days ago).")
@click.option("--days", default=7, show_default=True)
@pass_ctx
def breaks(c: Ctx, team_id: str, start: datetime | None, days: int) -> None:
    """Break time per advisor and for the team, per UTC day.

    \b
    Examples:
      pushinbox breaks demo                       # the last 7 days
      pushinbox breaks demo --start 2026-11-01 --days 30
    """
    first = start.date() if start else datetime.fromtimestamp(
        c.d.now_ms() / 1000, UTC).date() - timedelta(days=days - 1)
    out = c.d.breaks(team_id, first, days)
    rows = [{"day": d["day"], "advisor": a, "break_s": s}
            for d in out["days"] for a, s in d["advisors"].items()]
    rows += [{"day": d["day"], "advisor": "TEAM", "break_s": d["team_seconds"]}
             for d in out["days"]]
    emit(out, c.json, rows=sorted(rows, key=lambda r: (r["day"], r["advisor"])))


@cli.command()
@click.argument("team_id")
@click.option("-n", default=10, show_default=True, help="How many conversations.")
@pass_ctx
def preview(c: Ctx, team_id: str, n: int) -> None:
    """The first N conversations of the ordered list: exactly what the next N presses get."""
    rows = c.d.preview(team_id, n)
    emit([{**r, "messages": [m.to_dict() for m in r["messages"]]} for r in rows], c.json,
         rows=[{"position": r["position"], "conversation": r["conversation"],
                "group": r["group"], "why": r["why"],
                "messages": ",".join(m.id for m in r["messages"])} for r in rows])


@cli.command("help-requests")
@click.argument("team_id")
@pass_ctx
def help_requests(c: Ctx, team_id: str) -> None:
    """The team's help requests (assign one to an advisor with `pushinbox assign`)."""
    msgs = c.d.help_requests(team_id)
    emit([m.to_dict() for m in msgs], c.json, rows=[_msg_row(m) for m in msgs])


@cli.command()
@click.argument("team_id")
@pass_ctx
def quarantine(c: Ctx, team_id: str) -> None:
    """Messages set aside after too many requeues (`pushinbox requeue --message` releases)."""
    msgs = c.d.quarantined(team_id)
    emit([m.to_dict() for m in msgs], c.json, rows=[_msg_row(m) for m in msgs])


@cli.command()
@click.argument("team_id")
@click.option("--since", default="-", help="Event id to read after.")
@click.option("--count", default=50, show_default=True)
@pass_ctx
def events(c: Ctx, team_id: str, since: str, count: int) -> None:
    """The team's audit trail (a capped Redis Stream): the newest first, or with --since
    the events after that id, oldest first.

    \b
    Examples:
      pushinbox events demo --count 20
      pushinbox events demo --since 1795631795236-0
    """
    rows = c.d.events(team_id, since, count, newest_first=since in ("-", ""))
    table_rows = [{"id": r["id"], "at": int(r.get("t", 0)), "event": r.get("e"),
                   "message": r.get("m"), "advisor": r.get("a"), "why": r.get("why")}
                  for r in rows]
    emit(rows, c.json, rows=table_rows)


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
    names = list(teams) or c.d.teams()
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


def main() -> None:
    cli()




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
    INFO commandstats deltas, so other EVALSHA traffic on that server counts too.

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


# --- tokens and webhooks ----------------------------------------------------------------------
@cli.group()
def token() -> None:
    """API tokens for the HTTP service (stored hashed; shown once, at creation)."""


@token.command("create")
@click.argument("scope", type=click.Choice(["advisor", "supervisor", "ingest", "admin"]))
@click.option("--team", help="Team of an advisor or supervisor token.")
@click.option("--advisor", help="Advisor of an advisor token.")
@click.option("--teams", help="Comma-separated teams an ingest token acts for.")
@click.option("--all-teams", is_flag=True, help="An ingest token for every team (say so).")
@click.option("--name", default="", help="What the token is for.")
@pass_ctx
def token_create(c: Ctx, scope: str, team: str | None, advisor: str | None,
                 teams: str | None, all_teams: bool, name: str) -> None:
    """Create a token and print it (the only time it is shown).

    \b
    Examples:
      pushinbox token create admin --name ops
      pushinbox token create supervisor --team demo
      pushinbox token create advisor --team demo --advisor alice
      pushinbox token create ingest --teams demo,sales --name whatsapp-connector
      pushinbox token create ingest --all-teams --name shared-connector
    """
    from dispatcher import tokens

    limited = None if teams is None else [t.strip() for t in teams.split(",") if t.strip()]
    new = c.d.run(tokens.create_token(scope, team=team, advisor=advisor, teams=limited,
                                      all_teams=all_teams, name=name))
    if c.json:
        emit({"token": new.token, **new.info.to_dict()}, True)
    else:
        click.echo(new.token)
        click.echo(f"(id {new.info.id}; keep the token now: only its hash is stored)", err=True)


@token.command("list")
@pass_ctx
def token_list(c: Ctx) -> None:
    """List tokens (ids and scopes; never the tokens themselves)."""
    from dispatcher import tokens

    rows = [t.to_dict() for t in c.d.run(tokens.list_tokens())]
    emit(rows, c.json, rows=rows)


@token.command("revoke")
@click.argument("token_id")
@pass_ctx
def token_revoke(c: Ctx, token_id: str) -> None:
    """Revoke a token by id (services stop accepting it within a few seconds)."""
    from dispatcher import tokens

    c.d.run(tokens.revoke_token(token_id))
    emit({"revoked": token_id}, c.json)


@cli.group()
def hook() -> None:
    """Webhooks: signed HTTP callbacks to upstream services on team events."""


@hook.command("add")
@click.argument("team_id")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True,
              help="Event type (repeat): " + ", ".join(HOOK_EVENTS) + ".")
@pass_ctx
def hook_add(c: Ctx, team_id: str, url: str, events: tuple[str, ...]) -> None:
    """Register a webhook; prints its signing secret (shown once)."""
    from dispatcher import webhooks

    webhooks.check_events(list(events))
    webhooks.check_destination(url)
    made = c.d.run(webhooks.create_hook(team_id, url, list(events)))
    emit(made.to_dict(), c.json)


@hook.command("list")
@click.argument("team_id")
@pass_ctx
def hook_list(c: Ctx, team_id: str) -> None:
    """The team's webhooks."""
    from dispatcher import webhooks

    rows = [h.to_dict() for h in c.d.run(webhooks.list_hooks(team_id))]
    emit(rows, c.json, rows=rows)


@hook.command("remove")
@click.argument("team_id")
@click.argument("hook_id")
@pass_ctx
def hook_remove(c: Ctx, team_id: str, hook_id: str) -> None:
    """Remove a webhook."""
    from dispatcher import webhooks

    c.d.run(webhooks.delete_hook(team_id, hook_id))
    emit({"removed": hook_id}, c.json)


#: An example for each command whose docstring has none (a test checks every command has one).
EXAMPLES = {
    ("team", "list"): "pushinbox team list",
    ("team", "show"): "pushinbox team show demo",
    ("role", "list"): "pushinbox role list demo",
    ("advisor", "list"): "pushinbox advisor list demo",
    ("groups", "show"): "pushinbox groups show demo",
    ("groups", "set"): "pushinbox groups set demo groups.yaml",
    ("triage", "set"): "pushinbox triage set demo rules.yaml",
    ("triage", "show"): "pushinbox triage show demo",
    ("hours", "set"): "pushinbox hours set demo hours.yaml",
    ("hours", "show"): "pushinbox hours show demo",
    ("logout",): "pushinbox logout demo alice",
    ("take",): "pushinbox take demo dave demo-msg-7",
    ("current",): "pushinbox current demo alice",
    ("assign",): "pushinbox assign demo bob demo-msg-12",
    ("stock",): "pushinbox stock demo --json",
    ("stats",): "pushinbox stats demo alice",
    ("preview",): "pushinbox preview demo -n 5",
    ("help-requests",): "pushinbox help-requests demo",
    ("quarantine",): "pushinbox quarantine demo",
    ("check",): "pushinbox check --repair demo",
    ("soak",): "pushinbox soak --private-redis --seconds 60",
    ("bench",): "pushinbox bench --waiting 10000 --advisors 50",
    ("break", "end"): "pushinbox break end demo alice",
    ("token", "list"): "pushinbox token list",
    ("token", "revoke"): "pushinbox token revoke 3f9a0c1d2e4b",
    ("hook", "add"): ("pushinbox hook add demo https://crm.example/hooks --event replied "
                      "--event archived"),
    ("hook", "list"): "pushinbox hook list demo",
    ("hook", "remove"): "pushinbox hook remove demo 3f9a0c1d2e4b",
}
for _path, _example in EXAMPLES.items():
    _cmd: Any = cli
    for _part in _path:
        _cmd = _cmd.commands[_part]
    if _example not in (_cmd.help or ""):
        _cmd.help = f"{_cmd.help or ''}\n\nExample: {_example}"
