"""Connecting to the dispatcher's Redis: one server (``redis://``, ``rediss://``), a Redis
Cluster (``redis+cluster://host:port``, any node; the client discovers the rest), or a primary
watched by Redis Sentinel (``redis+sentinel://host:port,host:port/<service>/<db>``: the client
asks the sentinels for the current primary and again after a failover). Every key of a team
shares its hash slot, so the same scripts run unchanged on all three."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from dispatcher import defaults
from dispatcher.errors import ValidationError

__all__ = ["CLUSTER_SCHEMES", "SENTINEL_SCHEME", "check_url", "connect", "connect_async",
           "is_cluster"]

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


def connect(url: str, **kwargs: Any) -> Any:
    """A blocking client for ``url`` (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
    check_url(url)
    if is_cluster(url):
        return RedisCluster.from_url(_plain(url), **kwargs)
    if url.startswith(SENTINEL_SCHEME):
        nodes, service, db = _sentinel_parts(url)
        sentinel = Sentinel(nodes, socket_timeout=1.0)  # type: ignore[no-untyped-call]
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            service, db=db, **{"socket_timeout": 5.0, **kwargs})
    return redis.Redis.from_url(url, **kwargs)


def connect_async(url: str, **kwargs: Any) -> Any:
    """An asyncio client for ``url``."""
    check_url(url)
    if is_cluster(url):
        return AsyncRedisCluster.from_url(_plain(url), **kwargs)
    if url.startswith(SENTINEL_SCHEME):
        nodes, service, db = _sentinel_parts(url)
        sentinel = AsyncSentinel(nodes, socket_timeout=1.0)  # type: ignore[no-untyped-call]
        return sentinel.master_for(service, db=db, **{"socket_timeout": 5.0, **kwargs})
    # A bounded pool that makes a burst of callers wait for a connection (up to 10 s, then
    # UnavailableError: 503), where redis-py's default pool would refuse them outright.
    size = kwargs.pop("max_connections", defaults.ASYNC_POOL_SIZE)
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=size, timeout=10,
                                                  **kwargs)
    return aredis.Redis(connection_pool=pool)
