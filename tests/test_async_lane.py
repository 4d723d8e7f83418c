"""The asyncio driver (the HTTP service's) makes its script calls on connections of their own
(``dispatcher.connection.ScriptLane``): the same answers, recovery at the first call after
Redis restarted, a refusal or a cancelled call never leaving a reply for the next caller to
read, and nothing left open once the client is closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from conftest import TEAM, make_team, message

from dispatcher import AsyncDispatcher, Dispatcher, NotFoundError, ops
from dispatcher.connection import connect_async, lane_for
from dispatcher.testing import RedisServer


def _clients_of(server: RedisServer, name: str) -> int:
    return sum(1 for c in server.client().client_list() if c.get("name") == name)


def test_the_first_calls_after_redis_restarted_are_answered(tmp_path: Path) -> None:
    # The service keeps its connections between requests; Redis restarts meanwhile (same
    # port, same append-only file). Every request after that is answered: none of them is
    # the one that discovers a dead connection.
    server = RedisServer(appendonly=True, appendfsync="always", directory=str(tmp_path)).start()
    try:
        make_team(Dispatcher(server.client()), login=True)

        async def go() -> list[str]:
            client = connect_async(server.url)
            d = AsyncDispatcher(client, functions=True)
            await asyncio.gather(*(d.run(ops.ingest_one(TEAM, message(i))) for i in range(8)))
            assert len(lane_for(client)._idle) > 1  # type: ignore[union-attr]
            server.stop()  # the loop is blocked meanwhile: it has not seen the hang-ups
            server.start()
            pushes = await asyncio.gather(*(d.run(ops.next_message(TEAM, a))
                                            for a in ("ann", "bob", "cid")))
            await client.aclose()
            return sorted(m.id for p in pushes for m in p.messages)

        pushed = asyncio.run(go())
        assert len(set(pushed)) == 3, pushed
    finally:
        server.stop()


def test_a_refused_call_leaves_its_connection_ready_for_the_next(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    make_team(Dispatcher(redis_client), login=True)

    async def go() -> list[str]:
        client = connect_async(redis_server.url, client_name="lane-refusal")
        d = AsyncDispatcher(client, functions=True)
        with pytest.raises(NotFoundError):
            await d.run(ops.next_message(TEAM, "nobody"))
        await d.run(ops.ingest_one(TEAM, message(1)))
        push = await d.run(ops.next_message(TEAM, "ann"))
        assert _clients_of(redis_server, "lane-refusal") == 1
        await client.aclose()
        return [m.id for m in push.messages]

    assert asyncio.run(go()) == ["m1"]


def test_a_call_cancelled_while_redis_answers_late_is_not_answered_to_the_next_caller(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # An HTTP client hangs up while its press waits for a slow Redis: the press is
    # cancelled. Its reply, when it comes, must not be read as the next press's.
    make_team(Dispatcher(redis_client), login=True)
    redis_client.ping()

    async def go() -> tuple[list[str], list[str]]:
        client = connect_async(redis_server.url, max_connections=2)  # a lane of one
        d = AsyncDispatcher(client, functions=True)
        await d.run(ops.ingest_one(TEAM, message(1)))
        await d.run(ops.ingest_one(TEAM, message(2, customer_tags=["x"])))
        redis_client.client_pause(300, all=True)
        first = asyncio.create_task(d.run(ops.next_message(TEAM, "ann")))
        await asyncio.sleep(0.1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        bob = await d.run(ops.next_message(TEAM, "bob"))  # answered once the pause is over
        held = await d.run(ops.current(TEAM, "bob"))
        await client.aclose()
        return [m.id for m in bob.messages], [m.id for m in held]

    pushed, held = asyncio.run(go())
    assert pushed and pushed == held  # bob read his own press's answer, not ann's
    report = Dispatcher(redis_client).check(TEAM)
    assert report.ok, report.problems


def test_closing_the_client_closes_the_lane_connections(redis_server: RedisServer,
                                                        redis_client: redis.Redis) -> None:
    make_team(Dispatcher(redis_client), login=True)

    async def go() -> tuple[int, int]:
        client = connect_async(redis_server.url, client_name="lane-close")
        d = AsyncDispatcher(client, functions=True)
        await asyncio.gather(*(d.run(ops.ingest_one(TEAM, message(i))) for i in range(20)))
        open_ = _clients_of(redis_server, "lane-close")
        await client.aclose()
        await asyncio.sleep(0.1)
        return open_, _clients_of(redis_server, "lane-close")

    open_, left = asyncio.run(go())
    assert open_ > 1
    assert left == 0


def test_the_evalsha_path_goes_by_the_lane_and_loads_what_the_server_lost(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # Redis 6.2 (the embedded server) has no functions: its scripts go by EVALSHA, on the
    # lane too, and a script cache emptied meanwhile is filled again at the next call.
    make_team(Dispatcher(redis_client), login=True)
    redis_client.config_resetstat()

    async def go() -> list[str]:
        client = connect_async(redis_server.url)
        d = AsyncDispatcher(client, functions=False)
        await d.run(ops.ingest_one(TEAM, message(1)))
        redis_client.script_flush()
        await d.run(ops.ingest_one(TEAM, message(2)))
        pushed = [m.id for a in ("ann", "bob")
                  for m in (await d.run(ops.next_message(TEAM, a))).messages]
        assert lane_for(client)._idle  # type: ignore[union-attr]
        await client.aclose()
        return pushed

    assert asyncio.run(go()) == ["m1", "m2"]
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] >= 4 and "cmdstat_fcall" not in stats


def test_a_call_waiting_for_a_free_connection_gives_up_as_the_pool_would(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # Redis stalls; every connection of the lane is waiting on it. A further call does not
    # queue for ever: after the pool's own wait (10 s in the service) it is a 503 like any
    # Redis outage, as it was when the calls waited for the pool itself.
    import redis.asyncio as aredis

    from dispatcher import UnavailableError

    make_team(Dispatcher(redis_client), login=True)
    redis_client.ping()

    async def go() -> list[str]:
        pool = aredis.BlockingConnectionPool.from_url(redis_server.url, max_connections=2,
                                                      timeout=0.3)
        client = aredis.Redis.from_pool(pool)  # a lane of one connection
        d = AsyncDispatcher(client, functions=True)
        await d.run(ops.ingest_one(TEAM, message(1)))
        redis_client.client_pause(1500, all=False)  # writes stall
        first = asyncio.create_task(d.run(ops.next_message(TEAM, "ann")))
        await asyncio.sleep(0.1)
        with pytest.raises(UnavailableError, match="no connection came free"):
            await d.run(ops.next_message(TEAM, "bob"))  # before the stall is over
        pushed = [m.id for m in (await first).messages]
        await client.aclose()
        return pushed

    assert asyncio.run(go()) == ["m1"]


def test_a_client_closed_and_dropped_leaves_no_lane_behind(redis_server: RedisServer,
                                                           redis_client: redis.Redis) -> None:
    # A library user may make a client per task: each one's lane (and the connections it
    # borrowed) goes with its pool, not kept for ever by the lanes' registry.
    import gc

    from dispatcher import connection

    make_team(Dispatcher(redis_client), login=True)

    async def one(i: int) -> None:
        client = connect_async(redis_server.url)
        await AsyncDispatcher(client, functions=True).run(ops.ingest_one(TEAM, message(i)))
        await client.aclose()

    def lanes() -> int:
        gc.collect()
        return sum(isinstance(o, connection.ScriptLane) for o in gc.get_objects())

    before = lanes()
    for i in range(5):
        asyncio.run(one(i))
    assert lanes() == before


@pytest.mark.parametrize("functions", [True, False], ids=["FCALL", "EVALSHA"])
def test_callers_that_find_the_scripts_missing_at_once_load_them_once(
        redis_server: RedisServer, redis_client: redis.Redis, functions: bool) -> None:
    # A fresh or restarted Redis holds no script: the fifty presses arriving together all
    # find them missing. One loads them (compiling the library blocks Redis for
    # milliseconds), the others wait for it; none fails for want of a pool connection.
    import redis.asyncio as aredis

    make_team(Dispatcher(redis_client), advisors=tuple(f"a{i}" for i in range(8)), login=True)
    Dispatcher(redis_client).ingest_many(TEAM, [message(i) for i in range(8)])
    redis_client.function_flush()
    redis_client.script_flush()
    redis_client.config_resetstat()

    async def go() -> list[str]:
        client = aredis.Redis(port=redis_server.port, max_connections=6)  # no waiting
        pushes = await asyncio.gather(*(
            AsyncDispatcher(client, functions=functions).run(ops.next_message(TEAM, f"a{i}"))
            for i in range(8)))
        await client.aclose()
        return [m.id for p in pushes for m in p.messages]

    assert sorted(asyncio.run(go())) == [f"m{i}" for i in range(8)]
    stats = redis_client.info("commandstats")
    loads = stats.get("cmdstat_function|load" if functions else "cmdstat_script|load", {})
    assert loads.get("calls") == 1, stats


@pytest.mark.parametrize("denied", ["-function", "-fcall"])
def test_a_user_the_library_is_refused_to_is_served_with_evalsha_on_the_lane(
        redis_server: RedisServer, redis_client: redis.Redis, denied: str) -> None:
    # An ACL without FUNCTION LOAD, or without FCALL: the asyncio driver decided on the
    # library from the server's version, is refused it on the lane, and serves by EVALSHA.
    make_team(Dispatcher(redis_client), login=True)
    redis_client.function_flush()  # what the admin's calls loaded: the user finds none
    redis_client.acl_setuser("limited", enabled=True, nopass=True, keys="*", channels="*",
                             commands=["+@all", denied], reset=True)
    try:
        async def go() -> tuple[bool | None, list[str]]:
            client = connect_async(f"redis://limited:x@127.0.0.1:{redis_server.port}/0")
            d = AsyncDispatcher(client)
            await d.run(ops.ingest_one(TEAM, message(1)))
            push = await d.run(ops.next_message(TEAM, "ann"))
            await client.aclose()
            return d.functions, [m.id for m in push.messages]

        assert asyncio.run(go()) == (False, ["m1"])
    finally:
        redis_client.acl_deluser("limited")


def test_a_pool_of_one_connection_keeps_it_for_everything(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # Half of one connection is none: a pool that small has no lane, so a read after a
    # press still finds its connection instead of waiting for one the lane kept.
    import redis.asyncio as aredis

    make_team(Dispatcher(redis_client), login=True)
    Dispatcher(redis_client).ingest(TEAM, message(1))

    async def go() -> list[str]:
        pool = aredis.BlockingConnectionPool.from_url(redis_server.url, max_connections=1,
                                                      timeout=0.5)
        client = aredis.Redis.from_pool(pool)
        d = AsyncDispatcher(client, functions=True)
        await d.run(ops.next_message(TEAM, "ann"))
        teams = await d.run(ops.teams())  # a read: a command on the pool
        await client.aclose()
        return teams

    assert TEAM in asyncio.run(go())


def test_callers_waiting_for_a_connection_are_served_in_the_order_they_came(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # The lane's one connection is busy (a blocking read); three calls queue behind it and
    # run first come, first served once it is free.
    async def go() -> list[bytes]:
        client = connect_async(redis_server.url, max_connections=2)  # a lane of one
        lane = lane_for(client)
        assert lane is not None
        busy = asyncio.create_task(lane.call(("BLPOP", "lane-nothing", "0.3")))
        await asyncio.sleep(0.05)
        queued = []
        for who in (b"first", b"second", b"third"):
            queued.append(asyncio.create_task(lane.call(("RPUSH", "lane-order", who))))
            await asyncio.sleep(0.01)
        await asyncio.gather(busy, *queued)
        await client.aclose()
        return redis_client.lrange("lane-order", 0, -1)

    assert asyncio.run(go()) == [b"first", b"second", b"third"]


def test_a_caller_cancelled_as_its_turn_came_passes_the_turn_on() -> None:
    # An HTTP client hangs up just as the connection its press waited for comes free: the
    # turn goes to the next caller, and none is lost (the lane would shrink for good).
    from dispatcher.connection import ScriptLane

    async def go() -> tuple[bool, int]:
        lane = ScriptLane(pool=None, size=1, wait_s=5)
        await lane._turn()  # the one turn, held
        handed = asyncio.create_task(lane._turn())
        waiting = asyncio.create_task(lane._turn())
        left = asyncio.create_task(lane._turn())
        await asyncio.sleep(0)
        left.cancel()  # gives up while waiting: it must not take a turn either
        await asyncio.sleep(0)
        lane._give_back()  # the turn goes to `handed`...
        handed.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await handed
        await asyncio.wait_for(waiting, 1)  # the next one has it
        lane._give_back()
        return left.cancelled(), lane._free

    assert asyncio.run(go()) == (True, 1)
