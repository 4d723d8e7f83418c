"""What the hot path asks of Redis, counted rather than timed: commands per ingested message
(batches of 500) and per assign+reply cycle, and Redis bytes per waiting message. Counts do
not drift with the machine's load, so they tell a lever's effect where timings cannot.

    python -m bench.commands [--waiting 20000]

One redis-server of its own, the bench team (8 groups, one-message conversations, one
customer per conversation), 10 advisors pressing and replying serially; commands from
`INFO commandstats` (every command a script ran, not the FCALL / EVALSHA around them).
"""

from __future__ import annotations

import argparse

import redis

from bench.core import TEAM, seed, used_memory
from cli.bench import ingest
from dispatcher import Dispatcher
from dispatcher.servers import RedisServer

#: Not the scripts' commands: the calls themselves and the bench's own reads.
OUTER = ("cmdstat_info", "cmdstat_fcall", "cmdstat_evalsha", "cmdstat_config",
         "cmdstat_function", "cmdstat_xtrim")


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in OUTER)


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
        client.config_resetstat()
        done = 0
        for k in range(waiting // 2):
            adv = f"a{k % 10}"
            for m in d.next(TEAM, adv).messages:
                d.reply(TEAM, adv, m.id)
                done += 1
        per_cycle = commands(client) / done
        report = d.check(TEAM)
        if not report.ok:
            raise RuntimeError(f"check after the run: {report.problems}")
        return {"commands_per_ingested_message": per_msg, "commands_per_cycle": per_cycle,
                "bytes_per_waiting_message": per_waiting}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiting", type=int, default=20_000)
    args = ap.parse_args()
    for k, v in run(args.waiting).items():
        print(f"{k:32} {v:8.1f}")


if __name__ == "__main__":
    main()
