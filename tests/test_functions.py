"""The scripts as one function library (FCALL, Redis >= 7) give the same results as EVALSHA:
the same day, the same refusals, the same recovery when the server lost them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis
from conftest import TEAM, make_team, message

from dispatcher import AsyncDispatcher, Dispatcher, NotFoundError, ValidationError, ops, scripts
from dispatcher.testing import FakeClock, RedisServer


def _day(d: Dispatcher) -> list[object]:
    """A short day touching most scripts; what each step answered."""
    make_team(d, login=True)
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    out: list[object] = [d.ingest_many(TEAM, [message(1), message(2, customer_tags=["VIP"]),
                                              message(3, conv="c1")])]
    push = d.next(TEAM, "ann")
    out.append([(m.id, m.group) for m in push.messages])
    out.append(d.reply(TEAM, "ann", push.messages[0].id))
    out.append([m.id for m in d.next(TEAM, "bob").messages])
    out.append(d.request_help(TEAM, "bob", "m1"))
    out.append(d.logout(TEAM, "bob"))
    out.append([(m.id, m.state) for m in d.messages(TEAM, ["m1", "m2", "m3"])])
    report = d.check(TEAM)
    assert report.ok, report.problems
    out.append(report.counts)
    return out


def test_a_day_through_the_function_library_answers_what_evalsha_answers(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    by_evalsha = _day(Dispatcher(redis_client, clock=clock, functions=False))
    redis_client.flushall()
    by_fcall = _day(Dispatcher(redis_client, clock=clock, functions=True))
    assert by_fcall == by_evalsha
    assert redis_client.function_list()  # it really went through FCALL


def test_a_refusal_from_a_function_names_its_field(redis_client: redis.Redis) -> None:
    d = Dispatcher(redis_client, functions=True)
    with pytest.raises(NotFoundError) as exc:
        d.stock("nobody")
    assert exc.value.field == "team"
    assert "script:" not in exc.value.message


def test_a_flushed_or_new_library_is_loaded_again_at_the_next_call(
        redis_client: redis.Redis) -> None:
    d = make_team(Dispatcher(redis_client, functions=True), login=True)
    d.ingest(TEAM, message(1))
    redis_client.function_flush()
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    code, prefix = scripts.library()
    assert code.startswith("#!lua name=pushinbox_") and prefix.startswith("pi")


def test_waiting_for_replicas_goes_through_the_library_too(redis_client: redis.Redis) -> None:
    # No replica here: WAIT answers 0 after its timeout, the call still answers.
    d = make_team(Dispatcher(redis_client, functions=True, wait_replicas=1,
                             wait_timeout_ms=10), login=True)
    assert d.ingest(TEAM, message(1)) == "queued"
    assert d.next(TEAM, "ann").messages[0].id == "m1"


def test_the_asyncio_driver_loads_and_calls_the_library(redis_client: redis.Redis,
                                                        redis_server: object) -> None:
    import redis.asyncio as aredis

    async def go() -> list[str]:
        client = aredis.Redis(port=redis_server.port)  # type: ignore[attr-defined]
        d = AsyncDispatcher(client, functions=True)
        assert await d.ready()
        await d.run(ops.create_team(TEAM))
        await d.run(ops.set_role(TEAM, "agent"))
        await d.run(ops.set_advisor(TEAM, "ann", "agent"))
        await d.run(ops.login(TEAM, "ann"))
        await d.run(ops.ingest_one(TEAM, message(1)))
        push = await d.run(ops.next_message(TEAM, "ann"))
        await client.aclose()
        return [m.id for m in push.messages]

    assert asyncio.run(go()) == ["m1"]


def test_by_default_redis_7_is_called_through_the_library(redis_client: redis.Redis) -> None:
    redis_client.function_flush()
    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest(TEAM, message(1))
    assert d.functions is True
    library = redis_client.function_list()[0]
    assert dict(zip(library[::2], library[1::2], strict=True))[b"library_name"].startswith(
        b"pushinbox_")
    before = redis_client.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0)
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    assert redis_client.info("commandstats")["cmdstat_fcall"]["calls"] == before + 1


def test_the_setting_forces_evalsha_and_names_itself_when_wrong(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHINBOX_FUNCTIONS", "0")
    redis_client.function_flush()
    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest(TEAM, message(1))
    assert d.functions is False and redis_client.function_list() == []
    monkeypatch.setenv("PUSHINBOX_FUNCTIONS", "sometimes")
    with pytest.raises(ValidationError) as exc:
        Dispatcher(redis_client)
    assert exc.value.field == "PUSHINBOX_FUNCTIONS"


def test_a_new_driver_does_not_load_the_library_again(redis_client: redis.Redis) -> None:
    # Each CLI call and each forked RQ job makes a driver: compiling the library blocks Redis
    # for milliseconds, so it happens only when the server lacks it.
    redis_client.function_flush()
    make_team(Dispatcher(redis_client), login=True)

    def loads() -> int:
        stat = redis_client.info("commandstats").get("cmdstat_function|load", {})
        return int(stat.get("calls", 0))

    before = loads()
    assert before >= 1
    for i in range(5):
        d = Dispatcher(redis_client)
        d.ingest(TEAM, message(i))
        assert d.functions is True
    assert loads() == before


@pytest.mark.parametrize(("denied", "probe"), [
    # a managed service's policy: scripts, but not loading functions
    ("-function", lambda c: c.function_list()),
    # managed services often deny @dangerous, INFO among it: the version cannot be asked
    ("-info", lambda c: c.info("server")),
])
def test_a_user_the_library_is_refused_to_is_served_with_evalsha(
        redis_client: redis.Redis, redis_server: RedisServer, denied: str,
        probe: Callable[[redis.Redis], object]) -> None:
    redis_client.function_flush()
    redis_client.acl_setuser("limited", enabled=True, nopass=True, keys="*", channels="*",
                             commands=["+@all", denied], reset=True)
    try:
        client = redis.Redis(port=redis_server.port, username="limited", password="x")
        with pytest.raises(redis.ResponseError):
            probe(client)
        d = make_team(Dispatcher(client), login=True)
        d.ingest(TEAM, message(1))
        assert d.functions is False
        assert d.next(TEAM, "ann").messages[0].id == "m1"
    finally:
        redis_client.acl_deluser("limited")


@pytest.mark.parametrize("functions", [False, True])
def test_readiness_loads_what_the_server_lost_on_either_path(
        redis_client: redis.Redis, redis_server: RedisServer, functions: bool) -> None:
    import redis.asyncio as aredis

    redis_client.script_flush()
    redis_client.function_flush()

    def loads() -> int:
        stat = redis_client.info("commandstats").get("cmdstat_function|load", {})
        return int(stat.get("calls", 0))

    async def go() -> bool:
        client = aredis.Redis(port=redis_server.port)
        d = AsyncDispatcher(client, functions=functions)
        ok = await d.ready()
        after_first = loads()
        for _ in range(3):  # the probes that follow load nothing more
            assert await d.ready()
        assert loads() == after_first
        await client.aclose()
        return ok

    assert asyncio.run(go())
    sha = Dispatcher(redis_client, functions=False).scripts["next"].sha
    assert redis_client.script_exists(sha) == [not functions]
    assert bool(redis_client.function_list()) is functions
