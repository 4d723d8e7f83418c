"""Core benchmarks: the dispatcher's scripts against a minimal ceiling, side by side in one run.

    python -m bench.core            # default run (1M waiting; a few minutes on 2 cores)
    python -m bench.core --quick    # 100k waiting, shorter cases (about a minute)

Starts its own redis-server on a free loopback port. Every case runs >= 3 times; the table
gives the median, min-max and the ratio to its reference measured in the same run. Redis CPU
per call comes from INFO commandstats (the most stable figure on a shared machine). Raw results
go to bench/results/core-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import postgres
from dispatcher import Dispatcher
from dispatcher.log import configure as configure_logging
from dispatcher.testing import RedisServer

TEAM = "bench"
GROUPS = 8
CEILING = """
-- minimal assign: pop the head of the first non-empty of 8 sorted sets, write the
-- assignment, bump a counter
for i = 1, 8 do
  local top = redis.call('ZPOPMIN', KEYS[i])
  if #top > 0 then
    redis.call('HSET', KEYS[9], top[1], ARGV[1])
    redis.call('INCR', KEYS[10])
    return top[1]
  end
end
return false
"""
CEILING_INGEST = """
-- minimal ingest: store the message, index it in its group
if redis.call('HSETNX', KEYS[1], 'b', ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""


def _messages(start: int, n: int) -> list[dict[str, Any]]:
    return [{"id": f"m{i}", "conversation": f"c{i}", "customer": f"u{i % 50_000}",
             "channel": ("whatsapp", "email", "webchat", "sms")[i % 4], "body": "x",
             "tags": [f"g{i % GROUPS}"]} for i in range(start, start + n)]


def seed(d: Dispatcher, waiting: int, groups: int = GROUPS) -> None:
    d.redis.flushall()
    d.create_team(TEAM)
    d.set_role(TEAM, "agent", push=True)
    d.set_groups(TEAM, {"groups": [{"name": f"g{g}", "match": {"message_tags_any": [f"g{g}"]}}
                                   for g in range(groups - 1)]})
    for start in range(0, waiting, 1000):
        d.ingest_many(TEAM, _messages(start, min(1000, waiting - start)))


def seed_ceiling(client: redis.Redis, waiting: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(waiting):
        pipe.zadd(f"ceil:{{t}}:q{i % GROUPS}", {f"m{i}": i})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def run_threads(n: int, seconds: float, work: Callable[[int], Callable[[], bool]]
                ) -> tuple[int, list[float]]:
    """n threads calling their work function until time is up; (calls, latencies in ms)."""
    stop = time.monotonic() + seconds
    lat: list[list[float]] = [[] for _ in range(n)]

    def loop(i: int) -> None:
        fn = work(i)
        while time.monotonic() < stop:
            t = time.perf_counter()
            if not fn():
                return
            lat[i].append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for li in lat for x in li]
    return len(flat), flat


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values or [0])


def script_usec(client: redis.Redis) -> tuple[float, int]:
    stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {"usec": 0, "calls": 0})
    return float(evalsha["usec"]), int(evalsha["calls"])


def case_assign(server: RedisServer, waiting: int, advisors: int, seconds: float
                ) -> dict[str, float]:
    """Push + reply cycles through the Python API; Redis CPU per cycle from commandstats."""
    client = server.client()
    d = Dispatcher(client)
    for a in range(advisors):
        d.set_advisor(TEAM, f"a{a}", "agent")
        d.login(TEAM, f"a{a}")
    client.config_resetstat()

    def work(i: int) -> Callable[[], bool]:
        adv = f"a{i}"

        def cycle() -> bool:
            p = d.next(TEAM, adv)
            if p.status == "empty":
                return False
            for m in p.messages:
                d.reply(TEAM, adv, m.id)
            return True
        return cycle

    calls, lat = run_threads(advisors, seconds, work)
    usec, n = script_usec(client)
    return {"per_s": calls / seconds, "p99_ms": p99(lat),
            "redis_us_per_cycle": usec / max(calls, 1), "redis_us_per_call": usec / max(n, 1)}


def case_assign_async(server: RedisServer, advisors: int, seconds: float) -> dict[str, float]:
    """The same cycles through AsyncDispatcher (what the HTTP service uses): 50 advisors as
    tasks on one event loop, one connection pool."""
    import asyncio

    import redis.asyncio as aredis

    from dispatcher import ops
    from dispatcher.api import AsyncDispatcher

    async def main() -> tuple[int, list[float]]:
        client = aredis.Redis(port=server.port, max_connections=advisors)
        d = AsyncDispatcher(client)
        stop = time.monotonic() + seconds
        lat: list[float] = []

        async def advisor(i: int) -> None:
            adv = f"a{i}"
            while time.monotonic() < stop:
                t = time.perf_counter()
                push = await d.run(ops.next_message(TEAM, adv))
                lat.append((time.perf_counter() - t) * 1000)
                if push.status == "empty":
                    return
                for m in push.messages:
                    await d.run(ops.act("reply", TEAM, adv, m.id))

        await asyncio.gather(*(advisor(i) for i in range(advisors)))
        await client.aclose()
        return len(lat), lat

    calls, lat = asyncio.run(main())
    return {"per_s": calls / seconds, "p99_ms": p99(lat)}


def case_ceiling(server: RedisServer, advisors: int, seconds: float) -> dict[str, float]:
    client = server.client()
    script = client.register_script(CEILING)
    keys = [f"ceil:{{t}}:q{g}" for g in range(GROUPS)] + ["ceil:{t}:assigned", "ceil:{t}:n"]
    client.config_resetstat()

    def work(i: int) -> Callable[[], bool]:
        return lambda: script(keys=keys, args=[f"a{i}"]) is not None

    calls, lat = run_threads(advisors, seconds, work)
    usec, n = script_usec(client)
    return {"per_s": calls / seconds, "p99_ms": p99(lat), "redis_us_per_call": usec / max(n, 1)}


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

    calls, lat = run_threads(4, seconds, work)
    usec, _n = script_usec(client)
    return {"per_s": calls * batch / seconds, "p99_ms": p99(lat),
            "redis_us_per_msg": usec / max(calls * batch, 1)}


def case_ingest(server: RedisServer, batch: int, seconds: float, start: int
                ) -> dict[str, float]:
    client = server.client()
    d = Dispatcher(client)
    return _ingest_case(client, batch, seconds, start,
                        lambda s: d.ingest_many(TEAM, _messages(s, batch)) and None)


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


def memory_per_waiting(server: RedisServer, n: int) -> float:
    client = server.client()
    d = Dispatcher(client)
    client.flushall()
    d.create_team(TEAM)
    client.xtrim(f"pi:{{{TEAM}}}:events", maxlen=0)
    before = client.info("memory")["used_memory"]
    for start in range(0, n, 1000):
        d.ingest_many(TEAM, [{**m, "body": ""} for m in _messages(start, min(1000, n - start))])
    client.xtrim(f"pi:{{{TEAM}}}:events", maxlen=0)
    after = client.info("memory")["used_memory"]
    return (after - before) / n


def summarize(name: str, runs: list[float], ref: float | None) -> dict[str, Any]:
    med = statistics.median(runs)
    return {"case": name, "median": med, "min": min(runs), "max": max(runs),
            "ratio": (med / ref) if ref else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    configure_logging(level=logging.WARNING)  # a log line per push would be measured too
    waiting_big = 100_000 if args.quick else 1_000_000
    seconds = 2.0 if args.quick else 5.0
    advisors = 50
    server = RedisServer().start()
    results: dict[str, Any] = {"quick": args.quick, "waiting": waiting_big, "raw": {}}
    raw = results["raw"]
    try:
        client = server.client()
        d = Dispatcher(client)
        print(f"seeding {waiting_big:,} waiting messages in {GROUPS} groups…", flush=True)
        seed(d, waiting_big)
        seed_ceiling(client, waiting_big)
        for rep in range(args.reps):
            for key, fn in (
                ("assign", lambda: case_assign(server, waiting_big, advisors, seconds)),
                ("ceiling", lambda: case_ceiling(server, advisors, seconds)),
                ("assign_async", lambda: case_assign_async(server, advisors, seconds)),
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
                raw.setdefault(label, []).append(case_assign(server, n, 10, 1.0))
        raw["memory_bytes_per_waiting"] = [memory_per_waiting(server, 100_000)]
        # The PostgreSQL dispatcher, same clients and stock, in this same run.
        why_not = postgres.available()
        if why_not:
            print(f"PostgreSQL case skipped: {why_not}", flush=True)
            results["postgres_skipped"] = why_not
        else:
            for _ in range(args.reps):
                postgres.seed(waiting_big)
                raw.setdefault("postgres", []).append(
                    postgres.case(advisors, seconds, run_threads, p99))
                print(f"  postgres: {raw['postgres'][-1]}", flush=True)
    finally:
        server.stop()

    def col(key: str, field: str) -> list[float]:
        return [r[field] for r in raw[key]]

    table = [
        summarize("assign+reply cycles/s (50 advisors)", col("assign", "per_s"),
                  statistics.median(col("ceiling", "per_s"))),
        summarize("assign+reply cycles/s, async API (50 tasks)", col("assign_async", "per_s"),
                  statistics.median(col("ceiling", "per_s"))),
        summarize("async API next p99 ms", col("assign_async", "p99_ms"), None),
        summarize("minimal assign ceiling calls/s", col("ceiling", "per_s"), None),
        summarize("assign p99 ms", col("assign", "p99_ms"), None),
        summarize("Redis µs per assign+reply cycle", col("assign", "redis_us_per_cycle"), None),
        summarize("Redis µs per ceiling assign", col("ceiling", "redis_us_per_call"), None),
        summarize("ingest msgs/s (single)", col("ingest_single", "per_s"),
                  statistics.median(col("ingest_ceiling_single", "per_s"))),
        summarize("ingest msgs/s (batch 100)", col("ingest_batch_100", "per_s"),
                  statistics.median(col("ingest_ceiling_batch_100", "per_s"))),
        summarize("Redis µs per ingested msg (batch 100)",
                  col("ingest_batch_100", "redis_us_per_msg"),
                  statistics.median(col("ingest_ceiling_batch_100", "redis_us_per_msg"))),
        summarize(f"Redis µs/cycle, {waiting_big:,} vs 10k waiting",
                  col("assign", "redis_us_per_cycle"),
                  statistics.median(col("assign_10k", "redis_us_per_cycle"))),
        summarize("Redis µs/cycle, 32 groups vs 1 group", col("assign_32_groups",
                  "redis_us_per_cycle"), statistics.median(col("assign_1_group",
                                                               "redis_us_per_cycle"))),
        summarize("Redis bytes per waiting message (no payload)",
                  raw["memory_bytes_per_waiting"], None),
    ]
    if "postgres" in raw:
        table += [
            summarize("sync API cycles/s vs PostgreSQL SKIP LOCKED", col("assign", "per_s"),
                      statistics.median(col("postgres", "per_s"))),
            summarize("async API cycles/s vs PostgreSQL SKIP LOCKED",
                      col("assign_async", "per_s"),
                      statistics.median(col("postgres", "per_s"))),
            summarize("PostgreSQL assign+reply cycles/s (50 connections)",
                      col("postgres", "per_s"), None),
            summarize("PostgreSQL cycle p99 ms", col("postgres", "p99_ms"), None),
        ]
    results["table"] = table
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"core-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\n{'case':52} {'median':>12} {'min-max':>24} {'ratio':>7}")
    for row in table:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        print(f"{row['case']:52} {row['median']:12.1f} "
              f"{row['min']:11.1f}-{row['max']:<11.1f} {ratio:>7}")
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
