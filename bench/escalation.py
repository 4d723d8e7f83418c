"""A mass crossing: 100,000 waiting messages cross a `waiting_longer_than` threshold together
while 10 advisors press *Process a new message*.

    python -m bench.escalation                  # 100k waiting, 3 runs
    python -m bench.escalation --waiting 20000 --runs 1

The team's clock is a test clock shared by every thread: all messages arrive at one instant,
then the clock jumps past the threshold, so all of them are due at once (the worst case: an
outage, or a threshold lowered by hand). The escalator (what `pushinbox worker` runs every
second) re-places them in atomic batches of BATCH_SIZE while the advisors press and reply;
before the jump the same advisors press with nothing due (the reference). Reported: the
move's duration and conversations per second, the presses' p99 during it and before it, and
whether every press during the move got a message of the overdue group (no press may take a
later group's message while an overdue one waits). Results: bench/results/escalation-*.json;
docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

from bench.provenance import provenance
from cli.bench import GROUPS, format_table, ingest, p99, summarize
from dispatcher import Dispatcher, defaults, ops
from dispatcher.servers import RedisServer
from dispatcher.testing import FakeClock

TEAM = "bench"
THRESHOLD_S = 900
RESULTS = Path(__file__).resolve().parent / "results"


def one_run(waiting: int, advisors: int, idle_s: float) -> dict[str, float]:
    server = RedisServer().start()
    try:
        clock = FakeClock(1_773_133_200_000)
        d = Dispatcher(server.client(), clock=clock)
        d.create_team(TEAM)
        d.set_role(TEAM, "agent", push=True)
        d.configure(TEAM, presence_timeout_s=86400)
        d.set_groups(TEAM, {"groups": [
            {"name": "Overdue", "match": {"waiting_longer_than": THRESHOLD_S}},
            *({"name": f"g{g}", "match": {"message_tags_any": [f"g{g}"]}}
              for g in range(GROUPS - 2))]})
        for a in range(advisors):
            d.set_advisor(TEAM, f"a{a}", "agent")
            d.login(TEAM, f"a{a}")
        ingest(d, TEAM, 0, waiting)
        stamps: list[tuple[float, float, str]] = []  # (start, latency ms, group) per press
        stop = threading.Event()

        def presser(i: int) -> None:
            mine = Dispatcher(server.client(), clock=clock)
            adv = f"a{i}"
            while not stop.is_set():
                t = time.perf_counter()
                push = mine.next(TEAM, adv)
                stamps.append((t, (time.perf_counter() - t) * 1000,
                               push.messages[0].group or "" if push.messages else ""))
                for m in push.messages:
                    mine.reply(TEAM, adv, m.id)

        threads = [threading.Thread(target=presser, args=(i,)) for i in range(advisors)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        time.sleep(idle_s)
        crossing = d.stock(TEAM).total  # one message per conversation
        clock.advance(THRESHOLD_S + 1)  # every waiting message crosses now
        t1 = time.perf_counter()
        moved = d.run(ops.escalate(TEAM, defaults.BATCH_SIZE))
        t2 = time.perf_counter()
        stop.set()
        for t in threads:
            t.join()
        during = [s for s in stamps if t1 <= s[0] < t2]
        before = [s for s in stamps if t0 <= s[0] < t1]
        report = d.check(TEAM)
        if not report.ok:
            raise RuntimeError(f"check failed: {report.problems[:3]}")
        return {"moved": moved, "move_s": t2 - t1, "moved_per_s": moved / (t2 - t1),
                "all_per_s": crossing / (t2 - t1), "by_presses": crossing - moved,
                "crossing": crossing,
                "press_p99_ms_during": p99([s[1] for s in during]),
                "press_p99_ms_before": p99([s[1] for s in before]),
                "presses_during": len(during),
                "pushed_later_group_during": sum(1 for s in during if s[2] not in
                                                 ("Overdue", ""))}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--advisors", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--on-press", type=int, default=defaults.ESCALATE_ON_PRESS,
                        help="Due conversations a press re-places before it looks.")
    args = parser.parse_args()
    defaults.ESCALATE_ON_PRESS = args.on_press  # what ops.next_message passes to the script
    runs = [one_run(args.waiting, args.advisors, idle_s=2.0) for _ in range(args.runs)]

    def col(k: str) -> list[float]:
        return [float(r[k]) for r in runs]

    table = [
        summarize("conversations crossing at once (what the presses left of "
                  f"{args.waiting:,})", col("crossing"), None),
        summarize("seconds to re-place them all", col("move_s"), None),
        summarize("conversations re-placed per second, escalator and presses",
                  col("all_per_s"), None),
        summarize("of which the escalator's, per second", col("moved_per_s"), None),
        summarize(f"re-placed by presses (up to {args.on_press} each)", col("by_presses"),
                  None),
        summarize("press p99 ms while they move", col("press_p99_ms_during"), None),
        summarize("press p99 ms before (nothing due)", col("press_p99_ms_before"), None),
        summarize("presses while they move", col("presses_during"), None),
        summarize("presses that got a later group's message while they move",
                  col("pushed_later_group_during"), None),
    ]
    print(format_table(table))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"escalation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "runs": runs, "table": table,
                               "median_moved_per_s": statistics.median(col("moved_per_s")),
                               "provenance": provenance()},
                              indent=2))
    print(f"raw results: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
