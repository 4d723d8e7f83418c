"""One customer with many conversations has their tags changed: how long Redis is held.

    python -m bench.retag                         # 100,000 conversations of one customer
    python -m bench.retag --conversations 20000

A customer's conversations are unbounded (one a message; each stays until the purge), and a
tag change re-places the waiting ones. Measured three tag changes through the tags endpoint's
operation and one through a message carrying new tags: the time in all, the script calls and
the longest of them (Redis's SLOWLOG at a 1 ms threshold: what other teams wait behind; the
seventeenth session's code made it one call of 3.6-4.3 s at 100,000). Results:
bench/results/retag-*.json; docs/security.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.provenance import provenance
from dispatcher import Dispatcher
from dispatcher.servers import RedisServer

TEAM = "bench"
RESULTS = Path(__file__).resolve().parent / "results"


def _calls(r: Any) -> int:
    stats = r.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conversations", type=int, default=100_000)
    args = ap.parse_args()
    server = RedisServer().start()
    rows = []
    try:
        r = server.client()
        d = Dispatcher(r)
        d.create_team(TEAM)
        d.set_role(TEAM, "agent")
        d.set_groups(TEAM, {"groups": [{"name": "VIP",
                                        "match": {"customer_tags_any": ["VIP"]}}]})
        n = args.conversations
        for s in range(0, n, 500):
            d.ingest_many(TEAM, [{"id": f"m{i}", "conversation": f"c{i}", "customer": "x",
                                  "channel": "email", "body": "hello"}
                                 for i in range(s, min(n, s + 500))])
        r.config_set("slowlog-log-slower-than", 1000)
        r.config_set("slowlog-max-len", 100_000)
        changes: list[tuple[str, Any]] = [
            ("tags endpoint: VIP", lambda: d.set_customer_tags(TEAM, "x", ["VIP"])),
            ("tags endpoint: none", lambda: d.set_customer_tags(TEAM, "x", [])),
            ("tags endpoint: VIP", lambda: d.set_customer_tags(TEAM, "x", ["VIP"])),
            ("a message carrying tags", lambda: d.ingest(TEAM, {
                "id": "z", "conversation": "cz", "customer": "x", "channel": "email",
                "body": "hello", "customer_tags": ["other"]}))]
        for how, change in changes:
            r.slowlog_reset()
            before = _calls(r)
            t = time.perf_counter()
            change()
            took = (time.perf_counter() - t) * 1000
            slow = [e["duration"] / 1000 for e in r.slowlog_get(100_000)
                    if e["command"].split(b" ")[0] in (b"FCALL", b"EVALSHA")]
            row = {"how": how, "conversations": n, "ms": round(took, 1),
                   "calls": _calls(r) - before, "longest_call_ms": max(slow, default=0.0)}
            rows.append(row)
            print(f"{how}: {row['ms']} ms in all, {row['calls']} script calls, the longest "
                  f"{row['longest_call_ms']} ms")
    finally:
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"retag-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"provenance": provenance(), "rows": rows}, indent=1))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
