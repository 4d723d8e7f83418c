"""Core benchmarks: the dispatcher's scripts against a minimal ceiling, side by side in one run.

    python -m bench.core            # default run (1M waiting; about 9.5 minutes on 2 cores)
    python -m bench.core --scale N  # Redis cost per cycle with N waiting vs 10k (bench-10m)
    python -m bench.core --quick    # 100k waiting, shorter cases (about a minute)

Starts its own redis-server on a free loopback port. Every case runs >= 3 times; the table
gives the median, min-max and the ratio to its reference measured in the same run. Redis CPU
per call comes from INFO commandstats (the most stable figure on a shared machine). Raw results
go to bench/results/core-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

from bench import postgres
from bench.provenance import provenance
from cli.bench import (
    CEILING,
    CEILING_INGEST,
    CEILING_REPLY,
    CEILING_REPLY_NEXT,
    GROUPS,
    ceiling,
    ceiling_keys,
    cycles,
    format_table,
    ingest,
    messages,
    p99,
    run_threads,
    script_usec,
    seed_ceiling,
    seed_team,
    summarize,
)
from dispatcher import Dispatcher, defaults
from dispatcher.log import configure as configure_logging
from dispatcher.servers import RedisServer

TEAM = "bench"
CEILING_TEAM = "ceil"


def seed(d: Dispatcher, waiting: int, groups: int = GROUPS) -> None:
    d.redis.flushall()
    seed_team(d, TEAM, waiting, groups)


def case_assign(server: RedisServer, advisors: int, seconds: float) -> dict[str, float]:
    """Push + reply cycles through the Python API; Redis CPU per cycle from commandstats."""
    client = server.client()
    d = Dispatcher(client)
    for a in range(advisors):
        d.set_advisor(TEAM, f"a{a}", "agent")
        d.login(TEAM, f"a{a}")
    return cycles(d, TEAM, advisors, seconds)


def _async_tasks(server: RedisServer, tasks: int, seconds: float,
                 make: Callable[[Any, int], tuple[Callable[[], Awaitable[None]] | None,
                                                  Callable[[], Awaitable[bool]]]]
                 ) -> dict[str, float]:
    """``tasks`` coroutines on one event loop and one redis.asyncio pool. ``make(client, i)``
    gives an untimed ``before`` step (or None) and the timed ``step``, awaited in turn until
    time is up or ``step`` answers False; the latency is that of ``step`` alone."""
    import asyncio

    import redis.asyncio as aredis

    async def main() -> tuple[int, list[float], float]:
        client = aredis.Redis(port=server.port, max_connections=tasks)
        start = time.monotonic()
        stop = start + seconds
        lat: list[float] = []

        async def loop(i: int) -> None:
            before, step = make(client, i)
            while time.monotonic() < stop:
                if before is not None:
                    await before()
                t = time.perf_counter()
                more = await step()
                lat.append((time.perf_counter() - t) * 1000)
                if not more:
                    return

        await asyncio.gather(*(loop(i) for i in range(tasks)))
        elapsed = time.monotonic() - start
        await client.aclose()
        return len(lat), lat, elapsed

    calls, lat, elapsed = asyncio.run(main())
    return {"per_s": calls / elapsed, "p99_ms": p99(lat)}


def case_assign_async(server: RedisServer, advisors: int, seconds: float,
                      functions: bool | None = None, one_call: bool = False
                      ) -> dict[str, float]:
    """The same cycles through AsyncDispatcher (what the HTTP service uses): 50 advisors as
    tasks on one event loop, one connection pool. The latency is that of *next* alone.
    ``one_call``: each cycle is one reply-and-next (the reply to the previous press and the
    next press in one call, as BullMQ's worker completes a job and fetches the next); the
    latency is that call's."""
    from dispatcher import ops
    from dispatcher.api import AsyncDispatcher

    def make(client: Any, i: int) -> tuple[Callable[[], Awaitable[None]] | None,
                                           Callable[[], Awaitable[bool]]]:
        d = AsyncDispatcher(client, functions=functions)
        adv = f"a{i}"
        pending: list[str] = []

        async def reply() -> None:  # to the previous press: part of the cycle, not timed
            for m in pending:
                await d.run(ops.act("reply", TEAM, adv, m))

        async def press() -> bool:
            push = await d.run(ops.next_message(TEAM, adv))
            pending[:] = [m.id for m in push.messages]
            return push.status != "empty"

        async def reply_and_press() -> bool:
            # (a push of several messages: all but the last replied to one by one first)
            for m in pending[:-1]:
                await d.run(ops.act("reply", TEAM, adv, m))
            if pending:
                out = await d.run(ops.reply_next(TEAM, adv, pending[-1]))
                status, messages = out.status, out.messages
            else:
                push = await d.run(ops.next_message(TEAM, adv))
                status, messages = push.status, push.messages
            pending[:] = [m.id for m in messages]
            return status != "empty"
        if one_call:
            return None, reply_and_press
        return reply, press

    return _async_tasks(server, advisors, seconds, make)


def _lane_script(client: Any, source: str) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
    """A script called the way AsyncDispatcher calls its own: on the client's ScriptLane
    (hiredis packing, no redis.asyncio command layers), so the ceilings below measure the
    same client path as the API they are the reference of. The case loads it first."""
    from dispatcher.connection import lane_for

    lane = lane_for(client)
    assert lane is not None, "the bench's asyncio client has a plain pool"
    sha = hashlib.sha1(source.encode()).hexdigest()

    async def call(keys: list[str], args: list[Any]) -> Any:
        return await lane.call(("EVALSHA", sha, len(keys), *keys, *args))
    return call


def case_ceiling_cycle_async(server: RedisServer, advisors: int, seconds: float
                             ) -> dict[str, float]:
    """A minimal cycle through the same asyncio client: the ceiling's assign, then a minimal
    reply script to what it gave (two calls, as an assign+reply cycle makes). The like-for-like
    reference of the async API's cycles: against the one-call ceiling above, a cycle of two
    calls cannot pass ~0.5x however cheap its scripts."""
    ks = ceiling_keys(CEILING_TEAM)
    for source in (CEILING, CEILING_REPLY):
        server.client().script_load(source)

    def make(client: Any, i: int) -> tuple[None, Callable[[], Awaitable[bool]]]:
        assign, reply = _lane_script(client, CEILING), _lane_script(client, CEILING_REPLY)

        async def step() -> bool:
            got = await assign(ks, [f"a{i}"])
            if got is None:
                return False
            await reply(ks[GROUPS:], [got])
            return True
        return None, step

    return _async_tasks(server, advisors, seconds, make)


def case_ceiling_one_call_async(server: RedisServer, advisors: int, seconds: float
                                ) -> dict[str, float]:
    """A minimal cycle in one call through the same asyncio client: the minimal reply to the
    previous pop and the next pop in one script (what reply-and-next is to the API)."""
    ks = ceiling_keys(CEILING_TEAM)
    server.client().script_load(CEILING_REPLY_NEXT)

    def make(client: Any, i: int) -> tuple[None, Callable[[], Awaitable[bool]]]:
        script = _lane_script(client, CEILING_REPLY_NEXT)
        last: list[Any] = []

        async def step() -> bool:
            got = await script(ks, [f"a{i}", *last])
            last[:] = [got] if got is not None else []
            return got is not None
        return None, step

    return _async_tasks(server, advisors, seconds, make)


def case_ceiling_async(server: RedisServer, advisors: int, seconds: float) -> dict[str, float]:
    """The ceiling script through the same asyncio client and concurrency."""
    ks = ceiling_keys(CEILING_TEAM)
    server.client().script_load(CEILING)

    def make(client: Any, i: int) -> tuple[None, Callable[[], Awaitable[bool]]]:
        script = _lane_script(client, CEILING)

        async def step() -> bool:
            return await script(ks, [f"a{i}"]) is not None
        return None, step

    return _async_tasks(server, advisors, seconds, make)


def case_ceiling(server: RedisServer, advisors: int, seconds: float) -> dict[str, float]:
    client = server.client()
    client.config_resetstat()
    return ceiling(client, CEILING_TEAM, advisors, seconds)


def _ingest_case(client: redis.Redis, batch: int, seconds: float, start: int,
                 send: Callable[[int], None]) -> dict[str, float]:
    """4 threads sending batches of fresh ids through ``send(first_id)``."""
    counter = [start]
    lock = threading.Lock()
    client.config_resetstat()

    def work(i: int) -> Callable[[], bool]:
        def one() -> bool:
            with lock:
                s = counter[0]
                counter[0] += batch
            send(s)
            return True
        return one

    calls, lat, elapsed = run_threads(4, seconds, work)
    usec, _n = script_usec(client, TEAM)
    return {"per_s": calls * batch / elapsed, "p99_ms": p99(lat),
            "redis_us_per_msg": usec / max(calls * batch, 1)}


def case_ingest(server: RedisServer, batch: int, seconds: float, start: int
                ) -> dict[str, float]:
    client = server.client()
    d = Dispatcher(client)
    return _ingest_case(client, batch, seconds, start,
                        lambda s: d.ingest_many(TEAM, messages(s, batch)) and None)


def case_ingest_ceiling(server: RedisServer, batch: int, seconds: float, start: int
                        ) -> dict[str, float]:
    client = server.client()
    script = client.register_script(CEILING_INGEST)

    def send(s: int) -> None:
        # one message: a plain call, as the dispatcher makes; a batch: one pipeline
        pipe = client.pipeline(transaction=False) if batch > 1 else None
        for k in range(s, s + batch):
            script(keys=[f"ci:{{t}}:m{k}", f"ci:{{t}}:q{k % GROUPS}"],
                   args=[f"m{k}", "x", k], client=pipe)
        if pipe is not None:
            pipe.execute()

    return _ingest_case(client, batch, seconds, start, send)


def case_churn(server: RedisServer, held: int, waiting: int, advisors: int = 10,
               batch: int = defaults.BATCH_SIZE, idle: float = 2.0) -> dict[str, float]:
    """An advisor holding ``held`` messages logs out (requeued batch by batch), then the
    groups change (the whole stock is re-bucketed), while ``advisors`` keep pressing next.
    Returns each phase's duration and the p99 of the presses during it."""
    client = server.client()
    d = Dispatcher(client, batch_size=batch)
    seed(d, 0)
    d.set_advisor(TEAM, "leaver", "agent")
    d.login(TEAM, "leaver")
    d.set_triage(TEAM, [{"name": "to leaver", "match": {"message_tags_any": ["held"]},
                         "advisor": "leaver"}])
    for start in range(0, held, 1000):
        d.ingest_many(TEAM, [{**m, "tags": ["held"]}
                             for m in messages(10**9 + start, min(1000, held - start))])
    d.set_triage(TEAM, [])
    ingest(d, TEAM, 0, waiting)
    for a in range(advisors):
        d.set_advisor(TEAM, f"a{a}", "agent")
        d.login(TEAM, f"a{a}")
    stamps: list[tuple[float, float]] = []  # (start, latency ms) of every press
    stop = threading.Event()

    def presser(i: int) -> None:
        adv = f"a{i}"
        while not stop.is_set():
            t = time.perf_counter()
            p = d.next(TEAM, adv)
            stamps.append((t, (time.perf_counter() - t) * 1000))
            for m in p.messages:
                d.reply(TEAM, adv, m.id)

    threads = [threading.Thread(target=presser, args=(i,)) for i in range(advisors)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    time.sleep(idle)
    t1 = time.perf_counter()
    d.logout(TEAM, "leaver")  # InlineJobs: the requeue runs here, batch by batch
    t2 = time.perf_counter()
    d.set_groups(TEAM, {"order": "newest_conversation", "groups": [
        {"name": f"g{g}", "match": {"message_tags_any": [f"g{g}"]}}
        for g in reversed(range(GROUPS - 1))]})  # InlineJobs: re-bucketing runs here
    t3 = time.perf_counter()
    stop.set()
    for t in threads:
        t.join()
    left = client.zcard(f"pi:{{{TEAM}}}:cur:leaver")
    if left:
        raise RuntimeError(f"{left} messages still with the leaver after the requeue")

    def during(a: float, b: float) -> list[float]:
        return [ms for (s, ms) in stamps if a <= s < b]

    return {"requeue_s": t2 - t1, "rebucket_s": t3 - t2,
            "requeue_per_s": held / (t2 - t1), "rebucket_per_s": (held + waiting) / (t3 - t2),
            "idle_p99_ms": p99(during(t0, t1)), "requeue_p99_ms": p99(during(t1, t2)),
            "rebucket_p99_ms": p99(during(t2, t3)), "requeue_presses": len(during(t1, t2)),
            "rebucket_presses": len(during(t2, t3))}


def used_memory(client: redis.Redis) -> int:
    """Redis used_memory with the team's event stream emptied (events are trimmed by count,
    not part of a waiting message's cost)."""
    client.xtrim(f"pi:{{{TEAM}}}:events", maxlen=0)
    return int(client.info("memory")["used_memory"])


def memory_breakdown(client: redis.Redis, waiting: int, sample: int = 200) -> dict[str, float]:
    """Where a waiting message's bytes go: MEMORY USAGE of its keys, averaged over a sample,
    the group queues' sorted-set entries and the channels' stock counts per second averaged
    over the whole stock."""
    p = f"pi:{{{TEAM}}}:"
    ids = range(0, waiting, max(1, waiting // sample))
    per: dict[str, float] = {}
    for label, key in (("message hash", "m:m{}"), ("conversation hash", "c:c{}"),
                       ("conversation waiting list", "cw:c{}")):
        sizes = [client.memory_usage(p + key.format(i), samples=0) or 0 for i in ids]
        per[label] = statistics.mean(sizes)
    customers = {f"u{i % 50_000}" for i in range(waiting)}
    cc = [client.memory_usage(f"{p}cc:{c}", samples=0) or 0 for c in list(customers)[:sample]]
    per["customer's conversations (shared)"] = statistics.mean(cc) * len(customers) / waiting
    # a queue's buckets and their index (scripts/lua/includes/queue.lua), and an earlier
    # version's whole sorted set
    zsets = [k for pat in ("q:*", "qx:*", "qb:*")
             for k in client.scan_iter(match=f"{p}{pat}", count=1000)]
    per["queue sorted-set entries"] = sum(
        client.memory_usage(k, samples=0) or 0 for k in zsets) / waiting
    counts = [k for pat in ("cn:*", "cb:*") for k in client.scan_iter(match=p + pat, count=1000)]
    per["channel stock counts per second"] = sum(
        client.memory_usage(k, samples=0) or 0 for k in counts) / waiting
    return per


def scale(n: int, reps: int) -> None:
    """Redis µs per assign+reply cycle with ``n`` waiting beside 10k waiting, same run."""
    server = RedisServer().start()
    raw: dict[str, list[dict[str, float]]] = {}
    try:
        client = server.client()
        d = Dispatcher(client)
        for label, size in (("big", n), ("10k", 10_000)):
            print(f"seeding {size:,} waiting messages…", flush=True)
            seed(d, 0)
            before = used_memory(client)
            t = time.monotonic()
            ingest(d, TEAM, 0, size)
            raw.setdefault("seed", []).append({"seconds": time.monotonic() - t,
                                               "bytes_per_msg": (used_memory(client) - before)
                                               / size - 2})
            fresh = size
            for rep in range(reps):
                if rep:  # every round starts with the same stock: top up what the last took
                    taken = int(raw[label][-1]["calls"])
                    ingest(d, TEAM, fresh, taken)
                    fresh += taken
                # 1 s rounds: 10 advisors take ~6k cycles/s, well inside the 10k stock
                raw.setdefault(label, []).append(case_assign(server, 10, 1.0))
                print(f"  rep {rep + 1} {label}: {raw[label][-1]}", flush=True)
    finally:
        server.stop()
    table = [summarize(f"Redis µs/cycle, {n:,} vs 10k waiting",
                       [r["redis_us_per_cycle"] for r in raw["big"]],
                       statistics.median(r["redis_us_per_cycle"] for r in raw["10k"])),
             summarize(f"cycles/s (10 advisors), {n:,} vs 10k waiting",
                       [r["per_s"] for r in raw["big"]],
                       statistics.median(r["per_s"] for r in raw["10k"])),
             summarize(f"Redis bytes per waiting message ({n:,})",
                       [raw["seed"][0]["bytes_per_msg"]], None)]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"waiting": n, "raw": raw, "table": table,
                                "provenance": provenance()}, indent=2))
    print("\n" + format_table(table))
    print(f"\nraw results: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=int, metavar="N",
                    help="only the scaling case: Redis µs per cycle with N waiting vs 10k")
    args = ap.parse_args()
    configure_logging(level=logging.WARNING)  # a log line per push would be measured too
    if args.scale:
        return scale(args.scale, args.reps)
    waiting_big = 100_000 if args.quick else 1_000_000
    seconds = 1.0 if args.quick else 3.0
    advisors = 50
    server = RedisServer().start()
    results: dict[str, Any] = {"quick": args.quick, "waiting": waiting_big, "raw": {}}
    raw = results["raw"]
    try:
        client = server.client()
        d = Dispatcher(client)
        print(f"seeding {waiting_big:,} waiting messages in {GROUPS} groups…", flush=True)
        seed(d, 0)
        before = used_memory(client)
        ingest(d, TEAM, 0, waiting_big)
        # every message carries the 1-character body "x" (2 bytes packed): not counted
        raw["memory_bytes_per_waiting"] = [(used_memory(client) - before) / waiting_big - 2]
        results["memory_breakdown"] = memory_breakdown(client, waiting_big)
        seed_ceiling(client, CEILING_TEAM, waiting_big)
        ceiling_fresh = waiting_big
        for rep in range(args.reps):
            # both ceilings pop their stock: top it up so every round starts with waiting_big
            left = sum(client.zcard(k) for k in ceiling_keys(CEILING_TEAM)[:GROUPS])
            seed_ceiling(client, CEILING_TEAM, waiting_big - left, start=ceiling_fresh)
            ceiling_fresh += waiting_big - left
            for key, fn in (
                ("assign", lambda: case_assign(server, advisors, seconds)),
                # as the 10k scaling case below runs: 10 advisors, 1 s
                ("assign_10_advisors", lambda: case_assign(server, 10, 1.0)),
                ("ceiling", lambda: case_ceiling(server, advisors, seconds)),
                ("assign_async", lambda: case_assign_async(server, advisors, seconds)),
                ("assign_async_one_call",
                 lambda: case_assign_async(server, advisors, seconds, one_call=True)),
                ("ceiling_async", lambda: case_ceiling_async(server, advisors, seconds)),
                ("ceiling_cycle_async",
                 lambda: case_ceiling_cycle_async(server, advisors, seconds)),
                ("ceiling_one_call_async",
                 lambda: case_ceiling_one_call_async(server, advisors, seconds)),
                ("ingest_single",
                 lambda rep=rep: case_ingest(server, 1, seconds, 10**8 + rep * 10**6)),
                ("ingest_ceiling_single",
                 lambda rep=rep: case_ingest_ceiling(server, 1, seconds, rep * 10**6)),
                ("ingest_batch_100",
                 lambda rep=rep: case_ingest(server, 100, seconds, 2 * 10**8 + rep * 10**7)),
                ("ingest_ceiling_batch_100",
                 lambda rep=rep: case_ingest_ceiling(server, 100, seconds,
                                                         10**8 + rep * 10**7)),
            ):
                raw.setdefault(key, []).append(fn())
                print(f"  rep {rep + 1} {key}: {raw[key][-1]}", flush=True)
        # scaling: Redis CPU per assign with 10k waiting vs the big stock, and 32 groups
        for label, n, groups in (("assign_10k", 10_000, GROUPS), ("assign_32_groups", 10_000, 32),
                                 ("assign_1_group", 10_000, 1)):
            for _ in range(args.reps):
                seed(d, n, groups)
                raw.setdefault(label, []).append(case_assign(server, 10, 1.0))
        # an advisor holding the big stock logs out, then the groups change, under presses
        held = waiting_big // 5 if args.quick else waiting_big
        for rep in range(args.reps):
            raw.setdefault("churn", []).append(
                case_churn(server, held, held // 5, idle=seconds))
            print(f"  rep {rep + 1} churn: {raw['churn'][-1]}", flush=True)
        # The PostgreSQL dispatcher, same clients and stock, in this same run.
        why_not = postgres.available()
        if why_not:
            print(f"PostgreSQL case skipped: {why_not}", flush=True)
            results["postgres_skipped"] = why_not
        else:
            for _ in range(args.reps):
                postgres.seed(waiting_big)
                raw.setdefault("postgres", []).append(
                    postgres.case(advisors, seconds))
                print(f"  postgres: {raw['postgres'][-1]}", flush=True)
                postgres.seed(waiting_big)
                raw.setdefault("postgres_one_statement", []).append(
                    postgres.case(advisors, seconds, one_statement=True))
                print(f"  postgres in one statement: {raw['postgres_one_statement'][-1]}",
                      flush=True)
    finally:
        server.stop()

    def col(key: str, field: str) -> list[float]:
        return [r[field] for r in raw[key]]

    table = [
        summarize("assign+reply cycles/s (50 advisors)", col("assign", "per_s"),
                  statistics.median(col("ceiling", "per_s"))),
        summarize("assign+reply cycles/s, async API (50 tasks)", col("assign_async", "per_s"),
                  statistics.median(col("ceiling_async", "per_s"))),
        summarize("assign+reply cycles/s, async API vs a minimal two-call cycle",
                  col("assign_async", "per_s"),
                  statistics.median(col("ceiling_cycle_async", "per_s"))),
        summarize("minimal two-call cycle ceiling cycles/s (50 async tasks)",
                  col("ceiling_cycle_async", "per_s"), None),
        summarize("async API next p99 ms", col("assign_async", "p99_ms"), None),
        summarize("cycles/s, async API in one call (reply-and-next) vs a minimal one-call cycle",
                  col("assign_async_one_call", "per_s"),
                  statistics.median(col("ceiling_one_call_async", "per_s"))),
        summarize("cycles/s, async API in one call vs in two calls",
                  col("assign_async_one_call", "per_s"),
                  statistics.median(col("assign_async", "per_s"))),
        summarize("minimal one-call cycle ceiling cycles/s (50 async tasks)",
                  col("ceiling_one_call_async", "per_s"), None),
        summarize("async API reply-and-next p99 ms", col("assign_async_one_call", "p99_ms"),
                  None),
        summarize("minimal assign ceiling calls/s (50 threads)", col("ceiling", "per_s"), None),
        summarize("minimal assign ceiling calls/s (50 async tasks)", col("ceiling_async", "per_s"),
                  None),
        summarize("minimal assign ceiling p99 ms (50 async tasks)",
                  col("ceiling_async", "p99_ms"), None),
        summarize("sync API cycle p99 ms (next + reply)", col("assign", "p99_ms"), None),
        summarize("Redis µs per assign+reply cycle", col("assign", "redis_us_per_cycle"), None),
        summarize("Redis µs per ceiling assign", col("ceiling", "redis_us_per_call"), None),
        summarize("ingest msgs/s (single)", col("ingest_single", "per_s"),
                  statistics.median(col("ingest_ceiling_single", "per_s"))),
        summarize("ingest msgs/s (batch 100)", col("ingest_batch_100", "per_s"),
                  statistics.median(col("ingest_ceiling_batch_100", "per_s"))),
        summarize("Redis µs per ingested msg (batch 100)",
                  col("ingest_batch_100", "redis_us_per_msg"), None),
        summarize("Redis µs per minimal-script ingested msg (batch 100)",
                  col("ingest_ceiling_batch_100", "redis_us_per_msg"), None),
        summarize(f"Redis µs/cycle, {waiting_big:,} vs 10k waiting (10 advisors)",
                  col("assign_10_advisors", "redis_us_per_cycle"),
                  statistics.median(col("assign_10k", "redis_us_per_cycle"))),
        summarize("Redis µs/cycle, 32 groups vs 1 group", col("assign_32_groups",
                  "redis_us_per_cycle"), statistics.median(col("assign_1_group",
                                                               "redis_us_per_cycle"))),
        summarize(f"Redis bytes per waiting message (no payload, {waiting_big:,})",
                  raw["memory_bytes_per_waiting"], None),
        summarize(f"logout requeue of {held:,} held: seconds", col("churn", "requeue_s"), None),
        summarize("presses p99 ms during the requeue vs idle", col("churn", "requeue_p99_ms"),
                  statistics.median(col("churn", "idle_p99_ms"))),
        summarize(f"re-bucketing of {held * 6 // 5:,} waiting: seconds",
                  col("churn", "rebucket_s"), None),
        summarize("presses p99 ms during re-bucketing vs idle",
                  col("churn", "rebucket_p99_ms"),
                  statistics.median(col("churn", "idle_p99_ms"))),
    ]
    if "postgres" in raw:
        table += [
            summarize("sync API cycles/s vs PostgreSQL SKIP LOCKED", col("assign", "per_s"),
                      statistics.median(col("postgres", "per_s"))),
            summarize("async API cycles/s vs PostgreSQL SKIP LOCKED",
                      col("assign_async", "per_s"),
                      statistics.median(col("postgres", "per_s"))),
            # target 2 is read against PostgreSQL's faster form, its two statements a cycle
            summarize("async API in one call vs PostgreSQL SKIP LOCKED (two statements)",
                      col("assign_async_one_call", "per_s"),
                      statistics.median(col("postgres", "per_s"))),
            summarize("async API in one call vs PostgreSQL in one statement",
                      col("assign_async_one_call", "per_s"),
                      statistics.median(col("postgres_one_statement", "per_s"))),
            summarize("PostgreSQL assign+reply cycles/s (50 connections)",
                      col("postgres", "per_s"), None),
            summarize("PostgreSQL cycles/s, one statement a cycle (reply and assign)",
                      col("postgres_one_statement", "per_s"), None),
            summarize("PostgreSQL cycle p99 ms", col("postgres", "p99_ms"), None),
        ]
    results["table"] = table
    results["provenance"] = provenance()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"core-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print("\n" + format_table(table))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
