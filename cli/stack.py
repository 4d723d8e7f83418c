"""``pushinbox up``: the whole stack in one terminal, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from dispatcher.api import Dispatcher
from dispatcher.demo import TEAM, seed
from dispatcher.log import configure as configure_logging
from dispatcher.testing import RedisServer


def run_stack(ctx: Any, *, demo: bool, data_dir: str, port: int, url_given: bool) -> None:
    server: RedisServer | None = None
    children: list[subprocess.Popen[bytes]] = []
    url = ctx.url
    configure_logging()
    try:
        if not url_given:
            folder = Path(data_dir).resolve() / "redis"
            server = RedisServer(port=port, appendonly=True, directory=str(folder))
            try:
                server.start()
            except RuntimeError as exc:
                raise click.ClickException(
                    f"could not start the embedded Redis on port {port} "
                    f"(already running? try --port): {exc}"
                ) from exc
            url = server.url
            click.echo(f"Redis      {url}  (append-only file in {folder})")
        d = Dispatcher.from_url(url)
        d.scripts.load_all(d.redis)
        d.ping()
        env = {**os.environ, "REDIS_URL": url}
        children.append(subprocess.Popen(
            [sys.executable, "-m", "cli", "--redis-url", url, "worker"], env=env))
        click.echo("Worker     RQ worker with scheduler and reconciler (pid "
                   f"{children[-1].pid})")
        if demo:
            counts = seed(d)
            click.echo(f"Demo       team '{TEAM}' seeded: {counts}")
            click.echo(_next_steps(url, port, url_given))
        click.echo("Running. Ctrl-C stops everything started here.")
        while all(ch.poll() is None for ch in children):
            time.sleep(0.5)
        click.echo("a child process stopped; shutting down", err=True)
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        for ch in children:
            if ch.poll() is None:
                ch.send_signal(signal.SIGTERM)
        for ch in children:
            try:
                ch.wait(timeout=10)
            except subprocess.TimeoutExpired:
                ch.kill()
        if server is not None:
            server.stop()


def _next_steps(url: str, port: int, url_given: bool) -> str:
    pre = ".venv/bin/pushinbox" + (f" --redis-url {url}" if url_given else "")
    return f"""
Try, in another terminal:
  {pre} stock demo                     # waiting messages per channel
  {pre} preview demo -n 5              # what the next presses will get, and why
  {pre} login demo alice
  {pre} next demo alice                # process a new message
  {pre} reply demo alice <message id>  # then press next again
  {pre} ingest demo --id hello-1 --conversation c-hello --customer me \\
        --channel webchat --text "Hi there" --customer-tag VIP
  {pre} stats demo alice
  {pre} logout demo alice              # alice's messages go back, marked reassigned
  {pre} check                          # verify every invariant
"""
