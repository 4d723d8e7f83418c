"""Everyday flows that broke for advisors and operators (issue: everyday flows), each as a
user meets it."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from conftest import TEAM, make_team, message

from cli.main import cli
from dispatcher import Dispatcher
from dispatcher.errors import ConflictError, ForbiddenError, NotFoundError, NotYoursError
from dispatcher.testing import FakeClock, RedisServer


def test_a_role_with_push_mode_off_is_refused_a_push(team: Dispatcher) -> None:
    team.set_role(TEAM, "classic", push=False)
    team.set_advisor(TEAM, "dan", "classic")
    team.login(TEAM, "dan")
    team.ingest(TEAM, message(1))
    with pytest.raises(ForbiddenError) as err:
        team.next(TEAM, "dan")
    assert "push mode" in str(err.value)
    assert [m.id for m in team.take(TEAM, "dan", "m1")] == ["m1"]  # they pick instead


def test_a_release_from_quarantine_starts_the_bounce_count_afresh(online: Dispatcher) -> None:
    d = online
    d.configure(TEAM, max_requeues=1)
    d.ingest(TEAM, message(1))
    for adv in ("ann", "bob"):  # two bounces: quarantined on the second
        assert [m.id for m in d.next(TEAM, adv).messages] == ["m1"]
        d.logout(TEAM, adv)
    assert [m.id for m in d.quarantined(TEAM)] == ["m1"]
    assert d.send_to_stock(TEAM, "m1") == "ok"
    (back,) = d.messages(TEAM, ["m1"])
    assert back.requeues == 0 and back.state == "waiting"
    assert [m.id for m in d.next(TEAM, "cid").messages] == ["m1"]
    d.logout(TEAM, "cid")  # the first bounce after the release: back to the stock
    assert d.messages(TEAM, ["m1"])[0].state == "waiting"


def test_a_message_assigned_out_of_quarantine_starts_afresh_too(online: Dispatcher) -> None:
    d = online
    d.configure(TEAM, max_requeues=1)
    d.ingest(TEAM, message(1))
    for adv in ("ann", "bob"):
        d.next(TEAM, adv)
        d.logout(TEAM, adv)
    assert [m.id for m in d.quarantined(TEAM)] == ["m1"]
    d.assign(TEAM, "cid", "m1")
    assert d.messages(TEAM, ["m1"])[0].requeues == 0


def test_a_message_back_in_the_stock_no_longer_shows_its_earlier_group(
        online: Dispatcher) -> None:
    d = online
    d.set_groups(TEAM, {"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Automatically reassigned", "match": {"reassigned": True}}]})
    d.ingest(TEAM, message(1, customer_tags=["VIP"]))
    assert d.next(TEAM, "ann").messages[0].group == "VIP"
    d.set_customer_tags(TEAM, "u1", [])
    d.logout(TEAM, "ann")
    (preview,) = d.preview(TEAM, 1)
    assert preview["group"] == "Automatically reassigned"
    assert d.messages(TEAM, ["m1"])[0].group in ("", None, "Automatically reassigned")


@pytest.mark.parametrize("sizes", [[1000], [400, 400, 400]])
def test_arrival_order_holds_for_any_batch_size_within_one_millisecond(
        redis_client: redis.Redis, sizes: list[int]) -> None:
    clock = FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))  # time stands still
    d = make_team(Dispatcher(redis_client, clock=clock), login=True)
    n = 0
    for size in sizes:
        batch = []
        for _ in range(size):
            n += 1
            batch.append(message(n))
        d.ingest_many(TEAM, batch)
    order = [p["conversation"] for p in d.preview(TEAM, 1000)]
    assert order == [f"c{i}" for i in range(1, 1001)]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_the_cli_sends_its_jobs_to_the_redis_it_was_given(
        redis_server: RedisServer, redis_client: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_URL, no RQ_REDIS_URL: --redis-url is where the jobs go too (not 6379)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    make_team(Dispatcher(redis_client), login=True)
    Dispatcher(redis_client).ingest(TEAM, message(1))
    runner = CliRunner()
    run = lambda *a: runner.invoke(cli, ["--redis-url", redis_server.url, *a])  # noqa: E731
    assert run("next", TEAM, "ann").exit_code == 0
    out = run("--json", "logout", TEAM, "ann")
    assert out.exit_code == 0, out.output
    job = json.loads(out.stdout)["requeue_job"]
    assert job and redis_client.lrange("rq:queue:pushinbox", 0, -1) == [job.encode()]


def test_a_job_that_cannot_be_queued_is_one_line_and_the_reconciler_finishes(
        redis_server: RedisServer, redis_client: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RQ_REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest(TEAM, message(1))
    d.next(TEAM, "ann")
    out = CliRunner().invoke(cli, ["--redis-url", redis_server.url, "logout", TEAM, "ann"])
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output
    assert "could not be queued" in out.output and "reconciler" in out.output
    assert d.advisor_stats(TEAM, "ann").state == "offline"
    d.tick(TEAM)
    assert d.stock(TEAM).total == 1 and d.check(TEAM).ok


def test_metrics_answer_with_a_content_type_strict_parsers_accept(api: object) -> None:
    from email.message import Message

    from prometheus_client.parser import text_string_to_metric_families

    res = api.http.get("/metrics")  # type: ignore[attr-defined]
    ctype = res.headers["content-type"]
    assert ctype.count("charset") == 1, ctype
    parsed = Message()
    parsed["content-type"] = ctype
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_param("version") == "0.0.4" or parsed.get_param("version") == "1.0.0"
    assert list(text_string_to_metric_families(res.text))


def test_the_readme_python_example_prints_nothing(redis_server: RedisServer) -> None:
    """A library stays quiet unless the application configures logging."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)  # type: ignore[union-attr]
    code = re.sub(r'redis://localhost:\d+/0', redis_server.url, code)
    assert redis_server.url in code
    redis.Redis.from_url(redis_server.url).flushall()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", (done.stdout, done.stderr)


@pytest.mark.parametrize("args", [
    ["--redis-url", "notaurl", "stock", "acme"],
    ["--redis-url", "redis+sentinel://", "stock", "acme"],
    ["--redis-url", "redis://127.0.0.1:1/0", "ingest", "acme", "/nonexistent/messages.jsonl"],
])
def test_cli_failures_are_one_line_and_exit_1(args: list[str]) -> None:
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1, out.output
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.output


def test_make_soak_is_a_target() -> None:
    import subprocess
    from pathlib import Path

    dry = subprocess.run(["make", "-n", "soak"], cwd=Path(__file__).parent.parent,
                         capture_output=True, text=True)
    assert dry.returncode == 0 and "pushinbox soak --private-redis" in dry.stdout, dry.stdout


def test_the_service_waits_for_replicas_when_told_to(redis_server: RedisServer,
                                                     redis_client: redis.Redis) -> None:
    """PUSHINBOX_WAIT_REPLICAS reaches the HTTP service's driver too (one policy)."""
    import httpx

    from dispatcher import tokens
    from dispatcher.servers import ServiceProcess

    d = make_team(Dispatcher(redis_client))
    ingest = d.run(tokens.create_token("ingest", teams=[TEAM])).token
    svc = ServiceProcess(redis_server.url, env={"PUSHINBOX_WAIT_REPLICAS": "1"},
                         access_log=False).start()
    try:
        def waits() -> int:
            stats = redis_client.info("commandstats")
            return int(stats.get("cmdstat_wait", {}).get("calls", 0))

        before = waits()
        res = httpx.post(f"{svc.url}/v1/teams/{TEAM}/messages", json=message(1),
                         headers={"Authorization": f"Bearer {ingest}"}, timeout=30)
        assert res.status_code == 202, res.text
        assert waits() == before + 1  # no replica here: it waited (200 ms) and said so
        assert "replicas_behind" in svc.log()
    finally:
        svc.stop()


def test_a_jsonl_file_with_a_bad_line_stores_nothing_and_names_the_line_once(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: object) -> None:
    from pathlib import Path

    make_team(Dispatcher(redis_client))
    lines = [json.dumps(message(i)) for i in range(1, 151)]
    bad = message(121)
    del bad["customer"]
    lines[120] = json.dumps(bad)
    lines.insert(5, "")  # a blank line: line numbers are the file's
    f = Path(str(tmp_path)) / "messages.jsonl"
    f.write_text("\n".join(lines) + "\n")
    out = CliRunner().invoke(cli, ["--redis-url", redis_server.url, "ingest", TEAM, str(f)])
    assert out.exit_code == 1
    assert out.output.strip().startswith("error: line 122: "), out.output
    assert out.output.count("line 122") == 1 and "customer" in out.output
    assert Dispatcher(redis_client).stock(TEAM).total == 0


def _all_commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        if cmd.hidden:
            continue
        if isinstance(cmd, click.Group):
            out += _all_commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_shows_an_example_in_its_help() -> None:
    runner = CliRunner()
    missing = [" ".join(c) for c in _all_commands(cli)
               if "pushinbox " + " ".join(c) not in runner.invoke(cli, [*c, "--help"]).output]
    assert not missing, missing


def test_cli_manners_json_anywhere_iso_times_newest_events_first(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    d.start_break(TEAM, "ann")
    run = lambda *a: CliRunner().invoke(cli, ["--redis-url", redis_server.url, *a])  # noqa: E731
    after = run("stock", TEAM, "--json")
    assert after.exit_code == 0 and json.loads(after.stdout)["total"] == 1
    stats = run("stats", TEAM, "ann").stdout
    line = next(ln for ln in stats.splitlines() if ln.startswith("break_started_at"))
    assert line.split()[-1].endswith("Z") and "T" in line.split()[-1], line
    events = run("events", TEAM).stdout.splitlines()
    assert events[0].split()[:3] == ["ID", "AT", "EVENT"]
    assert "break_started" in events[1]  # the newest first
    asked = run("request-help", TEAM, "ann", "m1")
    assert asked.exit_code == 0, asked.output
    listing = run("--help").output
    assert "  request-help " in listing and "\n  help " not in listing
    d.next(TEAM, "bob")
    old = run("help", TEAM, "bob", "m2")  # the old name still works, hidden
    assert old.exit_code == 0 and d.messages(TEAM, ["m2"])[0].state == "help", old.output


def test_metrics_export_the_waiting_counts_at_scrape_time(api: object) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    a: Any = api
    a.push(*[message(i) for i in range(61)])  # nobody reads /stock
    text = a.http.get("/metrics").text
    waiting = {s.labels["channel"]: s.value
               for fam in text_string_to_metric_families(text)
               if fam.name == "pushinbox_waiting_messages"
               for s in fam.samples if s.labels.get("team") == TEAM}
    # (a channel this process saw waiting earlier in the session stays exported at 0)
    assert {c: v for c, v in waiting.items() if v} == {"webchat": 61}, waiting


def test_the_webhook_pump_lives_through_a_redis_outage() -> None:
    """It used to catch redis errors only: the dispatcher's UnavailableError ended it for good."""
    import time

    from rq import Queue

    from dispatcher.servers import RedisServer as Server
    from workers.hooks import HookPump

    server = Server().start()
    try:
        d = Dispatcher(redis.Redis.from_url(server.url, socket_timeout=1))
        d.create_team("t")
        pump = HookPump(d, Queue("pushinbox-hooks", connection=server.client()), interval=0.05)
        pump.start()
        port = server.port
        server.stop()
        time.sleep(1.5)  # rounds fail meanwhile
        assert pump.is_alive()
        server = Server(port=port).start()
        seen = pump.ok_rounds
        deadline = time.monotonic() + 40
        while pump.ok_rounds < seen + 3:  # it backs off, then goes on by itself
            assert pump.is_alive() and time.monotonic() < deadline
            time.sleep(0.1)
        pump.stopped.set()
    finally:
        server.stop()


def test_a_retention_under_a_day_never_lowers_figures_and_leaves_nothing_behind(
        online: Dispatcher, clock: FakeClock) -> None:
    d = online
    d.configure(TEAM, retention_s=3600)
    d.ingest_many(TEAM, [message(i, customer="u-old") for i in range(3)])
    for _ in range(3):
        for m in d.next(TEAM, "ann").messages:
            d.reply(TEAM, "ann", m.id)
    clock.advance(7200)  # same UTC day: 11:00
    d.tick(TEAM)  # the purge runs
    assert d.redis.zcard(f"pi:{{{TEAM}}}:done") == 0
    report = d.check(TEAM)
    assert report.ok, report.problems
    d.repair(TEAM)
    assert d.advisor_stats(TEAM, "ann").responses == 3
    left = [k.decode() for k in d.redis.keys(f"pi:{{{TEAM}}}:*")]
    assert not [k for k in left if ":c:" in k or ":cu:" in k or ":cuv:" in k or ":cc:" in k], left


def test_the_end_of_a_break_restarts_the_presence_clock(online: Dispatcher,
                                                       clock: FakeClock) -> None:
    d = online
    d.set_hours(TEAM, {"timezone": "UTC", "week": {"tue": ["08:00-12:30"]}})
    clock.set(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    d.start_break(TEAM, "ann")
    clock.set(datetime(2026, 3, 10, 12, 30, tzinfo=UTC))
    d.tick(TEAM)  # the break ends at the end of hours; ann was on a break, not away
    clock.advance(3)
    d.tick(TEAM)
    assert d.advisor_stats(TEAM, "ann").state == "online"


def test_the_ticker_runs_its_watchdog_and_survives_it_failing(redis_client: redis.Redis) -> None:
    import threading

    from workers.scheduling import Ticker, queue

    calls = threading.Semaphore(0)

    def watchdog() -> None:
        calls.release()
        raise RuntimeError("a broken watchdog")

    ticker = Ticker(queue(redis_client), interval=0.05, on_tick=watchdog)
    ticker.start()
    try:
        for _ in range(3):  # called again and again although it raises
            assert calls.acquire(timeout=5)
        assert ticker.is_alive()
    finally:
        ticker.stopped.set()


def test_a_worker_run_as_users_run_it_does_the_logout_requeue_and_leaks_nothing(
        redis_server: RedisServer, redis_client: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pushinbox --redis-url X logout`, then `pushinbox --redis-url X worker --burst`: the
    worker (not the reconciler) runs the job, and no environment variable is left behind."""
    import os

    from workers import jobs

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest(TEAM, message(1))
    d.next(TEAM, "ann")
    run = lambda *a: CliRunner().invoke(cli, ["--redis-url", redis_server.url, *a])  # noqa: E731
    assert run("logout", TEAM, "ann").exit_code == 0
    assert d.stock(TEAM).total == 0  # queued as a job, not done inline
    done = run("worker", "--burst")
    assert done.exit_code == 0, done.output
    assert d.stock(TEAM).total == 1 and d.current(TEAM, "ann") == []
    assert "REDIS_URL" not in os.environ
    assert jobs.redis_url() == "redis://127.0.0.1:6379/0"


def test_a_break_ended_before_it_started_counts_nothing(online: Dispatcher,
                                                        clock: FakeClock) -> None:
    # A scheduled end computed for an earlier range, or a client clock behind the server's.
    d = online
    d.start_break(TEAM, "ann")
    started = d.now_ms()
    clock.advance(60)
    assert d.end_break(TEAM, "ann", at_ms=started - 60_000) == 0
    assert d.advisor_stats(TEAM, "ann").break_seconds == 0
    assert d.next(TEAM, "ann").status == "empty"  # back at work, not on break


def _state(r: redis.Redis) -> dict[bytes, Any]:
    """Every key's content but the event stream: to prove an action changed nothing."""
    return {k: r.dump(k) for k in r.scan_iter(count=1000) if not k.endswith(b":events")}


@pytest.fixture
def desk(online: Dispatcher) -> Dispatcher:
    """m0 done by ann, m1 with bob, m2 and m3 waiting; dan works in a classic role (picks)."""
    d = online
    d.set_role(TEAM, "classic", push=False, capacity=5)
    d.set_advisor(TEAM, "dan", "classic")
    d.login(TEAM, "dan")
    d.ingest_many(TEAM, [message(i) for i in range(4)])
    d.next(TEAM, "ann")
    d.reply(TEAM, "ann", "m0")
    d.next(TEAM, "bob")
    return d


WRONG_MESSAGE = {
    "assign an unknown message": (lambda d: d.assign(TEAM, "cid", "nope"), NotFoundError),
    "assign a done message": (lambda d: d.assign(TEAM, "cid", "m0"), ConflictError),
    "take an unknown message": (lambda d: d.take(TEAM, "dan", "nope"), NotFoundError),
    "take a message someone holds": (lambda d: d.take(TEAM, "dan", "m1"), ConflictError),
    "send an unknown message to the stock": (lambda d: d.send_to_stock(TEAM, "nope"),
                                             NotFoundError),
    "send a done message to the stock": (lambda d: d.send_to_stock(TEAM, "m0"), ConflictError),
    "hold another advisor's message": (lambda d: d.hold(TEAM, "ann", "m1"), NotYoursError),
    "reply to another advisor's message": (lambda d: d.reply(TEAM, "cid", "m1"), NotYoursError),
}


@pytest.mark.parametrize("case", sorted(WRONG_MESSAGE))
def test_an_action_on_the_wrong_message_is_refused_naming_it_and_changes_nothing(
        desk: Dispatcher, case: str) -> None:
    act, error = WRONG_MESSAGE[case]
    before = _state(desk.redis)
    with pytest.raises(error) as exc:
        act(desk)
    assert exc.value.field == "message"
    assert _state(desk.redis) == before


@pytest.mark.parametrize("case", ["send a waiting message to the stock",
                                  "unhold a message not on hold"])
def test_an_action_already_in_effect_is_a_noop(desk: Dispatcher, case: str) -> None:
    before = _state(desk.redis)
    answer = {"send a waiting message to the stock": lambda: desk.send_to_stock(TEAM, "m2"),
              "unhold a message not on hold": lambda: desk.unhold(TEAM, "bob", "m1")}[case]()
    assert answer == "noop"
    assert _state(desk.redis) == before


def test_assigning_a_held_message_moves_it_and_assigning_it_again_changes_nothing(
        desk: Dispatcher) -> None:
    d = desk
    assert [m.id for m in d.assign(TEAM, "cid", "m1")] == ["m1"]
    assert d.current(TEAM, "bob") == [] and [m.id for m in d.current(TEAM, "cid")] == ["m1"]
    before = _state(d.redis)
    assert d.assign(TEAM, "cid", "m1") == []
    assert _state(d.redis) == before
    report = d.check(TEAM)
    assert report.ok, report.problems
