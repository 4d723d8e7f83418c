"""The HTTP service's own CPU per request, without sockets or uvicorn: the ASGI app called
directly by 50 advisor tasks pressing *process a new message* and replying, against a real
redis-server; the process's CPU time (``time.process_time``) divided by the requests. What the
framework, our handlers, the access log and the Redis client cost per request, apart from the
machine's network stack and the load generator. Cases alternate, so a busier moment of the
machine touches all alike.

    python -m bench.service_cpu [--rounds 4] [--seconds 5]

Cases: ``short`` (the default service: next and reply on httpapi/hot.py), ``short+log`` (with
its access log, as in production), ``framework`` (PUSHINBOX_HOT_ROUTES=0: through Litestar),
``ingest`` (50 upstream tasks posting one message each per request, as a webhook-style
integration does: on the short path), ``ingest+framework`` (the same through Litestar).
Each case runs in a process of its own (logging is configured once per process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.provenance import provenance

CASES = ("short", "short+log", "framework", "ingest", "ingest+framework")


async def measure(case: str, seconds: float) -> dict[str, Any]:
    from bench.http import TEAM, seed
    from dispatcher import Dispatcher, tokens
    from dispatcher.servers import RedisServer, app_running
    from httpapi import ServiceConfig, create_app

    server = RedisServer().start()
    try:
        token_file = Path(tempfile.mkdtemp(prefix="pushinbox-bench-")) / "tokens"
        ingest = case.startswith("ingest")
        seed(Dispatcher(server.client()), 50, 0 if ingest else 60_000, token_file)
        advisors = [line.split() for line in token_file.read_text().splitlines()]
        upstream = Dispatcher(server.client()).run(
            tokens.create_token("ingest", teams=[TEAM])).token
        log = case.endswith("+log")
        if log:
            from dispatcher.log import configure

            configure(json=True)
        app = create_app(ServiceConfig(redis_url=server.url, access_log=log, token_cache_s=5,
                                       hot_routes=not case.endswith("framework")))
        done = 0

        async def post(path: str, token: str, data: bytes = b"") -> tuple[int, bytes]:
            nonlocal done
            headers = [(b"host", b"bench"), (b"authorization", b"Bearer " + token.encode())]
            if data:
                headers += [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "POST", "scheme": "http", "path": path,
                     "raw_path": path.encode(), "query_string": b"", "root_path": "",
                     "headers": headers,
                     "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
            status, body = 0, []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": data, "more_body": False}

            async def send(msg: dict[str, Any]) -> None:
                nonlocal status
                if msg["type"] == "http.response.start":
                    status = msg["status"]
                else:
                    body.append(msg.get("body", b""))

            await app(scope, receive, send)
            done += 1
            return status, b"".join(body)

        stop = 0.0

        async def advisor(name: str, token: str) -> None:
            base = f"/v1/teams/{TEAM}/advisors/{name}"
            while time.monotonic() < stop:
                status, body = await post(base + "/next", token)
                if status != 200:
                    raise RuntimeError(f"next answered {status}: {body[:200]!r}")
                msg = json.loads(body)["messages"][0]["id"]
                status, body = await post(f"{base}/messages/{msg}/reply", token)
                if status != 200:
                    raise RuntimeError(f"reply answered {status}: {body[:200]!r}")

        async def pusher(k: int) -> None:
            n = 0
            while time.monotonic() < stop:
                n += 1
                data = json.dumps({"id": f"m{k}-{n}", "conversation": f"c{k}-{n}",
                                   "customer": f"u{n % 5000}", "channel": "whatsapp",
                                   "body": {"text": "Where is my parcel?"}}).encode()
                status, body = await post(f"/v1/teams/{TEAM}/messages", upstream, data)
                if status not in (200, 201, 202):
                    raise RuntimeError(f"ingest answered {status}: {body[:200]!r}")

        async with app_running(app):
            stop = time.monotonic() + seconds
            cpu, wall = time.process_time(), time.monotonic()
            if ingest:
                await asyncio.gather(*(pusher(k) for k in range(len(advisors))))
            else:
                await asyncio.gather(*(advisor(a, t) for a, t in advisors))
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {"case": case, "requests": done, "cpu_us_per_request": cpu / done * 1e6,
                "requests_per_s": done / wall}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, here
    args = parser.parse_args()
    if args.case:
        import uvloop

        uvloop.install()
        print(json.dumps(asyncio.run(measure(args.case, args.seconds))))
        return
    runs: dict[str, list[float]] = {c: [] for c in CASES}
    for n in range(args.rounds):
        for case in CASES:
            out = subprocess.run([sys.executable, "-m", "bench.service_cpu", "--case", case,
                                  "--seconds", str(args.seconds)], capture_output=True,
                                 text=True, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            runs[case].append(res["cpu_us_per_request"])
            print(f"round {n + 1} {case:16} {res['cpu_us_per_request']:7.1f} µs CPU per "
                  f"request  {res['requests_per_s']:6.0f} req/s", flush=True)
    print("\ncase              µs CPU per request (median)   vs the same through the framework")
    for case, xs in runs.items():
        base = statistics.median(runs["ingest+framework" if case.startswith("ingest")
                                      else "framework"])
        print(f"{case:16} {statistics.median(xs):10.1f}  ({min(xs):.0f}-{max(xs):.0f})"
              f"  {statistics.median(xs) / base:10.2f}x")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_file = Path(__file__).parent / "results" / f"service-cpu-{stamp}.json"
    out_file.write_text(json.dumps({"seconds": args.seconds, "runs": runs,
                                     "provenance": provenance()}, indent=1))
    print(f"raw results: {out_file}")


if __name__ == "__main__":
    main()
