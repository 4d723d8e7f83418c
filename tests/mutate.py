"""Mutation testing: plant each named bug of tests/mutations.toml, one at a time, in a scratch
copy of the project, and see whether the tests catch it.

    make mutate                      # every mutation; writes docs/mutations.md
    python tests/mutate.py -k quarantine --no-write

A mutation names a file, an exact text found there once (`find`, replaced by `replace`) or a
`check` rule to silence (`silence`: a text of the rule's message in check.lua), and its guard:
the test that names the rule it protects. The guard runs first; when it does not fail, the
fast lane runs (stopping at the first failure) to tell "caught, but not by its guard" from
"survived". Before anything is planted, every guard must pass on the unchanged copy.

A `find` text that is no longer in its file (or is there twice) stops the run: the list is
kept in step with the code it mutates. On demand, never part of `make test` (~8 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "mutations.toml"
REPORT = ROOT / "docs" / "mutations.md"
COPIED = ("dispatcher", "httpapi", "workers", "cli", "scripts", "tests", "bench", "docs",
          "pyproject.toml", "README.md", "Makefile")
#: When the guard does not catch a mutation: the core lane (as `make test-fast`).
LANE = ("test_push_order", "test_advisor_day", "test_ingest", "test_check", "test_conversations",
        "test_conversation_model", "test_isolation", "test_rebucketing",
        "test_hours_and_presence", "test_scripts", "test_bad_input", "test_everyday")


@dataclass
class Mutation:
    name: str
    file: str
    guard: str
    find: str = ""
    replace: str = ""
    silence: str = ""

    def planted(self, text: str) -> str:
        """The file's text with the mutation in; ValueError when it no longer applies once."""
        if self.silence:  # a check rule: its report line becomes a no-op
            lines = [i for i, line in enumerate(text.splitlines(keepends=True))
                     if "bad(" in line and self.silence in line]
            if len(lines) != 1:
                raise ValueError(f"{len(lines)} check rules mention {self.silence!r}")
            out = text.splitlines(keepends=True)
            out[lines[0]] = out[lines[0]].replace("bad(", "local _ = (", 1)
            return "".join(out)
        if text.count(self.find) != 1:
            raise ValueError(f"{text.count(self.find)} occurrences of {self.find!r}")
        return text.replace(self.find, self.replace)


@dataclass
class Outcome:
    mutation: Mutation
    verdict: str  # caught | caught-elsewhere | survived | error
    by: str
    seconds: float


def load(path: Path = LIST) -> list[Mutation]:
    with path.open("rb") as f:
        rows = tomllib.load(f)["mutation"]
    out = [Mutation(**row) for row in rows]
    names = [m.name for m in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"mutation names used twice: {sorted(dupes)}")
    return out


def scratch_copy(into: Path) -> Path:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, into / name,
                            ignore=shutil.ignore_patterns("__pycache__", "results", "*.pyc"))
        else:
            shutil.copy2(src, into / name)
    return into


def pytest(where: Path, args: list[str], timeout: float = 900) -> tuple[int, str]:
    """Run pytest in the scratch copy: its own code first on the path (the editable install
    of the real tree comes after it), for subprocesses too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHINBOX_")}
    env["PYTHONPATH"] = str(where)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           "--timeout", "120", *args]
    try:
        res = subprocess.run(cmd, cwd=where, env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    return res.returncode, res.stdout + res.stderr


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ", 1)[0]
    return "?"


def run_one(m: Mutation) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pushinbox-mutant-") as tmp:
        where = scratch_copy(Path(tmp))
        target = where / m.file
        target.write_text(m.planted(target.read_text(encoding="utf-8")), encoding="utf-8")
        rc, out = pytest(where, [m.guard])
        if rc == 1:
            return Outcome(m, "caught", m.guard, time.monotonic() - started)
        if rc not in (0, 1):
            return Outcome(m, "error", f"pytest exit {rc}: {out[-300:]}",
                           time.monotonic() - started)
        rc, out = pytest(where, [f"tests/{t}.py" for t in LANE])
        verdict = {0: "survived", 1: "caught-elsewhere"}.get(rc, "error")
        by = first_failure(out) if rc == 1 else ("" if rc == 0 else f"pytest exit {rc}")
        return Outcome(m, verdict, by, time.monotonic() - started)


def baseline(mutations: list[Mutation]) -> None:
    """Every guard passes on the unchanged copy, and the copy is what the tests import."""
    with tempfile.TemporaryDirectory(prefix="pushinbox-baseline-") as tmp:
        where = scratch_copy(Path(tmp))
        probe = subprocess.run(
            [sys.executable, "-c", "import dispatcher, scripts; print(dispatcher.__file__)"],
            cwd=where, env={**os.environ, "PYTHONPATH": str(where)}, capture_output=True,
            text=True, check=True)
        if not probe.stdout.strip().startswith(str(where)):
            raise SystemExit(f"the scratch copy is not what Python imports: {probe.stdout}")
        rc, out = pytest(where, sorted({m.guard for m in mutations}))
        if rc != 0:
            raise SystemExit(f"a guard fails without any mutation:\n{out[-3000:]}")
        rc, out = pytest(where, [f"tests/{t}.py" for t in LANE])
        if rc != 0:
            raise SystemExit(f"the lane fails without any mutation:\n{out[-3000:]}")


def report(outcomes: list[Outcome], seconds: float) -> str:
    caught = sum(o.verdict == "caught" for o in outcomes)
    elsewhere = sum(o.verdict == "caught-elsewhere" for o in outcomes)
    lines = [
        "# Mutation testing: is a green `make test` worth trusting?",
        "",
        "A test suite is only worth what it catches. `make mutate` (tests/mutate.py) plants "
        "each named bug of `tests/mutations.toml` alone, in a scratch copy of the project, and "
        "runs its *guard* (the test whose name says the rule it protects); when the guard "
        "stays green it runs the core lane (`make test-fast`'s files) to tell *caught "
        "elsewhere* from *survived*. Before planting anything it checks that every guard and "
        "the lane pass on the unchanged copy, and that the copy is what Python imports.",
        "",
        "The list covers the ordering (groups, the team's order, every match condition, the "
        "best group of a conversation and its promotion), capacity, requeues and their fence, "
        "quarantine's threshold, conversation affinity and its one-holder rules, breaks, "
        "day figures, isolation between teams, webhooks, and every rule of `check` silenced "
        "once (each violated by its own corruption in tests/test_check.py, which asserts the "
        "exact list of problems). A `find` text that no longer matches its file stops the run: "
        "the list moves with the code. Add a mutation with every new rule, and its guard "
        "with it.",
        "",
        "Verdicts: **caught** (its guard failed), **caught-elsewhere** (another test did: "
        "name a better guard or write one), **survived** (a hole: write the test first), "
        "**error** (the run itself failed).",
        "",
        "Around it, the suite keeps itself honest in these ways: `make test` replays a fixed "
        "set of model-based sequences (a red CI names a regression, not a new find) while "
        "`make test-model` explores new ones; the property tests start each example from a "
        "fresh team and assert that a fifth each were stored and refused; the job path runs "
        "as users run it (`--redis-url`, a real worker, no helper environment variables, "
        "nothing mutates `os.environ`); waits are for a condition with a deadline, not sleeps.",
        "",
        "## The last run",
        "",
        f"**Score: {caught} of {len(outcomes)} caught by their guard**"
        f" ({elsewhere} more caught by another test, "
        f"{sum(o.verdict == 'survived' for o in outcomes)} survived, "
        f"{sum(o.verdict == 'error' for o in outcomes)} errors), in {seconds:.0f} s.",
        "",
        "| mutation | file | verdict | caught by |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        by = o.by.replace("|", "\\|")
        lines.append(f"| {o.mutation.name} | `{o.mutation.file}` | {o.verdict} | `{by}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", help="only mutations whose name contains this text")
    ap.add_argument("--jobs", type=int, default=2, help="mutations run at once (default 2)")
    ap.add_argument("--no-write", action="store_true", help=f"do not write {REPORT.name}")
    args = ap.parse_args(argv)
    mutations = [m for m in load() if not args.k or args.k in m.name]
    if not mutations:  # (no guard to run: the baseline would otherwise run the whole suite)
        raise SystemExit(f"no mutation's name contains {args.k!r}")
    for m in mutations:  # a stale entry stops the run before anything is planted
        try:
            m.planted((ROOT / m.file).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError) as exc:
            raise SystemExit(f"mutation {m.name!r} no longer applies to {m.file}: {exc}") from exc
    started = time.monotonic()
    baseline(mutations)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for o in pool.map(run_one, mutations):
            outcomes.append(o)
            print(f"{o.verdict:17} {o.mutation.name}  ({o.by}, {o.seconds:.0f} s)", flush=True)
    text = report(outcomes, time.monotonic() - started)
    if not args.no_write and not args.k:
        REPORT.write_text(text, encoding="utf-8")
    print(next(line for line in text.splitlines() if line.startswith("**Score")))
    return 0 if all(o.verdict == "caught" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
