"""Test helpers: a real redis-server started on a free port, as pushinbox's own tests use.

Use it in your integration tests the way we do (``pytest_plugins = ["dispatcher.testing"]``)::

    def test_my_connector_pushes_messages(dispatcher):
        dispatcher.create_team("acme")
        ...

The servers themselves live in ``dispatcher.servers`` (no pytest there: the stack and the
benchmarks use them); this module adds the fixtures. Never a stand-in: the Lua scripts need
the real thing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import redis
import redis.cluster

from dispatcher.api import Dispatcher
from dispatcher.servers import (
    FakeClock,
    RedisClusterServers,
    RedisServer,
    SentinelSet,
    ServiceProcess,
    embedded_redis_server_binary,
    free_port,
    redis_server_binary,
)

__all__ = [
    "FakeClock",
    "RedisClusterServers",
    "RedisServer",
    "SentinelSet",
    "ServiceProcess",
    "dispatcher",
    "embedded_redis_server_binary",
    "free_port",
    "redis_client",
    "redis_cluster",
    "redis_server",
    "redis_server_binary",
    "service",
]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole test session, on a free port."""
    server = RedisServer().start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on an empty database (flushed before each test)."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def dispatcher(redis_client: redis.Redis) -> Dispatcher:
    """A Dispatcher on the empty database, running long moves inline."""
    return Dispatcher(redis_client)


@pytest.fixture(scope="session")
def service(redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """The HTTP service running against ``redis_server`` (long moves inline). Webhooks may
    point at loopback (a test's own receiver): PUSHINBOX_HOOK_ALLOW=127.0.0.1/32."""
    proc = ServiceProcess(redis_server.url, env={"PUSHINBOX_HOOK_ALLOW": "127.0.0.1/32"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real 3-master Redis Cluster on loopback for the whole session."""
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()
