"""What a script call costs before its first command: defining the helpers it splices.

Each case is a trivial script (`return 1`) after a preamble, called serially with EVALSHA on
an idle redis-server of its own; the figure is microseconds per call from INFO commandstats
(the same method as docs/performance.md's fixed-cost figures). Cases: no preamble; every
include spliced (what every script paid when one `core` include held all helpers); and each
script's own includes (what it pays now).

    python -m bench.fixed_cost [--calls 20000]
"""

from __future__ import annotations

import argparse
import json

import redis

from dispatcher import keys, scripts
from dispatcher.servers import RedisServer


def per_call_us(client: redis.Redis, text: str, calls: int) -> float:
    sha = client.script_load(text)
    args = (1, keys.cfg("bench"), keys.prefix("bench"))
    client.config_resetstat()
    pipe = client.pipeline(transaction=False)
    for i in range(calls):
        pipe.evalsha(sha, *args)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return float(stats["usec_per_call"])


def fcall_us(client: redis.Redis, every: str, calls: int) -> float:
    """The same trivial call as a function of a library holding every helper (FCALL): the
    helpers are defined when the library loads; a call only starts (``begin``)."""
    code = ("#!lua name=bench_fixed_cost\n" + scripts._splice(scripts._lua_dir(), every,
                                                               "bench", (), set())
            + "\nredis.register_function('noop', function(KEYS, ARGV)\n"
              "begin(KEYS, ARGV)\nreturn 1\nend)\n")
    client.function_load(code, replace=True)
    client.config_resetstat()
    pipe = client.pipeline(transaction=False)
    for i in range(calls):
        pipe.fcall("noop", 1, keys.cfg("bench"), keys.prefix("bench"), "")
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return float(client.info("commandstats")["cmdstat_fcall"]["usec_per_call"])


def preamble(name: str) -> str:
    """The script's includes, spliced as the loader does, without its own body."""
    text = (scripts._lua_dir() / f"{name}.lua").read_text()
    heads = "".join(f"--@include {inc}\n" for inc in scripts.includes_of(text))
    return scripts._splice(scripts._lua_dir(), heads, name, (), set())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5,
                    help="the least of this many runs per case (noise only adds)")
    args = ap.parse_args()
    every = "".join(f"--@include {p.name[:-4]}\n"
                    for p in sorted((scripts._lua_dir() / "includes").iterdir())
                    if p.name.endswith(".lua"))
    cases = {"return 1": "return 1",
             "every include (one core include, before)":
                 scripts._splice(scripts._lua_dir(), every, "all", (), set()) + "return 1"}
    for name in ("next", "reply", "ingest", "login", "logout", "view", "purge_done"):
        cases[f"{name}'s includes"] = preamble(name) + "return 1"
    server = RedisServer().start()
    try:
        client = server.client()
        runs: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(args.reps):  # round robin: a noisy moment touches every case alike
            for label, text in cases.items():
                runs[label].append(per_call_us(client, text, args.calls))
        label = "every include as a function library (FCALL)"
        runs[label] = [fcall_us(client, every, args.calls) for _ in range(args.reps)]
        cases[label] = ""
        out = {label: min(r) for label, r in runs.items()}
        for label, text in cases.items():
            print(f"{label:45} {out[label]:6.2f} us/call  ({len(text):,} bytes)")
        print(json.dumps(out))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
