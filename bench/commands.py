"""What the hot path asks of Redis, counted rather than timed: commands per ingested message
(batches of 500), per assign+reply cycle and per message a logout's requeue hands back (the
logout's own call included), and Redis bytes per waiting message, in all and per structure
(`MEMORY USAGE` over every key of a kind, the key's name and its keyspace entry included).
Counts do not drift with the machine's load, so they tell a lever's effect where timings cannot.
Then what the one-record layout would save (a one-message conversation's message folded into the
conversation's record, a string key left to find it by its id): measured on a sample of the
run's own records, written both ways. Last, the channels' stock counts per second of arrival
(includes/channels.lua) at arrival rates from a burst down to one message a second per channel,
against the per-message index they replaced: their cost per waiting message depends on how many
arrive in a second, which the main run (arrivals as fast as the bench ingests) does not show.

    python -m bench.commands [--waiting 20000]

One redis-server of its own, the bench team (8 groups, one-message conversations, one
customer per conversation), 10 advisors pressing and replying serially; commands from
`INFO commandstats` (every command a script ran, not the FCALL / EVALSHA around them).
"""

from __future__ import annotations

import argparse

import redis

from bench.core import TEAM, seed, used_memory
from cli.bench import ingest, messages
from dispatcher import Dispatcher, keys
from dispatcher.clock import FakeClock
from dispatcher.servers import RedisServer

#: Not the scripts' commands: the calls themselves and the bench's own reads.
OUTER = ("cmdstat_info", "cmdstat_fcall", "cmdstat_evalsha", "cmdstat_config",
         "cmdstat_function", "cmdstat_xtrim")


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in OUTER)


def per_structure(client: redis.Redis, waiting: int) -> dict[str, float]:
    """Bytes per waiting message by kind of key (`m`, `c`, `q`, `ch`, `cc`, …)."""
    out: dict[str, float] = {}
    for key in client.scan_iter(f"pi:{{{TEAM}}}:*", count=1000):
        kind = key.decode().split(":")[2]
        out[kind] = out.get(kind, 0.0) + (client.memory_usage(key, samples=0) or 0)
    return {k: v / waiting for k, v in sorted(out.items(), key=lambda kv: -kv[1])
            if v / waiting >= 0.5}


def one_record(client: redis.Redis, sample: int = 200) -> dict[str, float]:
    """Bytes of a one-message conversation's two records today, and folded into one (the
    message's fields but its conversation and customer, already the conversation's) plus
    the string key `m:<id>` → conversation that finding a message by its id would need."""
    today = folded = 0
    scratch = f"pi:{{{TEAM}}}:scratch:"
    convs = [k for k, _ in zip(client.scan_iter(f"pi:{{{TEAM}}}:c:*", count=1000),
                               range(sample), strict=False)]
    for ck in convs:
        conv = client.hgetall(ck)
        mk = f"pi:{{{TEAM}}}:m:" + conv[b"w"].decode()
        msg = client.hgetall(mk)
        today += (client.memory_usage(ck, samples=0) or 0) + (client.memory_usage(mk, samples=0)
                                                              or 0)
        merged = {**conv, **{k: v for k, v in msg.items() if k not in (b"conv", b"cust")}}
        client.hset(scratch + "c", mapping=merged)
        client.set(scratch + "m", ck.decode().rsplit(":", 1)[1])
        folded += (client.memory_usage(scratch + "c", samples=0) or 0) + (
            client.memory_usage(scratch + "m", samples=0) or 0)
        client.delete(scratch + "c", scratch + "m")
    return {"two_records": today / len(convs), "one_record_and_pointer": folded / len(convs)}


def channel_index(client: redis.Redis, per_second: float) -> dict[str, float]:
    """Bytes per waiting message of the channels' stock counts (`cn:`, `cb:`) when messages
    (4 channels) arrive ``per_second`` a second in all, on a test clock, for 400 seconds (at
    least 8,000 messages: past the small encodings, as a large stock is); and of the
    per-message index an earlier version kept (`ch:`), written for the same messages."""
    n = max(8_000, int(400 * per_second))
    team = f"rate{int(per_second * 100)}"
    clock = FakeClock(1_800_000_000_000)
    d = Dispatcher(client, clock=clock)
    d.create_team(team)
    per_batch = max(1, int(per_second))  # one batch a second (or a message every 1/rate s)
    for s in range(0, n, per_batch):
        d.ingest_many(team, messages(s, min(per_batch, n - s)))
        clock.advance(per_batch / per_second)
    p = keys.prefix(team)
    now = sum(client.memory_usage(k, samples=0) or 0
              for pat in ("cn:*", "cb:*") for k in client.scan_iter(f"{p}{pat}", count=1000))
    for k in client.scan_iter(f"{p}m:*", count=1000):  # the per-message index, rebuilt
        ch, ts, order = client.hmget(k, "ch", "ts", "ord")
        at = int(ts) if ts else int(order) // 1000
        client.zadd(f"{p}ch:{ch.decode()}", {k.decode().rsplit(":", 1)[1]: at})
    before = sum(client.memory_usage(k, samples=0) or 0
                 for k in client.scan_iter(f"{p}ch:*", count=1000))
    d.delete_team(team)
    for k in client.scan_iter(f"{p}ch:*", count=1000):
        client.delete(k)
    return {"counts_per_second": now / n, "per_message_index": before / n}


def requeued(client: redis.Redis, d: Dispatcher, held: int = 2000) -> float:
    """Commands per message a logout's requeue hands back to the stock: an advisor holding
    ``held`` one-message conversations (routed to them by a triage rule at ingest) logs out
    and the requeue runs in batches of ``BATCH_SIZE`` (as the worker runs it)."""
    d.set_advisor(TEAM, "leaver", "agent")
    d.login(TEAM, "leaver")
    d.set_triage(TEAM, [{"name": "to leaver", "match": {"message_tags_any": ["held"]},
                         "advisor": "leaver"}])
    for s in range(0, held, 500):
        d.ingest_many(TEAM, [{**m, "tags": ["held"]} for m in messages(10**8 + s, 500)])
    d.set_triage(TEAM, [])
    client.config_resetstat()
    d.logout(TEAM, "leaver")  # the bench's Dispatcher runs the requeue job in process
    left = client.zcard(keys.current(TEAM, "leaver"))
    if left:
        raise RuntimeError(f"{left} messages still with the leaver after the requeue")
    return commands(client) / held


def run(waiting: int) -> dict[str, float]:
    server = RedisServer().start()
    try:
        client = server.client()
        d = Dispatcher(client)
        seed(d, 0)
        for a in range(10):
            d.set_advisor(TEAM, f"a{a}", "agent")
            d.login(TEAM, f"a{a}")
        before = used_memory(client)
        client.config_resetstat()
        ingest(d, TEAM, 0, waiting)
        per_msg = commands(client) / waiting
        per_waiting = (used_memory(client) - before) / waiting
        structures = per_structure(client, waiting)
        layout = one_record(client)
        rates = {f"channel stock at {r:g} a second, {k}": v
                 for r in (1000, 100, 20, 4) for k, v in channel_index(client, r).items()}
        client.config_resetstat()
        done = 0
        for k in range(waiting // 2):
            adv = f"a{k % 10}"
            for m in d.next(TEAM, adv).messages:
                d.reply(TEAM, adv, m.id)
                done += 1
        per_cycle = commands(client) / done
        per_requeued = requeued(client, d)
        report = d.check(TEAM)
        if not report.ok:
            raise RuntimeError(f"check after the run: {report.problems}")
        return {"commands_per_ingested_message": per_msg, "commands_per_cycle": per_cycle,
                "commands_per_requeued_message": per_requeued,
                "bytes_per_waiting_message": per_waiting,
                **{f"  {kind} (bytes per waiting message)": v for kind, v in structures.items()},
                **{f"one-message conversation, {k}": v for k, v in layout.items()},
                **rates}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiting", type=int, default=20_000)
    args = ap.parse_args()
    for k, v in run(args.waiting).items():
        print(f"{k:54} {v:8.1f}")


if __name__ == "__main__":
    main()
