"""Connecting to the dispatcher's Redis: one server (``redis://``, ``rediss://``) or a Redis
Cluster (``redis+cluster://host:port``, any node; the client discovers the rest). Every key of
a team shares its hash slot, so the same scripts run unchanged on either."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def _plain(url: str) -> str:
    return url.replace("+cluster", "", 1)


def connect(url: str, **kwargs: Any) -> Any:
    """A blocking client for ``url`` (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
    if is_cluster(url):
        return RedisCluster.from_url(_plain(url), **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def connect_async(url: str, **kwargs: Any) -> Any:
    """An asyncio client for ``url``."""
    if is_cluster(url):
        return AsyncRedisCluster.from_url(_plain(url), **kwargs)
    return aredis.Redis.from_url(url, **kwargs)
