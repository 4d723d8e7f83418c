"""How pushinbox connects to Redis, whatever the installed redis-py makes the default.

redis-py 8 reads a reply for 5 s at most (before: no limit) and then sends the command again,
up to ten times. A script is atomic and bounded, but some run long on a large team (`check`
walks the whole team: seconds at a few hundred thousand messages); sent again, it is refused
BUSY while the first copy runs, or it runs twice. pushinbox's clients wait for a script's
answer: these tests run a script longer than that default through the clients the CLI, the
workers and the service make from a Redis URL. redis-py 8 also caps its pools at 100
connections and refuses the next caller at once: a burst of 150 threads sharing one
Dispatcher is served on one server, through a Cluster and through Sentinel. And redis-py 8's
default client sends a command again when the connection drops before its answer, so a
script runs twice: pushinbox's clients report the lost connection instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import redis

from dispatcher.connection import connect, connect_async
from dispatcher.testing import RedisClusterServers, RedisServer, SentinelSet

#: Counts its runs, then keeps Redis busy for ARGV[1] seconds (longer than redis-py 8's
#: default read timeout of 5 s).
LONG_SCRIPT = """
redis.call('INCR', KEYS[1])
local function now() local t = redis.call('TIME'); return t[1] * 1000000 + t[2] end
local start = now()
while now() - start < tonumber(ARGV[1]) * 1000000 do end
return 'done'
"""
LONG_S = 5.5


def test_a_script_longer_than_redis_pys_default_timeout_is_answered_and_runs_once(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    client = connect(redis_server.url)
    started = time.monotonic()
    assert client.eval(LONG_SCRIPT, 1, "runs", LONG_S) == b"done"
    assert time.monotonic() - started >= LONG_S
    assert redis_client.get("runs") == b"1"


def test_the_services_client_waits_for_a_long_script_too(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    async def run() -> bytes:
        client = connect_async(redis_server.url)
        try:
            return await client.eval(LONG_SCRIPT, 1, "runs", LONG_S)
        finally:
            await client.aclose()

    assert asyncio.run(run()) == b"done"
    assert redis_client.get("runs") == b"1"


def test_the_cli_waits_for_a_long_check_through_sentinel_too() -> None:
    """A check after a failover is what an operator runs through Sentinel; there a client
    gives up reading after 5 s (a primary cut off must be left in time), which would refuse
    a check of a large team (BUSY). The CLI's client waits for it."""
    from cli.base import Ctx
    from dispatcher.connection import connect as plain

    url = "redis+sentinel://127.0.0.1:1/mymaster/0"  # not reached: the pool connects lazily
    assert plain(url).connection_pool.connection_kwargs["socket_timeout"] == 5.0
    ctx = Ctx(url, as_json=False, inline=True)
    assert ctx.d.redis.connection_pool.connection_kwargs["socket_timeout"] is None


def _burst(url: str, pause: Callable[[], None], callers: int = 150) -> list[Exception]:
    """``callers`` threads sharing one Dispatcher made from ``url`` ask for the stock at once,
    while Redis holds every call (``pause``): what each was refused."""
    import threading
    import uuid

    from dispatcher import Dispatcher
    from dispatcher.errors import PushinboxError

    d = Dispatcher.from_url(url)
    team = f"burst{uuid.uuid4().hex[:8]}"  # a session's cluster holds other tests' teams
    d.create_team(team)
    errors: list[Exception] = []
    start = threading.Barrier(callers)

    def caller() -> None:
        start.wait()
        try:
            d.stock(team)
        except PushinboxError as exc:
            errors.append(exc)

    pause()  # every caller holds a connection at once
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_a_dispatcher_shared_by_many_threads_serves_them_all(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """A library user's web app shares one Dispatcher between its threads. redis-py 8 caps a
    plain pool at 100 connections and refuses the 101st caller at once ("Too many
    connections"); pushinbox's pool makes a caller wait for a free connection instead (as the
    service's does), so a burst larger than the pool is served, not refused."""
    before = redis_client.info("stats")["total_connections_received"]
    assert _burst(redis_server.url, lambda: redis_client.client_pause(500, all=True)) == []
    opened = redis_client.info("stats")["total_connections_received"] - before
    assert opened < 100  # the pool's 64, not one a caller (a margin for the server's others)


def test_through_a_cluster_a_burst_of_threads_is_served_too(
        redis_cluster: RedisClusterServers) -> None:
    """The same through a Redis Cluster, whose client keeps a pool per node (redis-py 8 caps
    each at 100 and refuses past it; before 8 they had no cap, as pushinbox asks again)."""
    def pause() -> None:
        for server in redis_cluster.servers:
            server.client().client_pause(500, all=True)

    assert _burst(redis_cluster.url, pause) == []


def test_through_sentinel_a_burst_of_threads_is_served_too() -> None:
    ha = SentinelSet().start()
    try:
        primary = redis.Redis(port=ha.primary.port)
        assert _burst(ha.url, lambda: primary.client_pause(500, all=True)) == []
    finally:
        ha.stop()


class ReplyLost:
    """A TCP relay to Redis that loses the reply of the first command containing ``marker``:
    it passes the command on, then hangs up on the client (a connection cut after Redis ran
    it, before the answer arrived: a failover, a network blip)."""

    def __init__(self, port: int, marker: bytes) -> None:
        import socket
        import threading

        self.port, self.marker, self.cut = port, marker, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            lost = threading.Event()

            def up(c: socket.socket = client, u: socket.socket = upstream,
                   lost: threading.Event = lost) -> None:
                with contextlib.suppress(OSError):
                    while data := c.recv(65536):
                        cut = self.marker in data and not self.cut
                        if cut:  # what Redis answers to this is dropped (set before it runs)
                            self.cut = True
                            lost.set()
                        u.sendall(data)
                        if cut:
                            time.sleep(0.2)
                            c.shutdown(socket.SHUT_RDWR)
                            c.close()
                            return

            def down(c: socket.socket = client, u: socket.socket = upstream,
                     lost: threading.Event = lost) -> None:
                with contextlib.suppress(OSError):
                    while data := u.recv(65536):
                        if not lost.is_set():
                            c.sendall(data)

            threading.Thread(target=up, daemon=True).start()
            threading.Thread(target=down, daemon=True).start()

    def close(self) -> None:
        self.listener.close()


#: Counts its runs (what a press without a request id is: it would push again).
COUNTING_SCRIPT = "return redis.call('INCR', KEYS[1])"


def test_a_script_whose_answer_was_lost_is_not_sent_again(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """redis-py 8's default client (``redis.Redis(host=..., port=...)``, not ``from_url``)
    sends a command again when the connection drops before its answer (ten retries): a
    script that ran is run twice; this test fails with it. The clients pushinbox makes
    from a URL report the lost connection instead (the service: a 503; a press retried by
    the caller with its request id answers the same push)."""
    for make in (lambda url: connect(url), lambda url: connect_async(url)):
        redis_client.delete("runs")
        relay = ReplyLost(redis_server.port, b"INCR")
        try:
            client = make(relay.url)
            try:
                if isinstance(client, redis.Redis):
                    client.eval(COUNTING_SCRIPT, 1, "runs")
                else:
                    asyncio.run(client.eval(COUNTING_SCRIPT, 1, "runs"))
                raise AssertionError("the lost answer was not reported")
            except redis.ConnectionError:
                pass
            time.sleep(0.3)
            assert redis_client.get("runs") == b"1"  # run once, not sent again
        finally:
            relay.close()
