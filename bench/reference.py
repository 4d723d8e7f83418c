"""pushinbox against BullMQ's prioritized queue: Redis CPU per message, measured the same way.

    python -m bench.reference                 # 100k waiting, 50 concurrent, 3 runs each
    python -m bench.reference --quick         # 20k, 1 run

The figure is Redis's **main-thread CPU** (`INFO cpu`: used_cpu_user_main_thread +
used_cpu_sys_main_thread) around each phase, divided by the units done: the work Redis really
did, whatever the clients' speed or the machine's other load (commandstats counts wall time
while Redis is preempted). Each system gets a fresh redis-server of its own:

- pushinbox: one team, 100k waiting messages in 8 groups (ingested in batches of 500: the
  *ingest* phase), then 50 advisors as tasks of one AsyncDispatcher pressing *Process a new
  message* and replying to what they got (the *cycle* phase, until the stock is empty or
  the time is up).
- BullMQ 6.7 (bench/bullmq, installed with `npm ci`): the same number of jobs added with
  random priorities in addBulk chunks of 500 (the *add* phase, removeOnComplete), then one
  Worker at concurrency 50 handing each out and completing it (the *process* phase).

Skipped, with the reason, where Node is absent. Results: bench/results/reference-<time>.json;
docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from bench.core import TEAM, case_assign_async
from bench.provenance import provenance
from cli.bench import GROUPS, format_table, ingest
from dispatcher import Dispatcher
from dispatcher.servers import RedisServer

HERE = Path(__file__).resolve().parent
BULLMQ = HERE / "bullmq"
CONCURRENCY = 50


def main_thread_cpu(client: redis.Redis) -> float:
    """Seconds of CPU Redis's main thread has used (INFO cpu)."""
    info = client.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


def pushinbox_run(waiting: int, seconds: float, functions: bool, one_call: bool = False
                  ) -> dict[str, float]:
    """``one_call``: each cycle is one reply-and-next call (the reply to the previous push and
    the next press), as BullMQ's worker completes a job and fetches the next in one script."""
    server = RedisServer().start()
    try:
        client = server.client()
        d = Dispatcher(client, functions=functions)
        d.create_team(TEAM)
        d.set_role(TEAM, "agent", push=True)
        d.set_groups(TEAM, {"groups": [
            {"name": f"g{g}", "match": {"message_tags_any": [f"g{g}"]}}
            for g in range(GROUPS - 1)]})
        for a in range(CONCURRENCY):
            d.set_advisor(TEAM, f"a{a}", "agent")
            d.login(TEAM, f"a{a}")
        cpu = main_thread_cpu(client)
        started = time.monotonic()
        ingest(d, TEAM, 0, waiting)
        ingest_s = time.monotonic() - started
        ingest_cpu = main_thread_cpu(client) - cpu
        cpu = main_thread_cpu(client)
        done = case_assign_async(server, CONCURRENCY, seconds, functions=functions,
                                 one_call=one_call)
        cycle_cpu = main_thread_cpu(client) - cpu
        # the messages the cycles finished, read back rather than estimated
        replied = waiting - d.stock(TEAM).total - sum(len(d.current(TEAM, f"a{a}"))
                                                      for a in range(CONCURRENCY))
        return {"ingest_us_per_msg": ingest_cpu / waiting * 1e6,
                "ingest_per_s": waiting / ingest_s,
                "cycle_us": cycle_cpu / max(replied, 1) * 1e6,
                "cycles_per_s": done["per_s"], "cycles": replied}
    finally:
        server.stop()


def _node(port: int, jobs: int, phase: str) -> dict[str, Any]:
    out = subprocess.run(["node", "prioritized.mjs", str(port), str(jobs), str(CONCURRENCY),
                          phase], cwd=BULLMQ, capture_output=True, text=True, check=True,
                         timeout=600)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bullmq_run(jobs: int) -> dict[str, float]:
    server = RedisServer().start()
    try:
        client = server.client()
        cpu = main_thread_cpu(client)
        added = _node(server.port, jobs, "add")
        add_cpu = main_thread_cpu(client) - cpu
        cpu = main_thread_cpu(client)
        processed = _node(server.port, jobs, "process")
        process_cpu = main_thread_cpu(client) - cpu
        return {"add_us_per_job": add_cpu / jobs * 1e6, "add_per_s": jobs / added["seconds"],
                "job_us": process_cpu / max(processed["jobs"], 1) * 1e6,
                "jobs_per_s": processed["jobs"] / processed["seconds"]}
    finally:
        server.stop()


def why_no_node() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js and npm are not installed (Debian: apt-get install nodejs npm)"
    if not (BULLMQ / "node_modules" / "bullmq").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BULLMQ,
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"npm ci failed in bench/bullmq: {done.stderr.strip()[-300:]}"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiting", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="longest cycle phase (it ends earlier when the stock is empty)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20k waiting, one run of each")
    args = ap.parse_args()
    if args.quick:
        args.waiting, args.reps, args.seconds = 20_000, 1, 10.0
    skipped = why_no_node()
    ours: list[dict[str, float]] = []
    lib: list[dict[str, float]] = []
    one: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(args.reps):  # round robin: a busier moment of the machine touches all alike
        ours.append(pushinbox_run(args.waiting, args.seconds, False))
        lib.append(pushinbox_run(args.waiting, args.seconds, True))
        one.append(pushinbox_run(args.waiting, args.seconds, True, one_call=True))
        if not skipped:
            theirs.append(bullmq_run(args.waiting))

    def row(case: str, values: list[float]) -> dict[str, Any]:
        return {"case": case, "median": statistics.median(values), "min": min(values),
                "max": max(values), "ratio": None}

    def col(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    table = [
        row("pushinbox Redis µs per assign+reply cycle", col(ours, "cycle_us")),
        row("pushinbox assign+reply cycles/s (50 tasks)", col(ours, "cycles_per_s")),
        row("pushinbox Redis µs per message ingested (500s)", col(ours, "ingest_us_per_msg")),
        row("the same cycle, scripts as a function library (FCALL)", col(lib, "cycle_us")),
        row("the same ingest, scripts as a function library", col(lib, "ingest_us_per_msg")),
        row("the cycle in one call (reply-and-next, FCALL)", col(one, "cycle_us")),
        row("its cycles/s (50 tasks)", col(one, "cycles_per_s")),
    ]
    if theirs:
        table += [
            row("BullMQ Redis µs per prioritized job", col(theirs, "job_us")),
            row("BullMQ jobs/s (one worker, concurrency 50)", col(theirs, "jobs_per_s")),
            row("BullMQ Redis µs per job added (addBulk of 500)", col(theirs, "add_us_per_job")),
        ]
        cycle, job = table[0]["median"], table[7]["median"]
        add_ours, add_theirs = table[2]["median"], table[9]["median"]
        fcycle, onecycle = table[3]["median"], table[5]["median"]
        table += [
            {**row("Redis µs per cycle vs BullMQ per job", [cycle / job]),
             "ratio": cycle / job},
            {**row("the same with FCALL vs BullMQ per job", [fcycle / job]),
             "ratio": fcycle / job},
            {**row("Redis µs per cycle in one call (reply-and-next) vs BullMQ per job",
                   [onecycle / job]), "ratio": onecycle / job},
            {**row("Redis µs per ingest vs BullMQ per add", [add_ours / add_theirs]),
             "ratio": add_ours / add_theirs},
        ]
    print(format_table(table))
    if skipped:
        print(f"BullMQ skipped: {skipped}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"reference-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "pushinbox": ours, "functions": lib,
                               "one_call": one, "bullmq": theirs,
                               "skipped": skipped, "provenance": provenance()}, indent=1))
    print(f"raw results: {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
