"""Connecting to the dispatcher's Redis: one server (``redis://``, ``rediss://``), a Redis
Cluster (``redis+cluster://host:port``, any node; the client discovers the rest), or a primary
watched by Redis Sentinel (``redis+sentinel://host:port,host:port/<service>/<db>``: the client
asks the sentinels for the current primary and again after a failover). Every key of a team
shares its hash slot, so the same scripts run unchanged on all three."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from dispatcher import defaults
from dispatcher.errors import ValidationError

__all__ = ["CLUSTER_SCHEMES", "SENTINEL_SCHEME", "ScriptLane", "check_url", "connect",
           "connect_async", "is_cluster", "lane_for"]

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SENTINEL_SCHEME = "redis+sentinel://"


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int]:
    rest = url[len(SENTINEL_SCHEME):]
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    if not hosts or not service:
        raise ValueError("a Sentinel URL reads redis+sentinel://host:port[,host:port]/service[/db]")
    nodes = []
    for h in hosts.split(","):
        host, _, port = h.rpartition(":")
        nodes.append((host or "127.0.0.1", int(port)))
    return nodes, service, int(db or 0)


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def _plain(url: str) -> str:
    return url.replace("+cluster", "", 1)


def check_url(url: str) -> str:
    """``url`` if it names a Redis this module can connect to, else a ValidationError."""
    try:
        if url.startswith(SENTINEL_SCHEME):
            _sentinel_parts(url)
        else:
            redis.connection.parse_url(_plain(url))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"the Redis URL {url!r} is malformed: {exc} (redis://host:port/db, "
            "redis+cluster://host:port, redis+sentinel://host:port/service/db)",
            field="redis_url") from exc
    return url


#: What every client made here sets, whatever the installed redis-py's defaults: no limit on
#: reading a reply. A script is atomic and bounded, but some run long on a large team
#: (`check` walks the whole team: ~5 s at 200,000 messages on a 2-core machine); redis-py 8
#: gives up reading after 5 s by default and sends the command again, which Redis refuses
#: BUSY while the first copy runs, or runs twice. Connecting still times out (redis-py's 5 s);
#: a Redis that stalls mid-call (paused, not gone) holds its callers until it answers, as
#: with every redis-py before 8 (the asyncio lane's callers waiting for a connection give up
#: after ASYNC_POOL_WAIT_S: a 503).
#: Through Sentinel a read still times out after 5 s: a long-running process must leave a
#: master cut off by a failover in time (the CLI asks for no timeout there: cli/base.py).
_CLIENT_DEFAULTS: dict[str, Any] = {"socket_timeout": None}

#: Through Sentinel and a Cluster the client's pools are redis-py's own (a pool per primary,
#: per node), which redis-py 8 caps at 100 connections and which then refuse the next caller
#: at once ("Too many connections", a 503 for the service's 101st concurrent request). They
#: have no cap here, as before redis-py 8: a burst opens connections (Redis allows 10,000
#: clients by default); on one server a bounded pool makes it wait instead (below).
_UNCAPPED = 2**31


def connect(url: str, **kwargs: Any) -> Any:
    """A blocking client for ``url`` (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
    check_url(url)
    if url.startswith(SENTINEL_SCHEME):
        nodes, service, db = _sentinel_parts(url)
        sentinel = Sentinel(nodes, socket_timeout=1.0)  # type: ignore[no-untyped-call]
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            service, db=db, **{"socket_timeout": 5.0, "max_connections": _UNCAPPED, **kwargs})
    kwargs = {**_CLIENT_DEFAULTS, **kwargs}
    if is_cluster(url):
        return RedisCluster.from_url(_plain(url), **{"max_connections": _UNCAPPED, **kwargs})
    # A bounded pool that makes a burst of threads wait for a connection (as the asyncio
    # client's below), where redis-py 8's default pool refuses the 101st at once.
    size = kwargs.pop("max_connections", defaults.POOL_SIZE)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=size,
                                                 timeout=defaults.ASYNC_POOL_WAIT_S, **kwargs)
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


def connect_async(url: str, **kwargs: Any) -> Any:
    """An asyncio client for ``url``."""
    check_url(url)
    if url.startswith(SENTINEL_SCHEME):
        nodes, service, db = _sentinel_parts(url)
        sentinel = AsyncSentinel(nodes, socket_timeout=1.0)  # type: ignore[no-untyped-call]
        return sentinel.master_for(service, db=db, **{"socket_timeout": 5.0,
                                                      "max_connections": _UNCAPPED, **kwargs})
    kwargs = {**_CLIENT_DEFAULTS, **kwargs}
    if is_cluster(url):
        return AsyncRedisCluster.from_url(_plain(url),
                                          **{"max_connections": _UNCAPPED, **kwargs})
    # A bounded pool that makes a burst of callers wait for a connection (up to 10 s, then
    # UnavailableError: 503), where redis-py's default pool would refuse them outright.
    size = kwargs.pop("max_connections", defaults.ASYNC_POOL_SIZE)
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=size,
                                                  timeout=defaults.ASYNC_POOL_WAIT_S, **kwargs)
    return aredis.Redis.from_pool(pool)  # closing the client closes its pool


class ScriptLane:
    """The asyncio driver's script calls, on connections of their own borrowed from a plain
    ``redis.asyncio`` pool, without the client's per-command layers: its command packing in
    Python (hiredis packs here), connection-pool lock and condition, retry wrapper, response
    callbacks and observability hooks cost more client CPU per call than the rest of a
    script call (docs/performance.md, "A leaner asyncio call").

    At most ``size`` calls at once (more wait their turn, for ``wait_s`` at most); a
    connection is borrowed from the pool the first time it is needed and kept, so the pool's
    ``disconnect`` (the client's ``aclose``) closes it with the rest. Before each use a
    connection that saw its server hang up (a Redis restarted meanwhile) connects again, as
    the pool does; a call whose connection turns out closed is made again on a new one
    (after short pauses: a Redis coming back from a restart);
    a call that fails otherwise (timed out, cancelled) drops its connection, so no reply is
    left for the next caller to read, and is not retried (the script may have run: the
    caller gets UnavailableError)."""

    def __init__(self, pool: Any, size: int, wait_s: float) -> None:
        self._pool = pool
        self._idle: list[Any] = []
        self._free = size  # turns nobody holds
        # Callers waiting for a turn, first come first served, each with its deadline; a
        # turn given back goes straight to the first of them. One timer for the lane (at the
        # first waiter's deadline) instead of asyncio.timeout and a semaphore per waiting
        # call: under load most calls wait, and those cost ~10 % of the service's CPU per
        # request (docs/performance.md, "The lane's own queue").
        self._waiters: collections.deque[tuple[asyncio.Future[None], float]] = \
            collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._wait_s = wait_s
        self._loading = asyncio.Lock()
        self._loaded: dict[str, int] = {}

    def loads(self, what: str) -> int:
        """How many times ``what`` (a script's sha, the library's name) was loaded through
        this lane: a caller notes it before its call, for ``load``."""
        return self._loaded.get(what, 0)

    async def load(self, what: str, seen: int, command: tuple[Any, ...]) -> None:
        """Load what a call found missing on the server (a fresh or restarted Redis), once
        for all the callers that found it missing together: one runs ``command`` (SCRIPT
        LOAD, FUNCTION LOAD: compiling the library blocks Redis for milliseconds), the
        others wait for it, see it done since they looked (``seen``), and call again. On a
        lane connection: a burst of callers needs no connection of the pool."""
        async with self._loading:
            if self._loaded.get(what, 0) != seen:
                return
            await self.call(command)
            self._loaded[what] = seen + 1

    async def _turn(self) -> None:
        """A turn (a connection to use), waited for at most ``wait_s`` (the pool's own wait),
        then a ConnectionError (UnavailableError, 503) as the pool gives: a stalled Redis must
        not queue callers for ever."""
        if self._free > 0:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append((fut, loop.time() + self._wait_s))
        if self._timer is None:
            self._timer = loop.call_at(self._waiters[0][1], self._expire)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._give_back()  # handed a turn as it was cancelled: the next one's
            raise

    def _give_back(self) -> None:
        """A turn ends: it goes to the first caller still waiting, else back to the lane."""
        waiters = self._waiters
        while waiters:
            fut, _ = waiters.popleft()
            if not fut.done():  # (one cancelled meanwhile left its place empty)
                fut.set_result(None)
                return
        self._free += 1

    def _expire(self) -> None:
        """The lane's timer: the callers whose wait is over give up; set again for the next
        deadline while any wait."""
        self._timer = None
        waiters = self._waiters
        loop = asyncio.get_running_loop()
        now = loop.time()
        while waiters and (waiters[0][0].done() or waiters[0][1] <= now):
            fut, _ = waiters.popleft()
            if not fut.done():
                fut.set_exception(redis.ConnectionError(
                    f"no connection came free within {self._wait_s:g} s: Redis is slow or "
                    "stalled"))
        if waiters:
            self._timer = loop.call_at(waiters[0][1], self._expire)

    async def call(self, command: tuple[Any, ...]) -> Any:
        packed = hiredis.pack_command(command)
        await self._turn()
        try:
            conn = self._idle.pop() if self._idle else await self._pool.get_connection()
            try:
                for pause in defaults.LANE_RECONNECT_PAUSES_S:
                    try:
                        return await self._exchange(conn, packed)
                    except redis.ConnectionError:
                        # The server hung up on it while it sat idle, and the loop had not
                        # seen it yet, or Redis is coming back (restarted): again, connected
                        # anew, after a short pause. redis-py's own path retries so too
                        # (redis-py 5-7 three times over about a second, 8 ten times).
                        await asyncio.sleep(pause)
                return await self._exchange(conn, packed)
            finally:
                self._idle.append(conn)
        finally:
            self._give_back()

    @staticmethod
    async def _exchange(conn: Any, packed: bytes) -> Any:
        if not conn.is_connected or await conn.can_read():
            await conn.disconnect()  # closed by the server, or data left unread
            await conn.connect()
        try:
            writer = getattr(conn, "_writer", None)
            if writer is not None and not writer.is_closing():
                # into the transport's buffer at once, without drain (whose timeout costs a
                # task per call): the caller waits for the reply anyway, and a stuck socket
                # times out in that read, after socket_timeout as before
                writer.write(packed)
            else:
                await conn.send_packed_command(packed, check_health=False)
            return await conn.read_response()
        except redis.ResponseError:
            raise  # the whole reply was read: the connection is ready for the next call
        except BaseException:
            await conn.disconnect(nowait=True)  # mid-call (cancelled, cut): state unknown
            raise


_PLAIN_POOLS = (aredis.ConnectionPool, aredis.BlockingConnectionPool)
_LANE_ATTR = "_pushinbox_script_lane"


def lane_for(client: Any) -> ScriptLane | None:
    """The one ScriptLane of ``client``'s pool (half its connections), or None where the pool
    is not a plain one: a Sentinel pool's connections find the new primary after a failover
    through redis-py's retries, and a Cluster client routes each call itself. The lane lives
    on its pool, so it goes with it (a registry of lanes would keep every pool ever used:
    a lane's connections lead back to their pool)."""
    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) not in _PLAIN_POOLS or pool.max_connections < 2:
        return None  # (half of one connection is none: the pool keeps it for everything)
    lane: ScriptLane | None = getattr(pool, _LANE_ATTR, None)
    if lane is None:
        wait_s = getattr(pool, "timeout", None) or defaults.ASYNC_POOL_WAIT_S
        lane = ScriptLane(pool, max(1, pool.max_connections // 2), wait_s)
        setattr(pool, _LANE_ATTR, lane)
    return lane
