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
    if not url_given:
        _require_free(port, "--port", "a Redis")
    _require_free(http_port, "--http-port", "an HTTP service")
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
        # Children in sessions of their own: Ctrl-C reaches only this process, which stops
        # them in order (service, worker, then Redis), so none dies with Redis gone under it.
        children.append(subprocess.Popen(
            [sys.executable, "-m", "cli", "--redis-url", url, "worker"], env=env,
            start_new_session=True))
        click.echo("Worker     RQ worker with scheduler and reconciler (pid "
                   f"{children[-1].pid})")
        children.append(subprocess.Popen(
            [sys.executable, "-m", "cli", "--redis-url", url, "serve", "--port",
             str(http_port), "--no-access-log"], env=env, stdout=subprocess.DEVNULL,
            start_new_session=True))
        http = f"http://127.0.0.1:{http_port}"
        _wait_http(http, children[-1])
        click.echo(f"HTTP       {http}  (OpenAPI: {http}/openapi.json, docs: {http}/docs)")
        click.echo(f"Console    {http}/  (advisors)   {http}/ui/supervisor.html  (supervisors)")
        if demo:
            if TEAM in d.teams():  # seeded before: a supervisor's edits and the tokens stay
                click.echo(f"Demo       team '{TEAM}' kept as it is")
            else:
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
        # The service first, then the worker (RQ's warm shutdown deregisters it and releases
        # its scheduler lock, which needs Redis), Redis last.
        for ch in reversed(children):
            if ch.poll() is None:
                ch.send_signal(signal.SIGTERM)
            try:
                ch.wait(timeout=20)
            except subprocess.TimeoutExpired:
                ch.kill()
                ch.wait()
        if server is not None:
            server.stop()


def _require_free(port: int, option: str, what: str) -> None:
    """Refuse, in one line, a port something already listens on (a stranger's Redis would be
    adopted and seeded otherwise)."""
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise click.ClickException(
                f"port {port} is already in use: another stack or {what} listens there; "
                f"choose another with {option}")


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
    """One token per scope for the curl walkthrough, kept across restarts while they still
    work (open tabs stay logged in); otherwise the previous ones are revoked and new made."""
    from dispatcher import tokens

    if path.exists():
        found = dict(line.removeprefix("export ").split("=", 1)
                     for line in path.read_text().splitlines() if line.startswith("export PI_"))
        if set(found) == {"PI_ADMIN", "PI_SUPERVISOR", "PI_ALICE", "PI_INGEST"} and all(
                d.run(tokens.authenticate(t)) is not None for t in found.values()):
            text = path.read_text()
            lines = [f"export PI={http}" if ln.startswith("export PI=") else ln
                     for ln in text.splitlines()]
            path.write_text("\n".join(lines) + "\n")
            return found
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
