"""Where the advisor's cycle spends Redis's time inside its script, section by section: a
copy of this checkout's scripts with a mark between the steps of reply-and-next (the
settings, the advisor, the replied message, its release, the pop, the conversation and
message reads, the hand-over, the report figures, the reply packed) and every
`redis.call` timed, run serially against a redis-server that can tell the time from Lua.

Redis gives scripts no clock, so this builds one: Redis 7.0's source from Debian's source
package (`apt-get source redis`, with a `deb-src` list of its own: the machine's apt
settings are not touched), plus `redis.pclock()` (the monotonic clock in µs, a dozen lines
in `script_lua.c`), built with symbols (also what `perf record` of redis-server needs to
name Lua's functions). The build is cached in ~/.cache/pushinbox-bench; `--redis-server`
takes one built already. The instrumented copy is not a product (it writes its sums to a
key outside the team), it exists for the measurement.

    python -m bench.lua_profile [--cycles 20000] [--redis-server PATH]   (make bench-lua-profile)
    python -m bench.lua_profile --ingest [--batches 400]    # an ingest's batches of 100 instead

Results are printed and written to bench/results/lua-profile-<time>.json (docs/performance.md,
"Where a cycle's Redis time goes, by section"; with --ingest, lua-profile-ingest-<time>.json
and "Ingest: fewer commands and allocations a message").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ab import RESULTS, ROOT
from bench.provenance import provenance

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pushinbox-bench"
SOURCES = "deb-src http://deb.debian.org/debian bookworm main\n"

#: The clock added to Redis's Lua API (script_lua.c), after redis.sha1hex.
PCLOCK_C = """
#include <time.h>
/* Profiling only (bench/lua_profile.py): the monotonic clock in microseconds. */
static int luaRedisPclock(lua_State *lua) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(lua, (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3);
    return 1;
}

"""
PCLOCK_REGISTER = """    lua_pushstring(lua, "pclock");
    lua_pushcfunction(lua, luaRedisPclock);
    lua_settable(lua, -3);

    /* redis.sha1hex */"""

#: The profiler, spliced into keys.lua after `local CALL = 0` (every include has it first).
PROFILER = """
local PR, RT, PT, PRT = {}, 0, 0, 0  -- sums per section; time in redis.call; the last mark
local function RC(...)
  local t = redis.pclock()
  local r = redis.call(...)
  RT = RT + redis.pclock() - t
  return r
end
local function mark(label)
  if PT == 0 then return end  -- a press before the first reply-and-next (the set-up's)
  local t = redis.pclock()
  local e = PR[label]
  if not e then e = {0, 0, 0}; PR[label] = e end
  e[1] = e[1] + (t - PT); e[2] = e[2] + (RT - PRT); e[3] = e[3] + 1
  PT, PRT = redis.pclock(), RT
end
local function prof_start()
  if redis.call('EXISTS', 'lua-profile-reset') == 1 then  -- (after the set-up's calls)
    PR, RT = {}, 0
    redis.call('DEL', 'lua-profile-reset')
  end
  PT, PRT = redis.pclock(), RT
end
local function prof_flush()
  local out = {}
  for k, e in pairs(PR) do
    out[#out + 1] = k
    out[#out + 1] = string.format('%.3f %.3f %d', e[1], e[2], e[3])
  end
  redis.call('HSET', 'lua-profile', unpack(out))
end
"""

#: (file under scripts/lua, a line of it, the section ending before it, the one ending after
#: it): each section is the time from the mark before.
REST = "the rest (presence, break, checks)"
DONE = "the message done, day figure, done index, event"
MARKS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("reply_next.lua", "local cfg = load_cfg()", None, "settings (load_cfg)"),
    ("reply_next.lua", "local role = press_allowed(a)", None, "clock, advisor, role"),
    ("reply_next.lua", "local conv, pushed_at, ho = own_message(", None,
     "the replied message checked"),
    ("reply_next.lua", "if conv then done_writes(", None, DONE),
    ("includes/actions.lua", "  release(a.id, O.msg, conv, ho, pushed_at ~= nil)",
     "the reply's report figures", "out of the advisor's hands (release)"),
    ("includes/actions.lua", "  day_add(cfg, now, field .. ':' .. a.id, 1)",
     DONE, None),
    ("includes/press.lua", "  escalate_due(cfg, tonumber(O.esc or 10))", REST, REST),
    ("includes/press.lua", "      local conv = Q.slot_pop(cfg, slot)", None,
     "the pop (slots, the bucket's ZPOPMIN)"),
    ("includes/press.lua", "      local holder = handed < 20 and holder_of(", None,
     "the conversation read"),
    ("includes/press.lua", "        given = give_conv(cfg, a.id, conv, 'push'", None,
     "capacity, the conversation written"),
    ("includes/press.lua", "  remember_request()", REST, None),
    ("includes/handover.lua", "    local v = RC('HMGET', K.msg(id), unpack(VIEW_FIELDS))", REST,
     "the message read (HMGET)"),
    ("includes/handover.lua", "    chans[v[3]] = (chans[v[3]] or 0) + chan_out(", None,
     "its channel's stock count"),
    ("includes/handover.lua", "    out[i] = as_view(id, v, false)",
     "into the advisor's hands (hand_over)", "the view built, the reply packed"),
    ("includes/handover.lua", "  for ch, n in pairs(chans) do chan_left(cfg, ch, n) end", REST,
     "its channel's stock count"),
    ("includes/handover.lua", "  rep_pushed(cfg, now, adv, g, waits,",
     "capacity, the conversation written", "the push's report figures"),
)
#: The end of reply_next.lua: the last section, the sums written now and then.
LAST = ("return reply(out)", "local packed = reply(out)\n"
        'mark("the view built, the reply packed")\n'
        "if CALL % 500 == 0 then prof_flush() end\nreturn packed")


#: The same for an ingest call (ingest.lua; sections a message but the first two and last two).
INGEST_MARKS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("ingest.lua", "local now = now_ms()", None, "settings, clock"),
    ("ingest.lua", "local function set_customer_tags(", "the batch checked (EXISTS, bounds)",
     None),
    ("ingest.lua", "    if ctags ~= '' then set_customer_tags(", None,
     "arrival order, customer's tags"),
    ("ingest.lua", "    else RC('HINCRBY', ck, 'n', '1') end", None,
     "the customer's conversations (HSET)"),
    ("ingest.lua", "    RC('HSET', mkeys[i], unpack(fields))", None,
     "the message's record (HSET)"),
    ("ingest.lua", "    event(cfg, 'ingested', now,", None, "the event (XADD)"),
    ("ingest.lua", "      if adv then", "owner, triage", None),
    ("ingest.lua", "        to_waiting(id, conv, ch, now, true, true)", None,
     "into the stock (channel counts kept)"),
    ("ingest.lua", "  local gi, gn, why, pending = classify(cfg, view,", "the view", "classified"),
    ("ingest.lua", "  Q.add(cfg, qk, sc == ord and ord_s or int(sc), conv)", None,
     "the queue (the last bucket's ZADD kept)"),
    ("ingest.lua", "    unpack(named))", None, "the conversation's record (HSET)"),
    ("ingest.lua", "        if group then arrivals[group]", None, "arrivals counted"),
    ("ingest.lua", "cfg_note('lo',", "the batch's end (reports, counts, arrivals written)",
     None),
)
INGEST_LAST = ("return reply(status)", "local packed = reply(status)\n"
               'mark("the batch\'s end (reports, counts, arrivals written)")\n'
               "if CALL % 20 == 0 then prof_flush() end\nreturn packed")


def _mark(indent: str, label: str) -> str:
    return f'{indent}mark("{label}")\n'


def redis_with_clock() -> Path:
    """A redis-server with redis.pclock(), built once and cached."""
    binary = CACHE / "redis-server-pclock"
    if binary.exists():
        return binary
    work = CACHE / "build"
    shutil.rmtree(work, ignore_errors=True)
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True)
    (work / "src.list").write_text(SOURCES)
    apt = ["-o", f"Dir::Etc::SourceList={work / 'src.list'}",
           "-o", "Dir::Etc::SourceParts=/dev/null",
           "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache={work / 'cache'}"]
    subprocess.run(["apt-get", *apt, "update", "-qq"], check=True)
    subprocess.run(["apt-get", *apt, "source", "--download-only", "-qq", "redis"], check=True,
                   cwd=work)
    tarball = next(work.glob("redis_*.orig.tar.gz"))
    subprocess.run(["tar", "xzf", tarball.name], check=True, cwd=work)
    src = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("redis-"))
    c = src / "src" / "script_lua.c"
    text = c.read_text()
    anchor = "/* This adds redis.sha1hex(string) to Lua scripts"
    if anchor not in text or "    /* redis.sha1hex */" not in text:
        raise SystemExit(f"{c}: not the Redis 7.0 source this patch knows")
    text = text.replace(anchor, PCLOCK_C + anchor, 1)
    text = text.replace("    /* redis.sha1hex */", PCLOCK_REGISTER, 1)
    c.write_text(text)
    subprocess.run(["make", "-j2", "BUILD_TLS=no", "CFLAGS=-g -fno-omit-frame-pointer"],
                   check=True, cwd=src, stdout=subprocess.DEVNULL)
    shutil.copy(src / "src" / "redis-server", binary)
    return binary


def instrumented(into: Path, ingest: bool = False) -> None:
    """This checkout's scripts package, copied into ``into`` and marked (reply-and-next's
    steps, or with ``ingest`` an ingest's)."""
    shutil.copytree(ROOT / "scripts", into / "scripts")
    lua = into / "scripts" / "lua"
    script = "ingest.lua" if ingest else "reply_next.lua"
    for f in [*lua.glob("includes/*.lua"), lua / script]:  # (what the call runs)
        text = f.read_text().replace("redis.call(", "RC(")
        if f.name == "keys.lua":
            head, sep, rest = text.partition("\nlocal CALL = 0")
            line, nl, rest = rest.partition("\n")
            if not sep:
                raise SystemExit("scripts/lua/includes/keys.lua no longer has `local CALL = 0`")
            text = head + sep + line + nl + PROFILER + rest
            text = text.replace("local r = RC(...)", "local r = redis.call(...)")
            text = text.replace("RC('HSET', 'lua-profile'", "redis.call('HSET', 'lua-profile'")
        f.write_text(text)
    f = lua / script
    f.write_text(f.read_text().replace("local cfg = load_cfg()", "prof_start()\nlocal cfg = "
                                       "load_cfg()", 1).replace(*(INGEST_LAST if ingest
                                                                  else LAST)))
    for name, line, before, after in (INGEST_MARKS if ingest else MARKS):
        f = lua / name
        lines = f.read_text().split("\n")
        at = [i for i, x in enumerate(lines) if x.startswith(line)]
        if len(at) != 1:
            raise SystemExit(f"scripts/lua/{name}: {len(at)} lines start with {line.strip()!r}; "
                             "bring bench/lua_profile.py's MARKS up to date")
        full = lines[at[0]]
        indent = full[: len(full) - len(full.lstrip())]
        lines[at[0]] = ((_mark(indent, before) if before else "") + full +
                        ("\n" + _mark(indent, after).rstrip("\n") if after else ""))
        f.write_text("\n".join(lines))


#: A run: a server, the benchmark's stock, then `{body}` (what is measured), then the sums.
_RUN = """
import json, sys
from bench.core import TEAM, seed
from cli.bench import ingest, messages
from dispatcher import Dispatcher
from dispatcher.servers import RedisServer

n, waiting = int(sys.argv[1]), int(sys.argv[2])
server = RedisServer().start()
try:
    c = server.client()
    d = Dispatcher(c)
    seed(d, 0)
    ingest(d, TEAM, 0, waiting)
{body}
    fcall = c.info("commandstats")["cmdstat_fcall"]
    sums = {{k.decode(): v.decode() for k, v in c.hgetall("lua-profile").items()}}
    print(json.dumps({{"fcall_us": fcall["usec"] / fcall["calls"], "sums": sums}}))
finally:
    server.stop()
"""

#: The cycle's: n reply-and-next calls by 10 advisors.
RUN = _RUN.format(body="""\
    for a in range(10):
        d.set_advisor(TEAM, f"a{a}", "agent")
        d.login(TEAM, f"a{a}")
    held = {a: [m.id for m in d.next(TEAM, f"a{a}").messages] for a in range(10)}
    c.config_resetstat()
    for k in range(n):
        a = k % 10
        held[a] = [m.id for m in d.reply_next(TEAM, f"a{a}", held[a][-1]).messages]""")

#: The ingest's: n batches of 100 new one-message conversations (the core bench's ingest
#: case) into the benchmark's stock, after the set-up's calls (their sums are reset).
RUN_INGEST = _RUN.format(body="""\
    c.set("lua-profile-reset", 1)
    c.delete("lua-profile")
    c.config_resetstat()
    for k in range(n):
        d.ingest_many(TEAM, messages(10**9 + 100 * k, 100))""")


def run(cycles: int, waiting: int, server: Path, scripts: Path | None,
        runner: str = RUN) -> dict[str, Any]:
    """One serial run in a process of its own (``scripts``: the instrumented copy first on
    its path, else this checkout's)."""
    env = {**os.environ, "PUSHINBOX_REDIS_SERVER": str(server),
           "PYTHONPATH": os.pathsep.join([*(str(p) for p in [scripts] if p), str(ROOT)])}
    # (from a folder of its own: `python -c` puts the working folder first on the path)
    out = subprocess.run([sys.executable, "-c", runner, str(cycles), str(waiting)], env=env,
                         capture_output=True, text=True, cwd=scripts or ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the {'marked' if scripts else 'plain'} run failed:\n"
                         + out.stderr[-3000:])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def table(sums: dict[str, str], per: str = "settings (load_cfg)"
          ) -> list[tuple[str, float, float, int]]:
    """(section, µs a cycle, of which in redis.call, times a cycle) from the flushed sums;
    a cycle is a pass through section ``per`` (with --ingest: a message)."""
    rows = {k: [float(x) for x in v.split()] for k, v in sums.items()}
    cycles = rows[per][2]
    return [(k, v[0] / cycles, v[1] / cycles, round(v[2] / cycles, 2))
            for k, v in rows.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=20_000)
    ap.add_argument("--ingest", action="store_true",
                    help="profile an ingest's batches of 100 instead of the advisor's cycle")
    ap.add_argument("--batches", type=int, default=400, help="with --ingest")
    ap.add_argument("--waiting", type=int, default=100_000)
    ap.add_argument("--redis-server", type=Path, default=None,
                    help="a redis-server with redis.pclock() (default: build one, cached)")
    args = ap.parse_args()
    server = args.redis_server or redis_with_clock()
    n, runner = (args.batches, RUN_INGEST) if args.ingest else (args.cycles, RUN)
    with tempfile.TemporaryDirectory() as tmp:
        instrumented(Path(tmp), ingest=args.ingest)
        plain = run(n, args.waiting, server, None, runner)
        marked = run(n, args.waiting, server, Path(tmp), runner)
    rows = table(marked["sums"], "the message's record (HSET)" if args.ingest
                 else "settings (load_cfg)")
    unit = "a message" if args.ingest else "a cycle"
    print(f"{'section':46} {'us ' + unit:>10} {'redis.call':>10} {'Lua':>6}")
    for name, total, calls, _n in sorted(rows, key=lambda r: -r[1]):
        print(f"{name:46} {total:10.2f} {calls:10.2f} {total - calls:6.2f}")
    total = sum(r[1] for r in rows)
    in_calls = sum(r[2] for r in rows)
    print(f"{'all sections':46} {total:10.2f} {in_calls:10.2f} {total - in_calls:6.2f}")
    call = "FCALL per batch of 100" if args.ingest else "FCALL per cycle"
    print(f"{call}: {plain['fcall_us']:.1f} us as the scripts are, "
          f"{marked['fcall_us']:.1f} us marked (the marks' own cost)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    kind = "lua-profile-ingest" if args.ingest else "lua-profile"
    path = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"cycles": args.cycles, "batches": args.batches if args.ingest
                                else None, "waiting": args.waiting,
                                "fcall_us": plain["fcall_us"],
                                "fcall_us_marked": marked["fcall_us"],
                                "sections": rows, "provenance": provenance()}, indent=1))
    print(f"raw results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
