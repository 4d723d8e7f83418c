"""Two versions of pushinbox side by side on one redis-server: what a change to the hot path
pays, measured without the drift between runs that these shared 2-core machines show.

    python -m bench.ab BASE [--cycles 4000] [--rounds 6]    # BASE: a commit, tag or branch

BASE is checked out into a temporary git worktree; this checkout runs as it is (uncommitted
changes included). Each round starts one redis-server, seeds a team per version (the bench
team's 8 groups, one-message conversations, 10 advisors), then runs both versions' clients
at once, serially each (one press, its replies, the next press), so both meet the same
machine at the same moments; which one starts first alternates by round. Run it with BASE
HEAD and nothing changed to see the noise floor: on this machine one round reads up to 10 %
apart for identical code, the median of six within about 3 %. Every script call's own
duration comes from SLOWLOG (threshold 0, read as the run goes), per version and per script:
the median per call, and per assign+reply cycle the sum of the medians of `next` and
`reply`; then the same number of cycles in one call each (`reply_next`, the advisor's cycle
as the service's reply-and-next runs it). Ingest is timed the same way while seeding
(batches of 500). Results are printed and written to bench/results/ab-<time>.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.provenance import provenance
from dispatcher.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

#: What each version's client runs (in that version's checkout, so its own dispatcher).
CLIENT = """
import sys, redis
from dispatcher import Dispatcher
from cli.bench import seed_team, ingest
url, team, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = Dispatcher(redis.Redis.from_url(url))
seed_team(d, team, 0)
for a in range(10):
    d.set_advisor(team, f"a{a}", "agent")
    d.login(team, f"a{a}")
print("seeded", flush=True)
sys.stdin.readline()
ingest(d, team, 0, 2 * n)
print("ingested", flush=True)
sys.stdin.readline()
for k in range(n):
    a = f"a{k % 10}"
    for m in d.next(team, a).messages:
        d.reply(team, a, m.id)
# the cycle in one call (reply-and-next), where the version has it
held = {a: [m.id for m in d.next(team, f"a{a}").messages] for a in range(10)}
for k in range(n - 10 if hasattr(d, "reply_next") else 0):
    a = k % 10
    if held[a]:
        held[a] = [m.id for m in d.reply_next(team, f"a{a}", held[a][0]).messages]
print("done", flush=True)
"""


def worktree(base: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="pushinbox-ab-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), base],
                   check=True, capture_output=True)
    return path


class Slowlog(threading.Thread):
    """Reads SLOWLOG as it fills (so nothing is lost to its length), keeping script calls."""

    def __init__(self, server: RedisServer) -> None:
        super().__init__(daemon=True)
        self.client = server.client()
        self.stop = threading.Event()
        self.calls: dict[tuple[str, str], list[int]] = collections.defaultdict(list)

    def drain(self) -> None:
        rows = self.client.slowlog_get(100_000)
        self.client.slowlog_reset()
        for e in rows:
            args = e["command"].split(b" ")
            if args[0] == b"FCALL" and len(args) > 4:  # FCALL <lib>_<script> 1 <cfg key> ...
                script = args[1].decode().split("_", 1)[1]
                team = args[3].decode().split("{", 1)[1].split("}", 1)[0]
                self.calls[(team, script)].append(int(e["duration"]))

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.drain()


def one_round(versions: dict[str, Path], cycles: int, flip: bool) -> dict[str, dict[str, float]]:
    server = RedisServer().start()
    try:
        control = server.client()
        control.config_set("slowlog-max-len", 100_000)
        order = list(versions.items())[::-1] if flip else list(versions.items())
        procs = {name: subprocess.Popen(
            [sys.executable, "-c", CLIENT, server.url, name, str(cycles)], cwd=root,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE) for name, root in order}

        def step(expect: str) -> None:
            for p in procs.values():
                line = p.stdout.readline().strip() if p.stdout else ""
                if line != expect:
                    raise RuntimeError(f"a client said {line!r}, not {expect!r}")

        step("seeded")
        control.config_set("slowlog-log-slower-than", 0)
        control.slowlog_reset()
        log = Slowlog(server)
        log.start()
        for phase in ("ingested", "done"):
            for p in procs.values():
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            step(phase)
        log.stop.set()
        log.join()
        log.drain()
        for p in procs.values():
            p.wait(timeout=30)
        out: dict[str, dict[str, float]] = {}
        for name in versions:
            row = {s: float(statistics.median(log.calls[(name, s)]))
                   for s in ("next", "reply", "ingest", "reply_next") if log.calls[(name, s)]}
            row["cycle"] = row.get("next", 0.0) + row.get("reply", 0.0)
            row["calls"] = float(sum(len(log.calls[(name, s)]) for s in ("next", "reply")))
            out[name] = row
        return out
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="the commit to compare this checkout with")
    ap.add_argument("--cycles", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    base = worktree(args.base)
    try:
        versions = {"base": base, "this": ROOT}
        rounds = []
        for r in range(args.rounds):
            print(f"round {r + 1} of {args.rounds}…", flush=True)
            rounds.append(one_round(versions, args.cycles, flip=r % 2 == 1))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       check=False, capture_output=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    print(f"\nµs per call (median of the rounds' medians), base {args.base} vs this "
          f"checkout ({head} + uncommitted), {args.cycles} cycles x {args.rounds} rounds")
    print(f"{'script':10} {'base':>8} {'this':>8} {'ratio':>7}   rounds (base / this)")
    summary: dict[str, Any] = {}
    for s in ("ingest", "next", "reply", "cycle", "reply_next"):
        b = [r["base"].get(s, 0.0) for r in rounds]
        t = [r["this"].get(s, 0.0) for r in rounds]
        mb, mt = statistics.median(b), statistics.median(t)
        summary[s] = {"base": mb, "this": mt, "ratio": mt / mb if mb else None,
                      "rounds_base": b, "rounds_this": t}
        each = ", ".join(f"{x:.0f}/{y:.0f}" for x, y in zip(b, t, strict=True))
        print(f"{s:10} {mb:8.1f} {mt:8.1f} {mt / mb if mb else 0:7.2f}   {each}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"base": args.base, "this": head, "cycles": args.cycles,
                                "summary": summary, "rounds": rounds,
                                "provenance": provenance()}, indent=2))
    print(f"raw results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
