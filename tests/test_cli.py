"""The `pushinbox` command, as ops and a newcomer use it, against a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from cli.main import cli
from dispatcher import keys
from dispatcher.testing import RedisServer


@pytest.fixture
def run(redis_server: RedisServer, redis_client: redis.Redis) -> object:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, ok: bool = True) -> Result:
        result = runner.invoke(cli, ["--redis-url", redis_server.url, "--inline", *args],
                               input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_an_advisor_replies_and_gets_the_next_message_in_one_command(run) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent", "--push")
    run("advisor", "add", "acme", "ann", "--role", "agent")
    for n in (1, 2):
        run("ingest", "acme", "--id", f"m{n}", "--conversation", f"c{n}", "--customer", "u1",
            "--channel", "webchat", "--text", "Hi")
    run("login", "acme", "ann")
    run("next", "acme", "ann")
    out = run("reply-and-next", "acme", "ann", "m1").output
    assert "Replied to m1." in out and "m2" in out
    again = json.loads(run("--json", "reply-and-next", "acme", "ann", "m1").stdout)
    assert (again["replied"], again["status"]) == ("noop", "pending")
    assert "stock is empty" in run("reply-and-next", "acme", "ann", "m2").output
    refused = run("reply-and-next", "acme", "ann", "m404", ok=False)
    assert refused.exit_code == 1 and "m404" in refused.output
    stats = json.loads(run("--json", "stats", "acme", "ann").stdout)
    assert stats["responses"] == 2


def test_a_newcomer_pushes_a_message_in_and_gets_it_pushed(run, tmp_path: Path) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent", "--push")
    run("advisor", "add", "acme", "ann", "--role", "agent")
    groups = tmp_path / "groups.yaml"
    groups.write_text("order: oldest_conversation\ngroups:\n"
                      "  - name: VIP\n    match: {customer_tags_any: [VIP]}\n")
    run("groups", "set", "acme", str(groups))
    assert "VIP" in run("groups", "show", "acme").output
    run("ingest", "acme", "--id", "m1", "--conversation", "c1", "--customer", "u1",
        "--channel", "webchat", "--text", "Where is my order?")
    run("ingest", "acme", "--id", "m2", "--conversation", "c2", "--customer", "u2",
        "--channel", "whatsapp", "--text", "Hi", "--customer-tag", "VIP")
    stock = json.loads(run("--json", "stock", "acme").stdout)
    assert stock["total"] == 2
    assert stock["channels"]["whatsapp"]["waiting"] == 1
    run("login", "acme", "ann")
    out = run("next", "acme", "ann").output
    assert "m2" in out and "customer tag VIP" in out
    assert "Process this message first" in run("next", "acme", "ann").output
    run("reply", "acme", "ann", "m2")
    pushed = json.loads(run("--json", "next", "acme", "ann").stdout)
    assert pushed["messages"][0]["id"] == "m1"
    run("archive", "acme", "ann", "m1")
    assert "stock is empty" in run("next", "acme", "ann").output
    stats = json.loads(run("--json", "stats", "acme", "ann").stdout)
    assert (stats["responses"], stats["archives"], stats["assigned"]) == (1, 1, 0)
    assert "acme" in run("check").output


def test_ingest_reads_a_jsonl_file_with_progress(run, tmp_path: Path) -> None:
    run("team", "create", "acme")
    f = tmp_path / "msgs.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"m{i}", "conversation": f"c{i}",
                                       "customer": "u", "channel": "email", "body": i})
                           for i in range(250)) + "\n")
    out = json.loads(run("--json", "ingest", "acme", str(f)).stdout)
    assert out == {"queued": 250}
    assert json.loads(run("--json", "ingest", "acme", str(f)).stdout) == {"duplicate": 250}
    preview = json.loads(run("--json", "preview", "acme", "-n", "3").stdout)
    assert [p["conversation"] for p in preview] == ["c0", "c1", "c2"]


def test_errors_are_one_readable_line_and_a_non_zero_exit(run, tmp_path: Path) -> None:
    r = run("next", "nowhere", "ann", ok=False)
    assert r.exit_code == 1
    assert r.output.strip() == "error: unknown team nowhere (team)"
    run("team", "create", "acme")
    r = run("team", "create", "acme", ok=False)
    assert r.output.strip() == "error: team acme already exists (team)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: x\n    match: {colour: red}\n")
    r = run("groups", "set", "acme", str(bad), ok=False)
    assert r.exit_code == 1
    assert "groups[0].match.colour is not a condition" in r.output
    assert len(r.output.strip().splitlines()) == 1
    f = tmp_path / "broken.jsonl"
    f.write_text('{"id": "m1"\n')
    r = run("ingest", "acme", str(f), ok=False)
    assert "line 1 is not JSON" in r.output


def test_unreachable_redis_is_reported_in_one_line() -> None:
    from dispatcher.testing import free_port

    r = CliRunner().invoke(cli, ["--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                                 "stock", "acme"])
    assert r.exit_code == 1
    assert r.output.startswith("error: Redis is unreachable")


def test_check_exits_non_zero_on_drift(run, redis_client: redis.Redis) -> None:
    run("team", "create", "acme")
    run("ingest", "acme", "--id", "m1", "--channel", "email")
    assert run("check", "acme").exit_code == 0
    redis_client.hincrby(keys.channel_counts("acme", "email"), "n", 1)
    r = run("check", "acme", ok=False)
    assert r.exit_code == 1
    assert "the email stock count says 2 waiting, 1 wait" in r.output


def test_supervisor_and_break_commands(run, tmp_path: Path) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent")
    for a in ("ann", "bob"):
        run("advisor", "add", "acme", a, "--role", "agent")
        run("login", "acme", a)
    hours = tmp_path / "hours.json"
    hours.write_text(json.dumps({"timezone": "Europe/Paris",
                                 "week": {"mon": ["09:00-18:00"]}}))
    run("hours", "set", "acme", str(hours))
    assert "Europe/Paris" in run("hours", "show", "acme").output
    for i in range(3):
        run("ingest", "acme", "--id", f"m{i}", "--conversation", f"c{i}")
    run("next", "acme", "ann")
    run("help", "acme", "ann", "m0")
    assert "m0" in run("help-requests", "acme").output
    run("assign", "acme", "bob", "m0")
    assert "m0" in run("current", "acme", "bob").output
    run("requeue", "acme", "--message", "m0")
    run("break", "start", "acme", "ann")
    assert "on break" in run("advisor", "list", "acme").output
    run("break", "end", "acme", "ann")
    run("next", "acme", "bob")
    run("logout", "acme", "bob")
    assert json.loads(run("--json", "stock", "acme").stdout)["total"] == 3
    assert json.loads(run("--json", "breaks", "acme", "--days", "2").stdout)["team"] == "acme"
    events = json.loads(run("--json", "events", "acme", "--count", "500").stdout)
    kinds = {e["e"] for e in events}
    assert {"ingested", "assigned", "help_requested", "requeued", "break_started",
            "break_ended", "logged_out"} <= kinds
    assert json.loads(run("--json", "team", "show", "acme").stdout)["hours"]["timezone"] \
        == "Europe/Paris"
    run("team", "set", "acme", "--untouched-after", "600", "--max-requeues", "3")
    run("tick")
    assert run("check").exit_code == 0


def test_every_command_and_subcommand_answers_help() -> None:
    import click

    runner = CliRunner()
    for name, cmd in cli.commands.items():
        paths = [[name]]
        if isinstance(cmd, click.Group):
            paths += [[name, sub] for sub in cmd.commands]
        for path in paths:
            r = runner.invoke(cli, [*path, "--help"])
            assert r.exit_code == 0, path
            assert "Usage:" in r.output and len(r.output.splitlines()) > 3, path
        assert cmd.help, f"{name} has no help"


def test_triage_roles_tags_hold_take_and_quarantine_commands(run, tmp_path: Path) -> None:
    run("team", "create", "acme")
    assert "acme" in run("team", "list").stdout
    run("role", "set", "acme", "agent", "--capacity", "2")
    run("role", "set", "acme", "classic", "--no-push")
    roles = {r["role"]: r for r in json.loads(run("--json", "role", "list", "acme").stdout)}
    assert (roles["agent"]["capacity"], roles["classic"]["push"]) == (2, False)
    run("advisor", "add", "acme", "ann", "--role", "agent")
    run("advisor", "add", "acme", "dee", "--role", "classic")
    run("login", "acme", "ann")
    run("login", "acme", "dee")
    rules = tmp_path / "triage.yaml"
    rules.write_text("- name: faxes\n  match: {channel_in: [fax]}\n  advisor: dee\n")
    run("triage", "set", "acme", str(rules))
    assert "faxes" in run("triage", "show", "acme").stdout
    out = json.loads(run("--json", "ingest", "acme", "--id", "f1", "--channel", "fax").stdout)
    assert out["status"] == "assigned:dee"
    run("ingest", "acme", "--id", "m1", "--conversation", "c1", "--customer", "u1")
    run("ingest", "acme", "--id", "m2", "--conversation", "c2", "--customer", "u2")
    run("groups", "set", "acme", "-", input='{"groups": [{"name": "VIP", '
        '"match": {"customer_tags_any": ["VIP"]}}]}')
    moved = json.loads(run("--json", "customer-tags", "acme", "u2", "VIP").stdout)
    assert moved["conversations_moved"] == 1
    assert json.loads(run("--json", "preview", "acme", "-n", "1").stdout)[0]["group"] == "VIP"
    r = run("take", "acme", "ann", "m1", ok=False)
    assert "push mode" in r.output
    assert "m1" in run("take", "acme", "dee", "m1").stdout
    run("next", "acme", "ann")
    run("hold", "acme", "ann", "m2")
    run("unhold", "acme", "ann", "m2")
    assert json.loads(run("--json", "current", "acme", "ann").stdout)[0]["on_hold"] is False
    run("team", "set", "acme", "--max-requeues", "1")
    run("logout", "acme", "ann")
    run("login", "acme", "ann")
    run("next", "acme", "ann")
    run("logout", "acme", "ann")
    assert "m2" in run("quarantine", "acme").stdout
    run("requeue", "acme", "--message", "m2")
    assert json.loads(run("--json", "quarantine", "acme").stdout) == []
    assert run("check").exit_code == 0


def test_ops_create_list_and_revoke_tokens_stored_only_hashed(run, redis_client) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent", "--push")
    run("advisor", "add", "acme", "ann", "--role", "agent")
    made = json.loads(run("--json", "token", "create", "advisor", "--team", "acme",
                          "--advisor", "ann", "--name", "ann's console").stdout)
    assert made["token"].startswith(f"pi_{made['id']}_")
    stored = b"".join(v for v in redis_client.hgetall(keys.TOKENS).values())
    assert made["token"].encode() not in stored
    assert made["token"].split("_", 2)[2].encode() not in stored
    listed = json.loads(run("--json", "token", "list").stdout)
    assert [(t["id"], t["scope"], t["advisor"]) for t in listed] == [(made["id"], "advisor",
                                                                       "ann")]
    assert "token" not in listed[0]
    bad = run("token", "create", "advisor", "--team", "acme", "--advisor", "zed", ok=False)
    assert bad.exit_code == 1 and "unknown advisor zed" in bad.output
    bad = run("token", "create", "supervisor", ok=False)
    assert bad.exit_code == 1 and "needs a team" in bad.output
    run("token", "revoke", made["id"])
    assert json.loads(run("--json", "token", "list").stdout) == []
    assert run("token", "revoke", made["id"], ok=False).exit_code == 1


def test_ops_add_list_and_remove_webhooks(run, monkeypatch: pytest.MonkeyPatch) -> None:
    run("team", "create", "acme")
    refused = run("hook", "add", "acme", "http://127.0.0.1:6379/", "--event", "replied", ok=False)
    assert refused.exit_code == 1 and "not a public address" in refused.output
    # This machine resolves no public name: the operator names the host as allowed.
    monkeypatch.setenv("PUSHINBOX_HOOK_ALLOW", "crm.example")
    made = json.loads(run("--json", "hook", "add", "acme", "https://crm.example/hook",
                          "--event", "replied", "--event", "archived").stdout)
    assert made["secret"].startswith("whsec_")
    listed = json.loads(run("--json", "hook", "list", "acme").stdout)
    assert listed == [{k: v for k, v in made.items() if k != "secret"}]
    bad = run("hook", "add", "acme", "https://x", "--event", "exploded", ok=False)
    assert bad.exit_code == 1 and "events[0]" in bad.output
    run("hook", "remove", "acme", made["id"])
    assert json.loads(run("--json", "hook", "list", "acme").stdout) == []


def test_hostile_jsonl_lines_are_refused_naming_the_line_and_field_storing_nothing(
        run, tmp_path: Path, redis_client) -> None:
    run("team", "create", "acme")
    before = sorted(redis_client.scan_iter(count=1000))
    good = {"id": "m1", "conversation": "c1", "customer": "u1", "channel": "web", "body": "hi"}
    for bad, field in [
        ({**good, "id": "has space"}, "id"),
        ({**good, "id": "m2", "customer_tags": ["x"] * 500}, "customer_tags"),
        ({**good, "id": "m2", "channel": "redis.call('FLUSHALL') -- x"}, "channel"),
        ({**good, "id": "m2", "body": "x" * 70_000}, "body"),
        ({**good, "id": "m2", "surprise": "\u202e"}, "surprise"),
    ]:
        f = tmp_path / "in.jsonl"
        f.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        r = run("ingest", "acme", str(f), ok=False)
        assert r.exit_code == 1, r.output
        assert field in r.output and "line 2:" in r.output, r.output  # the file's line
        assert sorted(redis_client.scan_iter(count=1000)) == before


def test_ops_delete_a_team_and_everything_it_holds(run, redis_client: redis.Redis) -> None:
    run("team", "create", "gone")
    run("team", "create", "kept")
    for team in ("gone", "kept"):
        run("role", "set", team, "agent")
        run("advisor", "add", team, "ann", "--role", "agent")
        run("login", team, "ann")
        for i in range(30):
            run("ingest", team, "--id", f"m{i}", "--conversation", f"c{i}", "--channel", "email")
        run("next", team, "ann")
    kept_before = len(redis_client.keys("pi:{kept}:*"))
    refused = run("team", "delete", "gone", ok=False)
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert redis_client.exists(keys.cfg("gone"))
    out = json.loads(run("--json", "team", "delete", "gone", "--yes").stdout)
    assert out["deleted_keys"] > 60
    assert redis_client.keys("pi:{gone}:*") == []
    assert "gone" not in run("team", "list").output
    assert len(redis_client.keys("pi:{kept}:*")) == kept_before
    assert "kept" in run("check", "kept").output
    missing = run("team", "delete", "gone", "--yes", ok=False)
    assert missing.exit_code == 1 and "unknown team gone" in missing.output
    assert "unknown team gone" in run("next", "gone", "ann", ok=False).output


def test_bench_measures_a_deployment_in_a_scratch_team_it_then_removes(
        run, redis_client: redis.Redis) -> None:
    run("team", "create", "acme")
    before = set(redis_client.keys("*"))
    out = json.loads(run("--json", "bench", "--waiting", "3000", "--advisors", "4",
                         "--seconds", "0.3", "--reps", "3").stdout)
    rows = {r["case"]: r for r in out["table"]}
    cycles = rows["assign+reply cycles/s (4 advisors)"]
    assert cycles["min"] > 0 and cycles["min"] <= cycles["median"] <= cycles["max"]
    assert cycles["ratio"] == pytest.approx(
        cycles["median"] / rows["minimal assign ceiling calls/s"]["median"])
    assert rows["Redis µs per assign+reply cycle"]["median"] > 0
    assert len(out["raw"]["assign"]) == 3
    assert out["team"].startswith("bench-")
    assert set(redis_client.keys("*")) - before == set(), "the scratch team was left behind"
    assert "bench-" not in run("team", "list").output
    table = run("bench", "--waiting", "500", "--advisors", "2", "--seconds", "0.2",
                "--reps", "1").stdout
    assert "minimal assign ceiling calls/s" in table and "ratio" in table


def test_requeue_hands_a_logged_out_advisors_messages_back_and_refuses_a_logged_in_one(
        run) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent", "--push")
    run("advisor", "add", "acme", "ann", "--role", "agent")
    run("ingest", "acme", "--id", "m1", "--conversation", "c1", "--customer", "u1",
        "--channel", "email", "--text", "hi")
    run("login", "acme", "ann")
    run("next", "acme", "ann")
    busy = run("requeue", "acme", "ann", ok=False)
    assert busy.exit_code == 1
    assert busy.output.strip() == "error: advisor ann is logged in; log them out first (advisor)"
    assert "unknown advisor zed" in run("requeue", "acme", "zed", ok=False).output
    run("logout", "acme", "ann")  # --inline: the requeue ran already
    assert json.loads(run("--json", "requeue", "acme", "ann").stdout) == {
        "advisor": "ann", "requeued": 0}


def test_skills_are_given_taken_and_previewed_per_advisor_and_per_group(
        run, tmp_path: Path) -> None:
    run("team", "create", "acme")
    run("role", "set", "acme", "agent", "--push")
    run("advisor", "add", "acme", "kim", "--role", "agent", "--skill", "ko", "--skill", "refunds")
    run("advisor", "add", "acme", "lou", "--role", "agent")
    groups = tmp_path / "groups.yaml"
    groups.write_text("groups:\n  - name: Korean\n    match: {language_in: [ko]}\n"
                      "    requires_skills: [ko]\n")
    run("groups", "set", "acme", str(groups))
    assert "REQUIRES_SKILLS" in run("groups", "show", "acme").output
    run("ingest", "acme", "--id", "m1", "--conversation", "c1", "--customer", "u1",
        "--channel", "webchat", "--text", "annyeong", "--language", "ko")
    run("ingest", "acme", "--id", "m2", "--conversation", "c2", "--customer", "u2",
        "--channel", "webchat", "--text", "hello")
    run("login", "acme", "lou")
    by_group = run("preview", "acme", "--groups").output
    assert "UNSERVED" in by_group and "Korean" in by_group
    assert [r["conversation"] for r in json.loads(
        run("--json", "preview", "acme", "--advisor", "lou").stdout)] == ["c2"]
    assert [r["conversation"] for r in json.loads(
        run("--json", "preview", "acme", "--advisor", "kim").stdout)] == ["c1", "c2"]
    assert json.loads(run("--json", "next", "acme", "lou").stdout)["messages"][0]["id"] == "m2"
    out = json.loads(run("--json", "advisor", "set", "acme", "kim", "--no-skill", "refunds",
                         "--skill", "fr").stdout)
    assert out["skills"] == ["fr", "ko"]
    assert "fr,ko" in run("advisor", "list", "acme").output
    bad = run("advisor", "set", "acme", "kim", "--skill", "no spaces", ok=False)
    assert bad.exit_code != 0 and "add[0]" in bad.output
    rules = tmp_path / "triage.yaml"
    rules.write_text("- name: Disputes\n  match: {message_tags_any: [dispute]}\n"
                     "  skill: refunds\n")
    run("triage", "set", "acme", str(rules))
    shown = run("triage", "show", "acme").output
    assert "Disputes" in shown and "refunds" in shown
    run("ingest", "acme", "--id", "m3", "--conversation", "c3", "--customer", "u3",
        "--channel", "webchat", "--text", "I dispute this", "--tag", "dispute")
    assert [r["conversation"] for r in json.loads(
        run("--json", "preview", "acme", "--advisor", "kim").stdout)] == ["c1"]
    run("advisor", "set", "acme", "kim", "--skill", "refunds")
    assert [r["conversation"] for r in json.loads(
        run("--json", "preview", "acme", "--advisor", "kim").stdout)] == ["c1", "c3"]


@pytest.mark.parametrize("option, field", [
    ("--retention", "retention_s"), ("--presence-timeout", "presence_timeout_s"),
    ("--untouched-after", "untouched_after_s"), ("--max-requeues", "max_requeues"),
    ("--max-messages", "max_messages"), ("--max-body-bytes", "max_body_bytes"),
    ("--max-ingest-rate", "max_ingest_rate")])
def test_a_team_setting_past_its_range_is_one_line_naming_it_and_changes_nothing(
        run, option: str, field: str) -> None:
    run("team", "create", "acme")
    before = run("--json", "team", "show", "acme").output
    for huge in ("99999999999999999999999", "9007199254740993"):  # past 64 bits; past 2^53
        r = run("team", "set", "acme", option, huge, ok=False)
        assert r.exit_code == 1, r.output
        assert r.output.startswith("error: ") and f"({field})" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    assert run("--json", "team", "show", "acme").output == before
