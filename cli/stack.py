"""``pushinbox up``: the whole stack in one terminal, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import contextlib
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
from dispatcher.errors import PushinboxError
from dispatcher.log import configure as configure_logging
from dispatcher.servers import RedisServer


def run_stack(ctx: Any, *, demo: bool, data_dir: str, port: int, http_port: int,
              url_given: bool) -> None:
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
        # A stack on one's own machine: webhooks may reach local receivers (serve and worker
        # alone refuse loopback and private addresses unless the operator allows them).
        env = {"PUSHINBOX_HOOK_ALLOW": "127.0.0.0/8,::1/128", **os.environ, "REDIS_URL": url}
        children.append(subprocess.Popen(
            [sys.executable, "-m", "cli", "--redis-url", url, "worker"], env=env))
        click.echo("Worker     RQ worker with scheduler and reconciler (pid "
                   f"{children[-1].pid})")
        children.append(subprocess.Popen(
            [sys.executable, "-m", "cli", "--redis-url", url, "serve", "--port",
             str(http_port), "--no-access-log"], env=env, stdout=subprocess.DEVNULL))
        http = f"http://127.0.0.1:{http_port}"
        _wait_http(http, children[-1])
        click.echo(f"HTTP       {http}  (OpenAPI: {http}/openapi.json, docs: {http}/docs)")
        click.echo(f"Console    {http}/  (advisors)   {http}/ui/supervisor.html  (supervisors)")
        if demo:
            counts = seed(d)
            click.echo(f"Demo       team '{TEAM}' seeded: {counts}")
            env_file = Path(data_dir).resolve() / "demo.env"
            made = _write_demo_tokens(d, env_file, http)
            click.echo(f"Tokens     log in to the console as alice with  {made['PI_ALICE']}")
            click.echo(f"           to the supervisor page with          {made['PI_SUPERVISOR']}")
            click.echo(f"           all of them for docs/api.md:          source {env_file}")
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


def _wait_http(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1):
                return
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"the HTTP service did not start on {base}") from exc
            time.sleep(0.1)


def _write_demo_tokens(d: Dispatcher, path: Path, http: str) -> dict[str, str]:
    """One token per scope for the curl walkthrough; the previous demo tokens are revoked."""
    from dispatcher import tokens

    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("# ids:"):
                for token_id in line.split(":", 1)[1].split():
                    with contextlib.suppress(PushinboxError):
                        d.run(tokens.revoke_token(token_id))
    made = {
        "PI_ADMIN": d.run(tokens.create_token("admin", name="demo admin")),
        "PI_SUPERVISOR": d.run(tokens.create_token("supervisor", team=TEAM,
                                                   name="demo supervisor")),
        "PI_ALICE": d.run(tokens.create_token("advisor", team=TEAM, advisor="alice",
                                              name="demo advisor alice")),
        "PI_INGEST": d.run(tokens.create_token("ingest", teams=[TEAM], name="demo connector")),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# pushinbox demo tokens (written by `pushinbox up --demo`)",
             f"# ids: {' '.join(t.info.id for t in made.values())}",
             f"export PI={http}"]
    lines += [f"export {name}={t.token}" for name, t in made.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return {name: t.token for name, t in made.items()}


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
