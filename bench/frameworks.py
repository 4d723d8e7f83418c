"""Framework cost: one Lua call behind bare Starlette, Litestar and FastAPI, side by side.

    python -m bench.frameworks      # 3 rounds x 5 s per framework, 32 connections (wrk)

FastAPI comes from the `bench` extra (it is not a dependency of pushinbox). Each round runs
every framework once, in turn, so a noisy neighbour hits them alike; the table gives medians
and the ratio to bare Starlette. Raw results: bench/results/frameworks-<timestamp>.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.provenance import provenance
from dispatcher.servers import RedisServer, free_port

HERE = Path(__file__).parent
APPS = ("starlette_app", "litestar_app", "fastapi_app")


def serve(app: str, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"bench.asgi_apps:{app}", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "REDIS_URL": url}, stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/t/abc/next", method="POST")
            urllib.request.urlopen(req, timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{app} did not start")


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench.frameworks needs wrk: apt-get install wrk")
    server = RedisServer().start()
    (HERE / "post.lua").write_text('wrk.method = "POST"\n')
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for _ in range(3):
            for app in APPS:
                proc, port = serve(app, server.url)
                try:
                    out = subprocess.run(
                        ["wrk", "-t1", "-c32", "-d5s", "--latency", "-s",
                         str(HERE / "post.lua"), f"http://127.0.0.1:{port}/t/abc/next"],
                        capture_output=True, text=True, check=True).stdout
                finally:
                    proc.terminate()
                    proc.wait()
                rps = float(next(x for x in out.splitlines()
                                 if x.startswith("Requests/sec")).split()[1])
                p99 = next(x for x in out.splitlines() if x.strip().startswith("99%")).split()[1]
                ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-1]) * 1000
                results.setdefault(app, []).append({"rps": rps, "p99_ms": ms})
                print(f"{app:14} {rps:8.0f} req/s  p99 {ms:.2f} ms", flush=True)
    finally:
        server.stop()
        (HERE / "post.lua").unlink(missing_ok=True)
    base = statistics.median(r["rps"] for r in results["starlette_app"])
    print("\nframework      median req/s  ratio to Starlette")
    for app, runs in results.items():
        med = statistics.median(r["rps"] for r in runs)
        print(f"{app:14} {med:12.0f}  {med / base:.2f}x")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_file = HERE / "results" / f"frameworks-{stamp}.json"
    out_file.write_text(json.dumps({**results, "provenance": provenance()}, indent=1))
    print(f"raw results: {out_file}")


if __name__ == "__main__":
    main()
