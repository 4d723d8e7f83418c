"""The asyncio driver's script calls on its ScriptLane against redis.asyncio's own path,
side by side in one run: the same AsyncDispatcher cycles (press, then reply to what it gave;
50 tasks on one event loop and one BlockingConnectionPool, as the HTTP service has), the
two paths alternated ``--reps`` times on one redis-server with 500k waiting. Per path: cycles/s,
the client's CPU per cycle (``time.process_time``) and Redis main-thread CPU per cycle
(``INFO cpu``); medians, and the lane's ratio to redis-py's path. First, without Redis: what a
turn on the lane costs when 50 callers contend for 25 connections (the lane's own queue
against the ``asyncio.Semaphore`` + ``asyncio.timeout`` it replaced in the seventh session).

    python -m bench.lane [--seconds 4] [--reps 4]      (make bench-lane)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

import dispatcher.connection as connection
from bench.core import TEAM, seed
from bench.provenance import provenance
from dispatcher import Dispatcher, ops
from dispatcher.api import AsyncDispatcher
from dispatcher.servers import RedisServer

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = 50


async def _cycles(port: int, seconds: float) -> tuple[int, float]:
    pool = aredis.BlockingConnectionPool(port=port, max_connections=64)
    client = aredis.Redis.from_pool(pool)
    stop = time.monotonic() + seconds
    done = 0

    async def advisor(i: int) -> None:
        nonlocal done
        d = AsyncDispatcher(client)
        adv = f"a{i}"
        while time.monotonic() < stop:
            push = await d.run(ops.next_message(TEAM, adv))
            if not push.messages:
                raise SystemExit("the stock ran out: give more --waiting")
            for m in push.messages:
                await d.run(ops.act("reply", TEAM, adv, m.id))
            done += 1

    cpu = time.process_time()
    await asyncio.gather(*(advisor(i) for i in range(TASKS)))
    cpu = time.process_time() - cpu
    await client.aclose()
    return done, cpu


class _SemaphoreTurns:
    """The lane's turns as they were before its own queue: a semaphore, and a timeout around
    the wait when none was free."""

    def __init__(self, size: int, wait_s: float) -> None:
        self._turns = asyncio.Semaphore(size)
        self._wait_s = wait_s

    async def _turn(self) -> None:
        if not self._turns.locked():
            await self._turns.acquire()
            return
        async with asyncio.timeout(self._wait_s):
            await self._turns.acquire()

    def _give_back(self) -> None:
        self._turns.release()


async def _turns(lane: Any, seconds: float) -> float:
    """Client CPU µs per turn: TASKS callers taking turns of `lane` (half as many), each
    turn one pass of the event loop."""
    n = 0
    stop = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal n
        while time.monotonic() < stop:
            await lane._turn()
            try:
                await asyncio.sleep(0)
            finally:
                lane._give_back()
            n += 1

    cpu = time.process_time()
    await asyncio.gather(*(caller() for _ in range(TASKS)))
    return (time.process_time() - cpu) / n * 1e6


def turn_costs(reps: int, seconds: float = 1.0) -> dict[str, float]:
    size = TASKS // 2
    runs: dict[str, list[float]] = {"semaphore + timeout": [], "lane queue": []}
    for _ in range(reps):
        runs["semaphore + timeout"].append(
            asyncio.run(_turns(_SemaphoreTurns(size, 10), seconds)))
        runs["lane queue"].append(
            asyncio.run(_turns(connection.ScriptLane(None, size, 10), seconds)))
    med = {k: statistics.median(v) for k, v in runs.items()}
    for k, v in med.items():
        print(f"turn, {k:20} {v:6.2f} µs CPU ({min(runs[k]):.2f}-{max(runs[k]):.2f})")
    ratio = med["lane queue"] / med["semaphore + timeout"]
    print(f"turn, lane queue / semaphore + timeout {ratio:.2f}x\n", flush=True)
    return med


def _redis_cpu(d: Dispatcher) -> float:
    info = d.redis.info("cpu")
    return float(info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--waiting", type=int, default=500_000)
    args = ap.parse_args()
    turns = turn_costs(args.reps)
    plain = connection._PLAIN_POOLS
    server = RedisServer().start()
    try:
        d = Dispatcher(server.client())
        seed(d, args.waiting)
        for a in range(TASKS):
            d.set_advisor(TEAM, f"a{a}", "agent")
            d.login(TEAM, f"a{a}")
        asyncio.run(_cycles(server.port, 1.0))  # warm: the library loaded, connections open
        runs: dict[str, list[dict[str, float]]] = {"redis.asyncio": [], "ScriptLane": []}
        for rep in range(args.reps):
            for path, pools in (("redis.asyncio", ()), ("ScriptLane", plain)):
                connection._PLAIN_POOLS = pools  # () turns the lane off: redis-py's path
                before = _redis_cpu(d)
                n, cpu = asyncio.run(_cycles(server.port, args.seconds))
                row = {"cycles_per_s": n / args.seconds, "client_us": cpu / n * 1e6,
                       "redis_us": (_redis_cpu(d) - before) / n * 1e6}
                runs[path].append(row)
                print(f"rep {rep + 1} {path:14} {row['cycles_per_s']:7.0f} cycles/s  client "
                      f"{row['client_us']:5.0f} µs/cycle  Redis {row['redis_us']:5.0f} µs/cycle",
                      flush=True)
    finally:
        connection._PLAIN_POOLS = plain
        server.stop()
    med = {p: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
           for p, rows in runs.items()}
    print(f"\n{'median':24} {'cycles/s':>9} {'client µs':>10} {'Redis µs':>9}")
    for p, m in med.items():
        print(f"{p:24} {m['cycles_per_s']:9.0f} {m['client_us']:10.0f} {m['redis_us']:9.0f}")
    lane, base = med["ScriptLane"], med["redis.asyncio"]
    ratio = {k: lane[k] / base[k] for k in lane}
    print(f"{'lane / redis.asyncio':24} {ratio['cycles_per_s']:9.2f}x "
          f"{ratio['client_us']:9.2f}x {ratio['redis_us']:8.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"lane-{time.strftime('%Y%m%d-%H%M%S')}.json"
    result: dict[str, Any] = {"args": vars(args), "runs": runs, "median": med,
                              "turn_us": turns, "provenance": provenance()}
    out.write_text(json.dumps(result, indent=1))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
