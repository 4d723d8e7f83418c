"""What a benchmark's figures were measured with, written into every results file: this
machine's figures move by half between hours (docs/performance.md), and the client library's
defaults change between releases (redis-py 8: RESP3, a 5 s read timeout, ten retries), so a
file says which commit, redis-server, redis-py, hiredis and Python made it, on how many
cores, and how loaded the machine was when it started.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from dispatcher.servers import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
#: The machine's load and the time when the benchmark started (this module is imported then).
_START = (round(os.getloadavg()[0], 2), time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10,
                              check=False).stdout.strip()
    except OSError:
        return ""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    """The commit (``+changes`` when the checkout has uncommitted ones), the versions, the
    cores, and the load average over the minute before the benchmark started and when."""
    commit = _run("git", "rev-parse", "--short", "HEAD")
    if commit and _run("git", "status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    server = _run(redis_server_binary(), "--version")
    return {
        "commit": commit or None,
        "redis_server": next((w.split("=", 1)[1] for w in server.split() if w.startswith("v=")),
                             server or None),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": _START[0],
        "started": _START[1],
    }
