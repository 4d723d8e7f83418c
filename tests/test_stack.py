"""`pushinbox up`: the stack a newcomer starts with `make run`, and stops with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatcher.testing import free_port


def _cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "--redis-url",
                           f"redis://127.0.0.1:{port}/0", *args],
                          capture_output=True, text=True, timeout=60)


def _up(tmp_path: Path, port: int, *extra: str, data: str = "data") -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # a process group of its own, as a terminal's job is
        [sys.executable, "-m", "cli", "up", "--port", str(port), "--http-port", str(free_port()),
         "--data-dir", str(tmp_path / data), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RQ_REDIS_URL")},
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Running."):
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    pytest.fail("pushinbox up did not start:\n" + "".join(seen))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_up_demo_starts_everything_and_ctrl_c_stops_it_keeping_the_data(tmp_path: Path) -> None:
    port = free_port()
    proc = _up(tmp_path, port, "--demo")
    try:
        stock = json.loads(_cli(port, "--json", "stock", "demo").stdout)
        assert stock["total"] == 300
        assert _cli(port, "login", "demo", "alice").returncode == 0
        pushed = json.loads(_cli(port, "--json", "next", "demo", "alice").stdout)
        assert pushed["status"] == "assigned"
        first = pushed["messages"][0]["id"]
        assert _cli(port, "reply", "demo", "alice", first).returncode == 0
        held = json.loads(_cli(port, "--json", "next", "demo", "alice").stdout)["messages"]
        assert held  # alice holds a conversation when she logs out
        # the worker started by `up` runs the logout requeue job, within seconds (the
        # reconciler's round is 15 s away at most: the job itself must have finished)
        out = _cli(port, "--json", "logout", "demo", "alice")
        job_id = json.loads(out.stdout)["requeue_job"]
        assert job_id and job_id.startswith("pushinbox-requeue-"), out.stdout
        import redis
        from rq.job import Job, JobStatus

        conn = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while Job.fetch(job_id, connection=conn).get_status() != JobStatus.FINISHED:
            assert time.monotonic() < deadline, "the worker did not run the requeue job"
            time.sleep(0.1)
        assert json.loads(_cli(port, "--json", "current", "demo", "alice").stdout) == []
        assert _cli(port, "check").returncode == 0
    finally:
        _stop(proc)
    assert proc.returncode is not None
    assert _cli(port, "stock", "demo").returncode == 1  # Redis stopped with the stack
    # the append-only file keeps the state across a restart
    proc = _up(tmp_path, port)
    try:
        stats = json.loads(_cli(port, "--json", "stats", "demo", "alice").stdout)
        assert stats["responses"] == 1
        assert _cli(port, "check").returncode == 0
    finally:
        _stop(proc)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")),
                    reason="curl and jq are needed (make test installs them where it can)")
def test_the_curl_walkthrough_in_docs_api_md_works_verbatim_against_up_demo(
        tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 10
    script = "set -euo pipefail\n" + "\n".join(blocks)
    port = free_port()
    proc = _up(tmp_path, port, "--demo", data=".pushinbox")
    try:
        run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        out = run.stdout
        assert '"result":"queued"' in out
        assert '"conversations_moved":1' in out
        assert '"code":"forbidden"' in out
        assert '"field":"channel"' in out
        assert "event: stock" in out and "event: figures" in out
        assert '"status":409' in out  # next after logging out
        assert _cli(port, "check").returncode == 0
    finally:
        _stop(proc)


def test_up_refuses_busy_ports_naming_the_option(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for flag in ("--port", "--http-port"):
            other = "--http-port" if flag == "--port" else "--port"
            done = subprocess.run(
                [sys.executable, "-m", "cli", "up", flag, str(busy), other, str(free_port()),
                 "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60,
                env={k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)})
            assert done.returncode == 1, done.stdout + done.stderr
            assert flag in done.stderr and "Traceback" not in done.stdout + done.stderr
            assert not (tmp_path / "d" / "demo.env").exists()


@pytest.mark.slow
def test_ctrl_c_stops_the_stack_quietly_and_a_restart_keeps_the_demo_as_edited(
        tmp_path: Path) -> None:
    port = free_port()
    proc = _up(tmp_path, port, "--demo")
    env_file = tmp_path / "data" / "demo.env"
    try:
        tokens_before = [ln for ln in env_file.read_text().splitlines() if "PI_" in ln]
        edited = subprocess.run([sys.executable, "-m", "cli", "--redis-url",
                                 f"redis://127.0.0.1:{port}/0", "groups", "set", "demo", "-"],
                                input="groups: []\n", capture_output=True, text=True, timeout=60)
        assert edited.returncode == 0, edited.stderr
    finally:  # Ctrl-C in a terminal reaches the whole foreground process group
        os.killpg(os.getpgid(proc.pid), signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
    assert "Traceback" not in out, out[-3000:]
    proc = _up(tmp_path, port, "--demo")
    try:
        tokens_after = [ln for ln in env_file.read_text().splitlines() if "PI_" in ln]
        assert tokens_after == tokens_before  # open tabs stay logged in
        groups = json.loads(_cli(port, "--json", "groups", "show", "demo").stdout)
        assert groups["groups"] == []  # the supervisor's edit survived the restart
        stock = json.loads(_cli(port, "--json", "stock", "demo").stdout)
        assert stock["total"] == 300  # not seeded twice
        workers = subprocess.run([sys.executable, "-c",
                                  "import redis,sys; r=redis.Redis(port=int(sys.argv[1]));"
                                  "print(r.scard('rq:workers'))", str(port)],
                                 capture_output=True, text=True)
        assert workers.stdout.strip() == "1", workers  # the old worker deregistered
    finally:
        _stop(proc)
