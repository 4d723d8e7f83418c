"""Redis going away: a clear error, nothing half-written, and recovery without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import TEAM, assert_clean, message

from dispatcher import Dispatcher, UnavailableError
from dispatcher.testing import RedisServer


def test_redis_unreachable_is_a_clear_error_and_the_dispatcher_recovers_by_itself(
    tmp_path: Path,
) -> None:
    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    try:
        d = Dispatcher(server.client())
        d.create_team(TEAM)
        d.set_role(TEAM, "agent")
        d.set_advisor(TEAM, "ann", "agent")
        d.login(TEAM, "ann")
        d.ingest(TEAM, message(1))
        server.stop()
        with pytest.raises(UnavailableError, match="Redis is unreachable"):
            d.ingest(TEAM, message(2))
        with pytest.raises(UnavailableError):
            d.stock(TEAM)
        server.start()  # same port, same append-only file
        # the same Dispatcher object works again: scripts reloaded on NOSCRIPT
        assert d.ingest(TEAM, message(2)) == "queued"
        assert [m.id for m in d.next(TEAM, "ann").messages] == ["m1"]
        assert d.stock(TEAM).total == 1
        assert_clean(d)
    finally:
        server.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
