"""`pushinbox bench`: the core benchmark against a deployed Redis, in a scratch team.

What ``make bench`` measures on a private redis-server, measured where the dispatcher really
runs (its Redis, its network, its neighbours): *process a new message* + reply cycles through
the Python API beside the minimal assign script (the ceiling) called through the same client and
concurrency, and ingest. Every case runs ``reps`` times; the table gives the median, min-max and
the ratio to the reference of the same run. Everything lives in a team of its own
(``bench-<random>``), deleted at the end, whatever happens. ``bench/core.py`` builds on the
helpers here.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from dispatcher import keys
from dispatcher.api import Dispatcher

GROUPS = 8
#: The minimal assign's pop: the head of the first non-empty of 8 sorted sets, the assignment
#: written, a counter bumped.
_CEILING_POP = """
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
CEILING = """
-- minimal assign: pop the head of the first non-empty of 8 sorted sets, write the
-- assignment, bump a counter
""" + _CEILING_POP
CEILING_REPLY = """
-- minimal reply: drop the assignment the minimal assign wrote, bump a counter
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
"""
CEILING_REPLY_NEXT = """
-- minimal reply and assign in one call (as reply_next.lua): drop the assignment of the
-- previous pop (ARGV[2], if any) and bump the counter, then the minimal assign
if ARGV[2] then
  redis.call('HDEL', KEYS[9], ARGV[2])
  redis.call('INCR', KEYS[10])
end
""" + _CEILING_POP
CEILING_INGEST = """
-- minimal ingest: store the message, index it in its group
if redis.call('HSETNX', KEYS[1], 'b', ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""


def messages(start: int, n: int, groups: int = GROUPS) -> list[dict[str, Any]]:
    """``n`` one-message conversations spread over 4 channels and ``groups`` tags."""
    return [{"id": f"m{i}", "conversation": f"c{i}", "customer": f"u{i % 50_000}",
             "channel": ("whatsapp", "email", "webchat", "sms")[i % 4], "body": "x",
             "tags": [f"g{i % groups}"]} for i in range(start, start + n)]


def seed_team(d: Dispatcher, team: str, waiting: int, groups: int = GROUPS) -> None:
    """A team whose ``groups - 1`` priority groups (plus everything else) share the stock."""
    d.create_team(team)
    d.configure(team, max_messages=0, max_body_bytes=0)  # 10M waiting and more: past the bounds
    d.set_role(team, "agent", push=True)
    d.set_groups(team, {"groups": [{"name": f"g{g}", "match": {"message_tags_any": [f"g{g}"]}}
                                   for g in range(groups - 1)]})
    ingest(d, team, 0, waiting, groups)


def ingest(d: Dispatcher, team: str, start: int, n: int, groups: int = GROUPS) -> None:
    """Messages ``start`` .. ``start + n - 1``, in batches of 500."""
    for s in range(start, start + n, 500):
        d.ingest_many(team, messages(s, min(500, start + n - s), groups))


def ceiling_keys(team: str) -> list[str]:
    """The ceiling's 8 queues, assignment hash and counter, in the team's slot (so a cluster
    runs it on the same node, and deleting the team removes them)."""
    p = keys.prefix(team)
    return [f"{p}bench:q{g}" for g in range(GROUPS)] + [f"{p}bench:assigned", f"{p}bench:n"]


def seed_ceiling(client: Any, team: str, waiting: int, start: int = 0) -> None:
    qs = ceiling_keys(team)[:GROUPS]
    pipe = client.pipeline(transaction=False)
    for i in range(start, start + waiting):
        pipe.zadd(qs[i % GROUPS], {f"m{i}": i})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def run_threads(n: int, seconds: float, work: Callable[[int], Callable[[], bool]]
                ) -> tuple[int, list[float], float]:
    """n threads calling their work function until time is up or it answers False (nothing
    left to do); (calls, latencies in ms, seconds until the last thread stopped)."""
    start = time.monotonic()
    stop = start + seconds
    lat: list[list[float]] = [[] for _ in range(n)]
    ended = [start] * n

    def loop(i: int) -> None:
        fn = work(i)
        while time.monotonic() < stop:
            t = time.perf_counter()
            if not fn():
                break
            lat[i].append((time.perf_counter() - t) * 1000)
        ended[i] = time.monotonic()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for li in lat for x in li]
    return len(flat), flat, max(max(ended) - start, 1e-9)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values or [0])


def script_usec(client: Any, team: str) -> tuple[float, int]:
    """Script time and calls so far (EVALSHA and FCALL: the scripts go by either, see
    ``Dispatcher.functions``) on the node holding ``team`` (INFO commandstats)."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_node_from_key(keys.cfg(team))  # type: ignore[no-untyped-call]
        stats = client.info("commandstats", target_nodes=node)
    else:
        stats = client.info("commandstats")
    calls = [stats.get(f"cmdstat_{c}", {"usec": 0, "calls": 0}) for c in ("evalsha", "fcall")]
    return float(sum(c["usec"] for c in calls)), int(sum(c["calls"] for c in calls))


def cycles(d: Dispatcher, team: str, advisors: int, seconds: float) -> dict[str, float]:
    """``advisors`` threads pressing next and replying to what they get, for ``seconds``."""
    before = script_usec(d.redis, team)

    def work(i: int) -> Callable[[], bool]:
        adv = f"a{i}"

        def cycle() -> bool:
            p = d.next(team, adv)
            if p.status == "empty":
                return False
            for m in p.messages:
                d.reply(team, adv, m.id)
            return True
        return cycle

    calls, lat, elapsed = run_threads(advisors, seconds, work)
    usec, _ = script_usec(d.redis, team)
    return {"per_s": calls / elapsed, "p99_ms": p99(lat), "calls": calls,
            "redis_us_per_cycle": (usec - before[0]) / max(calls, 1)}


def ceiling(client: Any, team: str, advisors: int, seconds: float) -> dict[str, float]:
    script = client.register_script(CEILING)
    ks = ceiling_keys(team)
    before = script_usec(client, team)

    def work(i: int) -> Callable[[], bool]:
        return lambda: script(keys=ks, args=[f"a{i}"]) is not None

    calls, lat, elapsed = run_threads(advisors, seconds, work)
    usec, n = script_usec(client, team)
    return {"per_s": calls / elapsed, "p99_ms": p99(lat), "calls": calls,
            "redis_us_per_call": (usec - before[0]) / max(n - before[1], 1)}


def summarize(name: str, runs: list[float], ref: float | None) -> dict[str, Any]:
    med = statistics.median(runs)
    return {"case": name, "median": med, "min": min(runs), "max": max(runs),
            "ratio": (med / ref) if ref else None}


def format_table(table: Iterable[dict[str, Any]]) -> str:
    lines = [f"{'case':52} {'median':>12} {'min-max':>24} {'ratio':>7}"]
    for row in table:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        lines.append(f"{row['case']:52} {row['median']:12.1f} "
                     f"{row['min']:11.1f}-{row['max']:<11.1f} {ratio:>7}")
    return "\n".join(lines)


def run(d: Dispatcher, *, waiting: int, advisors: int, seconds: float, reps: int,
        say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The deployed benchmark: a scratch team, ``reps`` rounds of each case, then cleanup."""
    team = f"bench-{secrets.token_hex(4)}"
    raw: dict[str, list[dict[str, float]]] = {"assign": [], "ceiling": []}
    try:
        say(f"seeding {waiting:,} waiting messages in team {team}…")
        seed_team(d, team, waiting)
        seed_ceiling(d.redis, team, waiting)
        for a in range(advisors):
            d.set_advisor(team, f"a{a}", "agent")
            d.login(team, f"a{a}")
        fresh = waiting
        for rep in range(reps):
            if rep:  # every round starts with the same stock: top up what the last one took
                taken = int(raw["assign"][-1]["calls"])
                ingest(d, team, fresh, taken)
                seed_ceiling(d.redis, team, int(raw["ceiling"][-1]["calls"]), start=fresh)
                fresh += max(taken, int(raw["ceiling"][-1]["calls"]))
            raw["assign"].append(cycles(d, team, advisors, seconds))
            raw["ceiling"].append(ceiling(d.redis, team, advisors, seconds))
            say(f"  round {rep + 1}/{reps}: {raw['assign'][-1]['per_s']:,.0f} cycles/s, "
                f"ceiling {raw['ceiling'][-1]['per_s']:,.0f} calls/s")
            if raw["assign"][-1]["calls"] >= waiting or raw["ceiling"][-1]["calls"] >= waiting:
                say("  the stock ran out within the round: rates are over a shorter time; "
                    "a larger --waiting measures a full round")
    finally:
        d.delete_team(team)

    def col(key: str, field: str) -> list[float]:
        return [r[field] for r in raw[key]]

    ceiling_rate = statistics.median(col("ceiling", "per_s"))
    table = [
        summarize(f"assign+reply cycles/s ({advisors} advisors)", col("assign", "per_s"),
                  ceiling_rate),
        summarize("minimal assign ceiling calls/s", col("ceiling", "per_s"), None),
        summarize("cycle p99 ms (next + reply)", col("assign", "p99_ms"), None),
        summarize("ceiling p99 ms", col("ceiling", "p99_ms"), None),
        summarize("Redis µs per assign+reply cycle", col("assign", "redis_us_per_cycle"),
                  statistics.median(col("ceiling", "redis_us_per_call"))),
        summarize("Redis µs per ceiling assign", col("ceiling", "redis_us_per_call"), None),
    ]
    return {"team": team, "waiting": waiting, "advisors": advisors, "seconds": seconds,
            "reps": reps, "raw": raw, "table": table}
