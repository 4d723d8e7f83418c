"""What every command shares: the root group (``--redis-url``, ``--json``, ``--inline``),
the context that makes the Dispatcher once, one-line errors, and the argument decorators
(``team_arg``, ``advisor_arg``, ``message_arg``) the area modules use."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from dispatcher import defaults
from dispatcher.api import Dispatcher
from dispatcher.connection import connect
from dispatcher.errors import PushinboxError, ValidationError
from dispatcher.log import configure as configure_logging

DEFAULT_URL = f"redis://127.0.0.1:{defaults.LOCAL_REDIS_PORT}/0"


class Ctx:
    def __init__(self, url: str, as_json: bool, inline: bool) -> None:
        self.url = url
        self.json = as_json
        self.inline = inline
        self._d: Dispatcher | None = None

    @property
    def d(self) -> Dispatcher:
        """The commands' Dispatcher. Its client waits for a script's answer however long it
        runs, through Sentinel too (where a long-running process gives up reading after 5 s:
        `dispatcher.connection`): a `check` after a failover, of a large team, runs for
        seconds, and a client that gives up sends it again, refused BUSY."""
        if self._d is None:
            if self.inline:
                self._d = Dispatcher(connect(self.url, socket_timeout=None))
            else:
                from workers.scheduling import RQJobs, queue

                d = Dispatcher(connect(self.url, socket_timeout=None))
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


def load_file(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path} is not valid YAML or JSON: {exc}", field="file") from exc


def msg_row(m: Any) -> dict[str, Any]:
    body = m.body.get("text", m.body) if isinstance(m.body, dict) else m.body
    return {"id": m.id, "conversation": m.conversation, "channel": m.channel,
            "group": m.group, "why": m.why, "via": m.via, "hold": m.on_hold,
            "reassigned": m.reassigned, "body": str(body)[:50]}



#: The arguments most commands take, spelled once.
team_arg = click.argument("team_id")
advisor_arg = click.argument("advisor_id")
message_arg = click.argument("message_id")
