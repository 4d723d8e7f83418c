"""The benchmark cases themselves, at toy sizes: `make bench` must keep running on a fresh clone,
and its churn case is also a concurrency test (presses while a logout requeue and a
re-bucketing run), so every message is accounted for afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import core
from dispatcher import Dispatcher, keys
from dispatcher.testing import RedisServer


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    redis_server.client().flushall()
    return redis_server


def test_presses_go_on_while_a_logout_requeue_and_a_rebucketing_run(server: RedisServer) -> None:
    res = core.case_churn(server, held=3000, waiting=600, advisors=4, batch=25, idle=0.3)
    # ~120 batches each: the advisors pressed while both moves ran
    assert res["requeue_presses"] > 0 and res["rebucket_presses"] > 0
    assert res["requeue_p99_ms"] > 0 and res["rebucket_p99_ms"] > 0
    d = Dispatcher(server.client())
    report = d.check(core.TEAM)
    assert report.ok, report.problems
    client = server.client()
    assert client.zcard(keys.current(core.TEAM, "leaver")) == 0
    # nothing waits under the settings version the re-bucketing replaced
    assert d.rebucket_progress(core.TEAM)["conversations_left"] == 0
    # every message is in exactly one place: done, in an advisor's hands, or waiting
    done = client.zcard(keys.done(core.TEAM))
    held = sum(client.zcard(keys.current(core.TEAM, f"a{i}")) for i in range(4))
    assert done + held + d.stock(core.TEAM).total == 3600


def test_the_core_cases_measure_against_references_of_the_same_run(server: RedisServer) -> None:
    client = server.client()
    d = Dispatcher(client)
    core.seed(d, 3000)
    sync = core.case_assign(server, 3, 0.2)
    assert sync["per_s"] > 0 and sync["redis_us_per_cycle"] > 0
    for n, case in enumerate((core.case_assign_async, core.case_ceiling_async,
                              core.case_ceiling)):
        core.seed_ceiling(client, core.CEILING_TEAM, 3000, start=n * 3000)
        res = case(server, 3, 0.2)
        assert res["per_s"] > 0 and res["p99_ms"] > 0, case.__name__
    # the cycle in one call (reply-and-next) and its minimal one-call reference
    before = d.stock(core.TEAM).total
    one = core.case_assign_async(server, 3, 0.2, one_call=True)
    assert one["per_s"] > 0 and one["p99_ms"] > 0
    done = client.zcard(keys.done(core.TEAM))
    assert d.stock(core.TEAM).total < before and done > 0  # it replied as it pressed
    core.seed_ceiling(client, core.CEILING_TEAM, 3000, start=9000)
    assert core.case_ceiling_one_call_async(server, 3, 0.2)["per_s"] > 0
    ingest = core.case_ingest(server, 10, 0.2, 10**6)
    ceiling = core.case_ingest_ceiling(server, 10, 0.2, 10**6)
    assert ingest["per_s"] > 0 and ceiling["per_s"] > 0
    assert d.check(core.TEAM).ok
    breakdown = core.memory_breakdown(client, 3000, sample=20)
    assert breakdown["message hash"] > 0 and breakdown["queue sorted-set entries"] > 0
    assert breakdown["channel stock counts per second"] > 0


def test_the_http_bench_refuses_a_cycle_run_whose_stock_ran_out() -> None:
    """A press on an empty stock is a fast answer: counted, it would inflate the requests
    and cap the cycles/s at the stock (as a run of the tenth session did)."""
    from bench import http

    with pytest.raises(SystemExit, match="stock ran out"):
        http.check_run("cycle+log", {"empty": 12})
    with pytest.raises(SystemExit, match="stock ran out"):
        http.check_run("reply-next", {"empty": 1})
    http.check_run("cycle", {"empty": 0})
    http.check_run("next", {"empty": 5})  # the retry path: nothing to run out of
    # enough for twice what the service does on this machine (~10,000 requests a second)
    assert http.stock("cycle", 10) >= 2 * 10 * 10_000
    assert http.stock("reply-next", 10) >= 2 * 10 * 10_000


def test_every_knockout_and_profile_mark_still_finds_its_line_in_the_scripts(
        tmp_path: Path) -> None:
    """bench.knockout and bench.lua_profile edit a copy of the scripts by their text; a script
    changed since leaves them stopping at their first run (as four of the knockouts did)."""
    from bench import knockout, lua_profile

    lua = Path(knockout.ROOT) / "scripts" / "lua"
    stale = [(ko.name, file, find) for ko in knockout.KNOCKOUTS for file, find, _ in ko.edits
             if (lua / file).read_text().count(find) != 1]
    assert not stale
    lua_profile.instrumented(tmp_path / "cycle")  # stops naming the line it no longer finds
    marked = (tmp_path / "cycle" / "scripts" / "lua" / "reply_next.lua").read_text()
    assert marked.count("mark(") >= 5 and "prof_start()" in marked
    lua_profile.instrumented(tmp_path / "ingest", ingest=True)
    marked = (tmp_path / "ingest" / "scripts" / "lua" / "ingest.lua").read_text()
    assert marked.count("mark(") >= 12 and "prof_start()" in marked


def test_every_planted_bug_still_finds_its_line_and_names_a_guard_that_exists() -> None:
    """tests/mutations.toml plants each bug by a text of its file and names the test that
    guards it; a script changed since leaves `make mutate` stopping at its first run (as two
    did after the ingest's batch became a flat list), so the list is held to the code here."""
    from mutate import ROOT, load

    stale = []
    for m in load():
        try:
            m.planted((ROOT / m.file).read_text())
        except ValueError as exc:
            stale.append((m.name, str(exc)))
        path, _, name = m.guard.partition("::")  # (a guard may be a whole file)
        guard = ROOT / path
        if not guard.exists() or (name and f"def {name.split('[')[0]}(" not in
                                  guard.read_text()):
            stale.append((m.name, f"no guard {m.guard}"))
    assert not stale


def test_every_results_file_says_what_measured_it() -> None:
    """Each results file names the commit, the redis-server, redis-py, hiredis and Python that
    made it, the cores and the machine's load at the start (figures move with all of them)."""
    import subprocess
    from importlib import metadata

    from bench import provenance as prov
    from dispatcher.servers import redis_server_binary

    p = prov.provenance()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=prov.ROOT, check=False).stdout.strip()
    if head:  # a source tree outside git (an sdist) has no commit to name
        assert p["commit"].removesuffix("+changes") == head
    server = subprocess.run([redis_server_binary(), "--version"], capture_output=True,
                            text=True, check=True).stdout
    assert f"v={p['redis_server']} " in server
    assert p["redis_py"] == metadata.version("redis")
    assert p["hiredis"] == metadata.version("hiredis")
    assert p["cpus"] >= 1 and p["loadavg_1m_at_start"] >= 0
    # and every bench that writes a results file writes it
    for path in sorted((prov.ROOT / "bench").glob("*.py")):
        text = path.read_text()
        if "write_text(json.dumps(" in text:
            assert "provenance()" in text, f"{path.name} writes results without provenance"
