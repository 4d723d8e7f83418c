"""What each concern of the advisor's cycle costs Redis, measured by taking it out: this
checkout against a copy of itself with one concern's work removed from the scripts, side by
side on one redis-server (bench/ab.py's rounds: SLOWLOG per call, both clients at once,
which starts first alternating). The difference is what the concern costs per assign+reply
cycle, its commands and the Lua around them. A copy with a concern removed is not a product
(reports, events or capacity would be wrong): it exists for the measurement only.

    python -m bench.knockout [--rounds 3] [--cycles 3000] [-k reports]    (make bench-knockout)

Results are printed and written to bench/results/knockout-<time>.json (docs/performance.md,
"What a cycle is made of").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

from bench.ab import RESULTS, ROOT, one_round, worktree
from bench.provenance import provenance


class Knockout(NamedTuple):
    name: str
    commands: str  # which commands of a cycle go with it
    edits: tuple[tuple[str, str, str], ...]  # (file under scripts/lua, find, replace)


KNOCKOUTS = (
    Knockout("reports", "4 HINCRBY + ZADD GT a press, 2 HINCRBY a reply", (
        ("includes/handover.lua",
         "  rep_pushed(cfg, now, adv, g, waits, group_target(cfg, queue_group(c[1])))\n", ""),
        ("includes/actions.lua",
         "  rep_add(cfg, now, (field == 'r' and 'r|' or 'a|') .. a.id, 1)  -- responses, "
         "archives\n", ""),
        ("includes/actions.lua",
         "  if pushed_at then rep_add(cfg, now, 'ht|' .. a.id .. '|' .. int(bucket(now - "
         "pushed_at)), 1) end\n", ""),
    )),
    Knockout("events", "XADD a press, XADD a reply", (
        ("includes/events.lua",
         "  redis.call('XADD', K.events, 'MAXLEN', '~', cfg.evmax, '*', 'e', kind, 't', "
         "ms(now), ...)\n", ""),
    )),
    Knockout("capacity", "HLEN, ZADD push, HINCRBY pconv a press; ZREM push, HDEL a reply", (
        ("includes/press.lua", " or\n      redis.call('HLEN', K.pconv(a.id)) >= role.cap then",
         " then"),
        ("includes/handover.lua",
         "  if pushed then redis.call('ZADD', K.push(adv), t, id) end\n", ""),
        ("includes/handover.lua",
         "  if pushed then redis.call('HINCRBY', K.pconv(adv), conv, int(#ids)) end\n", ""),
        ("includes/handover.lua",
         "  if in_push and redis.call('ZREM', K.push(adv), id) == 1 then",
         "  if false then"),
    )),
    Knockout("channel stock", "HINCRBY the second's count, HINCRBY the channel's a press", (
        ("includes/handover.lua",
         "    chans[v[3]] = (chans[v[3]] or 0) + chan_out(cfg, v[3], ts, id)\n", ""),
        ("includes/handover.lua",
         "  for ch, n in pairs(chans) do chan_left(cfg, ch, n) end\n", ""),
    )),
    Knockout("done index", "ZADD done a reply", (
        ("includes/actions.lua", "  redis.call('ZADD', K.done, ms(now), O.msg)\n", ""),
    )),
    Knockout("day figure", "HINCRBY d:<day> a reply", (
        ("includes/actions.lua",
         "  day_add(cfg, now, field .. ':' .. a.id, 1)  -- the team's total is their sum, "
         "when read\n", ""),
    )),
)


def knocked_out(ko: Knockout) -> Path:
    """A worktree of HEAD with this checkout's scripts, minus the concern."""
    path = worktree("HEAD")
    # this checkout's scripts, uncommitted changes included (over the worktree's own copy)
    subprocess.run(["cp", "-r", f"{ROOT / 'scripts'}/.", str(path / "scripts")], check=True)
    for file, find, replace in ko.edits:
        target = path / "scripts" / "lua" / file
        text = target.read_text()
        if text.count(find) != 1:
            raise SystemExit(f"{ko.name}: {text.count(find)} occurrences in {file} of {find!r}")
        target.write_text(text.replace(find, replace))
    return path


def summarize(out: dict[str, Any], rounds: int, cycles: int) -> None:
    """Each concern's cost from its rounds, paired: a round's two versions met the same
    moments of the machine, so the median of the rounds' ratios (without / full) is steadier
    than a ratio of medians taken across rounds the machine ran at different speeds."""
    print(f"\nµs per assign+reply cycle (SLOWLOG, median per round), {rounds} rounds of "
          f"{cycles} cycles; share: 1 - the median of the rounds' ratios without / full")
    print(f"{'concern':14} {'full':>7} {'without':>8} {'costs':>7} {'share':>6}  commands")
    for name, row in out.items():
        full = [r["full"]["cycle"] for r in row["rounds"]]
        without = [r["ko"]["cycle"] for r in row["rounds"]]
        share = 1 - statistics.median(w / f for w, f in zip(without, full, strict=True))
        costs = statistics.median(f - w for w, f in zip(without, full, strict=True))
        row.update({"cycle_us": statistics.median(full), "without_us": statistics.median(without),
                    "saves_us": costs, "share": share})
        print(f"{name:14} {row['cycle_us']:7.1f} {row['without_us']:8.1f} {costs:7.1f} "
              f"{share * 100:5.1f}%  {row['commands']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-k", help="only the knockouts whose name contains this")
    ap.add_argument("--summarize", metavar="FILE", help="print a results file's table again")
    args = ap.parse_args()
    if args.summarize:
        saved = json.loads(Path(args.summarize).read_text())
        summarize(saved["knockouts"], saved["rounds"], saved["cycles"])
        return
    chosen = [k for k in KNOCKOUTS if not args.k or args.k in k.name]
    out: dict[str, Any] = {}
    for ko in chosen:
        path = knocked_out(ko)
        try:
            rounds = []
            for r in range(args.rounds):
                print(f"{ko.name}: round {r + 1} of {args.rounds}…", flush=True)
                rounds.append(one_round({"full": ROOT, "ko": path}, args.cycles,
                                        flip=r % 2 == 1))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                           check=False, capture_output=True)
        out[ko.name] = {"commands": ko.commands, "rounds": rounds}
    summarize(out, args.rounds, args.cycles)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"knockout-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"cycles": args.cycles, "rounds": args.rounds,
                                "knockouts": out, "provenance": provenance()}, indent=2))
    print(f"raw results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
