"""HTTP benchmark: *process a new message* through the running service, with 1 and 2 service
processes measured side by side in one run.

    python -m bench.http            # 3 runs x 10 s per case
    python -m bench.http --quick    # 2 runs x 5 s

The reference, measured in the same run with the same uvicorn settings: a bare Starlette
endpoint making one Lua call (bench/asgi_apps.py). The load generator is wrk (C; `apt-get
install wrk`), 50 connections by default, one thread per connection, each connection one
logged-in advisor: `cycle` presses next then replies to the message it got
(the real loop of an advisor), `next` presses next only (after the first press it is the
retry path: the same pending message again), `cycle+log` the cycle with our JSON access log
on (the product's default; the reference has none), `cycle+framework` the cycle with the
short path off (`PUSHINBOX_HOT_ROUTES=0`: every call through Litestar's routes); `ingest`
one new message per request from an upstream service's token (a webhook-style integration),
on the short path, and `ingest+framework` the same through Litestar; `reply-next` the
advisor's cycle as one reply-and-next request each (the reply to the message in hand and the
next press in one call). Starts its
own redis-server and service processes on free loopback ports; the stock is re-seeded before
every run, so each run starts from the same state. Raw results go to
bench/results/http-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.provenance import provenance
from dispatcher import Dispatcher, tokens
from dispatcher.servers import RedisServer, ServiceProcess

TEAM = "bench"
HERE = Path(__file__).parent
MODES = ("cycle", "next", "cycle+log", "cycle+framework", "reply-next", "ingest",
         "ingest+framework")


#: Messages seeded for a run of a cycle mode, per second of the run: a press on an empty
#: stock is a fast answer that would count as a request (and cap the cycles/s at the stock),
#: so the stock must outlast the run; 20,000 a second is twice what the service does here.
STOCK_PER_S = 20_000


def stock(mode: str, seconds: float) -> int:
    """The messages to seed before a run of ``mode``."""
    base = mode.split("+")[0]
    if base == "next":
        return 100  # after its first press, the retry path: the same pending message again
    if base == "ingest":
        return 0
    return int(seconds * STOCK_PER_S)


def check_run(mode: str, res: dict[str, Any]) -> None:
    """Refuse a cycle run whose stock ran out: its figures would count empty presses."""
    if mode.split("+")[0] in ("cycle", "reply-next") and res["empty"]:
        raise SystemExit(f"{mode}: the stock ran out ({res['empty']} presses found it empty): "
                         "its figures would count them; raise bench/http.py's STOCK_PER_S")


def seed(d: Dispatcher, advisors: int, messages: int, token_file: Path) -> None:
    d.redis.flushall()
    d.create_team(TEAM)
    d.set_role(TEAM, "agent", push=True)
    lines = []
    for i in range(advisors):
        adv = f"adv{i}"
        d.set_advisor(TEAM, adv, "agent")
        d.login(TEAM, adv)
        lines.append(f"{adv} {d.run(tokens.create_token('advisor', team=TEAM, advisor=adv)).token}")
    token_file.write_text("\n".join(lines) + "\n")
    batch = []
    for i in range(messages):
        batch.append({"id": f"m{i}", "conversation": f"c{i}", "customer": f"u{i % 5000}",
                      "channel": ("whatsapp", "email", "webchat", "sms")[i % 4],
                      "body": {"text": "Where is my parcel?"}})
        if len(batch) == 500:
            d.ingest_many(TEAM, batch)
            batch = []
    if batch:
        d.ingest_many(TEAM, batch)


def wrk(url: str, mode: str, connections: int, seconds: int, token_file: Path,
        ingest_token: str = "") -> dict[str, Any]:
    env = {**os.environ, "PI_TOKENS": str(token_file), "PI_TEAM": TEAM, "PI_MODE": mode,
           "PI_INGEST_TOKEN": ingest_token}
    out = subprocess.run(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(HERE / "wrk_cycle.lua"), url],
        capture_output=True, text=True, env=env, timeout=seconds + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    res: dict[str, Any] = json.loads(line[len("RESULT "):])
    res["rps"] = res["requests"] / res["seconds"]
    res["nexts_per_s"] = res["nexts"] / res["seconds"]
    res["cycles_per_s"] = res["replies"] / res["seconds"]
    return res


def bare(redis_url: str, procs: int, connections: int, seconds: int) -> dict[str, Any]:
    """The reference: a bare Starlette endpoint making one Lua call, same uvicorn settings."""
    import sys

    from dispatcher.servers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.asgi_apps:starlette_app", "--port", str(port),
         "--workers", str(procs), "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.DEVNULL)
    post = HERE / "post.lua"
    post.write_text('wrk.method = "POST"\n')
    try:
        url = f"http://127.0.0.1:{port}/t/abc/next"
        for _ in range(100):
            try:
                subprocess.run(["curl", "-sf", "-X", "POST", url], check=True,
                               capture_output=True, timeout=2)
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                time.sleep(0.1)
        out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
                              "--latency", "-s", str(post), url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        proc.terminate()
        proc.wait()
        post.unlink(missing_ok=True)
    rps = float(next(x for x in out.splitlines() if x.startswith("Requests/sec")).split()[1])
    p99 = next(x for x in out.splitlines() if x.strip().startswith("99%")).split()[1]
    ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-1]) * 1000
    return {"rps": rps, "nexts_per_s": rps, "p50_ms": 0.0, "p99_ms": ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.http needs wrk: apt-get install wrk")
    runs, seconds = (2, 5) if args.quick else (3, 10)
    server = RedisServer().start()
    d = Dispatcher(server.client())
    token_file = Path(tempfile.mkdtemp(prefix="pushinbox-bench-")) / "tokens"
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for run in range(runs):
            for procs in (1, 2):
                res = bare(server.url, procs, args.connections, seconds)
                results.setdefault(f"bare/{procs}", []).append(res)
                print(f"run {run + 1} bare/{procs}  {res['rps']:8.0f} req/s  "
                      f"p99 {res['p99_ms']:.2f} ms", flush=True)
                for mode in MODES:
                    seed(d, args.connections, stock(mode, seconds), token_file)
                    upstream = d.run(tokens.create_token("ingest", teams=[TEAM])).token
                    # production settings (a 5 s token cache), with uvicorn's settings of the
                    # bare reference (no access log), and once with our access log on
                    hot = "0" if mode.endswith("+framework") else "1"
                    svc = ServiceProcess(server.url, workers=procs,
                                         access_log=mode.endswith("+log"),
                                         env={"PUSHINBOX_TOKEN_CACHE_S": "5",
                                              "PUSHINBOX_HOT_ROUTES": hot}).start()
                    try:
                        time.sleep(1)
                        res = wrk(svc.url, mode.split("+")[0], args.connections, seconds,
                                  token_file, upstream)
                    finally:
                        svc.stop()
                    assert d.check(TEAM).ok, d.check(TEAM).problems
                    check_run(mode, res)
                    key = f"{mode}/{procs}"
                    results.setdefault(key, []).append(res)
                    print(f"run {run + 1} {key:8} {res['rps']:8.0f} req/s  "
                          f"{res['nexts_per_s']:7.0f} next/s  p50 {res['p50_ms']:.2f} ms  "
                          f"p99 {res['p99_ms']:.2f} ms  empty {res['empty']}  "
                          f"errors {res['errors'] + res['socket_errors']}", flush=True)
    finally:
        server.stop()
    med = {k: {f: statistics.median(r[f] for r in v)
               for f in ("rps", "nexts_per_s", "p50_ms", "p99_ms", "cycles_per_s")
               if f in v[0]} for k, v in results.items()}
    print("\ncase        req/s    next/s   p50 ms   p99 ms")
    for k, v in med.items():
        print(f"{k:10} {v['rps']:7.0f} {v['nexts_per_s']:8.0f} {v['p50_ms']:8.2f} "
              f"{v['p99_ms']:8.2f}")
    for mode in ("cycle", "next"):
        print(f"{mode}: 2 processes / 1 process = "
              f"{med[f'{mode}/2']['rps'] / med[f'{mode}/1']['rps']:.2f}x req/s")
    for procs in (1, 2):
        one, two = med[f"reply-next/{procs}"], med[f"cycle/{procs}"]
        print(f"cycles/s with {procs} process(es): reply-next {one['cycles_per_s']:.0f} / cycle "
              f"{two['cycles_per_s']:.0f} = {one['cycles_per_s'] / two['cycles_per_s']:.2f}x")
    for procs in (1, 2):
        for mode in MODES:
            print(f"{mode} with {procs} process(es) / bare ASGI + one Lua call = "
                  f"{med[f'{mode}/{procs}']['rps'] / med[f'bare/{procs}']['rps']:.2f}x req/s, "
                  f"p99 {med[f'{mode}/{procs}']['p99_ms'] / med[f'bare/{procs}']['p99_ms']:.2f}x")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"http-{stamp}.json"
    out.write_text(json.dumps({"connections": args.connections, "seconds": seconds,
                               "runs": results, "medians": med,
                               "provenance": provenance()}, indent=1))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
