"""A short soak in `make test` (the long one is `make soak`): random work from many advisors
and upstream services, then every message accounted for and `check` clean."""

from __future__ import annotations

import redis

from cli.soak import run
from dispatcher.testing import RedisServer


def test_a_short_soak_accounts_for_every_message(redis_server: RedisServer,
                                                 redis_client: redis.Redis) -> None:
    report = run(redis_server.url, seconds=12, advisors=12, upstreams=3)
    summary = report.summary()
    assert report.errors == []
    assert report.ingested > 500, summary
    assert report.operations > 2000, summary
    assert report.check_ok, report.problems
    assert report.accounted, summary
    assert report.counts["done"] > 0, summary  # the stock may well be empty at the end
