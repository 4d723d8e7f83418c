"""The supervisors' live team view: who is online, on a break and since when, who holds what,
which group piles up; a snapshot over HTTP and the CLI, live over the team's stream."""

from __future__ import annotations

import json
import random
import time

import pytest
import redis
from click.testing import CliRunner
from conftest import TEAM, Api, assert_clean, make_team, message
from test_http_live import Stream

from cli.main import cli
from dispatcher import Dispatcher, ops
from dispatcher.testing import FakeClock

GROUPS = {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]}


@pytest.mark.parametrize("seed", range(6))
def test_the_view_matches_the_state_after_every_step_of_a_random_run(
        redis_client: redis.Redis, seed: int) -> None:
    rnd = random.Random(seed)
    redis_client.flushall()
    clock = FakeClock(1_773_133_200_000)
    advisors = ("ann", "bob", "cid")
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=advisors)
    d.configure(TEAM, presence_timeout_s=86400)
    d.set_groups(TEAM, GROUPS)
    state = {a: "offline" for a in advisors}
    held: dict[str, set[str]] = {a: set() for a in advisors}
    waiting = {"VIP": 0, "everything else": 0}
    group_of: dict[str, str] = {}
    responses = {a: 0 for a in advisors}
    arrivals = {"VIP": 0, "everything else": 0}
    break_since: dict[str, int] = {}
    for step in range(60):
        a = rnd.choice(advisors)
        roll = rnd.random()
        if roll < 0.3:
            vip = rnd.random() < 0.4
            d.ingest(TEAM, message(step, customer_tags=["VIP"] if vip else []))
            g = "VIP" if vip else "everything else"
            waiting[g] += 1
            arrivals[g] += 1
            group_of[f"m{step}"] = g
        elif roll < 0.45:
            if state[a] == "offline":
                d.login(TEAM, a)
                state[a] = "online"
            else:
                d.logout(TEAM, a)
                for m in held[a]:
                    waiting[group_of[m]] += 1
                held[a] = set()
                state[a] = "offline"
        elif roll < 0.7 and state[a] != "offline":
            push = d.next(TEAM, a)
            if push.status == "assigned":
                for m in push.messages:
                    held[a].add(m.id)
                    waiting[group_of[m.id]] -= 1
            state[a] = "online"  # a press ends a break
        elif roll < 0.85 and held[a]:
            m = sorted(held[a])[0]
            d.reply(TEAM, a, m)
            held[a].discard(m)
            responses[a] += 1
        elif state[a] == "online" and not held[a]:
            d.start_break(TEAM, a)
            state[a] = "on break"
            break_since[a] = clock()
        clock.advance(rnd.choice((1, 3, 10)))
        view = d.run(ops.team_live(TEAM))
        for row in view["advisors"]:
            who = row["advisor"]
            want = state[who]
            if want == "online":
                want = f"handling {len(held[who])}" if held[who] else "available"
            assert row["state"] == want, (step, who)
            assert row["holding"] == len(held[who]), (step, who)
            assert row["responses_today"] == responses[who], (step, who)
            if want == "on break":
                assert row["since"] == break_since[who]
        assert {g["group"]: g["waiting"] for g in view["groups"]} == waiting, step
        # the whole run lasts under 10 minutes: every arrival is in the last 15
        assert {g["group"]: g["arrivals_15min"] for g in view["groups"]} == arrivals, step
    assert_clean(d)


def test_the_view_says_since_when_and_how_old_what_they_hold_is(
        online: Dispatcher, clock: FakeClock) -> None:
    online.ingest(TEAM, message(1))
    clock.advance(30)
    online.next(TEAM, "ann")
    clock.advance(20)
    online.start_break(TEAM, "bob")
    clock.advance(5)
    view = {a["advisor"]: a for a in online.run(ops.team_live(TEAM))["advisors"]}
    assert (view["ann"]["state"], view["ann"]["seconds_in_state"],
            view["ann"]["oldest_held_s"]) == ("handling 1", 25.0, 55.0)
    assert (view["bob"]["state"], view["bob"]["seconds_in_state"]) == ("on break", 5.0)
    assert view["cid"]["state"] == "available"


def test_supervisors_get_the_view_live_and_advisors_never_do(api: Api) -> None:
    api.d.login(TEAM, "ann")
    api.d.login(TEAM, "bob")
    assert api.sup("GET", "/team-view").json()["advisors"][0]["advisor"] == "ann"
    sup = Stream(api, f"/v1/teams/{TEAM}/live", api.supervisor)
    adv = Stream(api, f"/v1/teams/{TEAM}/live", api.advisor["bob"])
    try:
        sup.wait_for(lambda e: e[0] == "stock")
        adv.wait_for(lambda e: e[0] == "stock")
        started = time.monotonic()
        assert api.adv("POST", "bob", "/break").status_code in (200, 201)
        e = sup.wait_for(lambda e: e[0] == "team" and any(
            a["advisor"] == "bob" and a["state"] == "on break" for a in e[2]["advisors"]),
            timeout=5)
        assert time.monotonic() - started < 1.5
        assert e[2]["team"] == TEAM
        api.push(message(1))
        sup.wait_for(lambda e: e[0] == "team" and e[2]["groups"][-1]["waiting"] == 1)
        time.sleep(0.6)
        assert not [e for e in adv.events if e[0] == "team"]
    finally:
        sup.close()
        adv.close()


def test_the_cli_shows_the_team_now_as_a_table_or_one_json_snapshot(
        redis_server: object, redis_client: redis.Redis) -> None:
    d = make_team(Dispatcher(redis_client), login=True)
    d.set_advisor(TEAM, "ann", "agent", skills=["ko"])
    d.ingest(TEAM, message(1))
    d.start_break(TEAM, "bob")
    url = redis_server.url  # type: ignore[attr-defined]
    runner = CliRunner()
    out = runner.invoke(cli, ["--redis-url", url, "--json", "team", "live", TEAM])
    assert out.exit_code == 0, out.output
    view = json.loads(out.output)
    assert {a["advisor"]: a["state"] for a in view["advisors"]} == {
        "ann": "available", "bob": "on break", "cid": "available"}
    table = runner.invoke(cli, ["--redis-url", url, "team", "live", TEAM, "--count", "2",
                                "--interval", "0.2"])
    assert table.exit_code == 0, table.output
    assert table.output.count("advisors") == 2 and "on break" in table.output
    assert "everything else" in table.output and "ko" in table.output


def test_the_cli_refuses_a_refresh_that_would_hammer_redis(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    out = CliRunner().invoke(cli, ["--redis-url", url, "team", "live", TEAM, "--interval", "0"])
    assert out.exit_code != 0 and "--interval" in out.output


def test_the_view_says_how_long_each_groups_first_conversation_has_waited(
        online: Dispatcher, clock: FakeClock) -> None:
    online.set_groups(TEAM, GROUPS)
    online.ingest(TEAM, message(1, customer_tags=["VIP"]))
    clock.advance(10)
    online.ingest(TEAM, message(2))
    online.ingest(TEAM, message(3, conv="c2"))  # a second message of the same conversation
    clock.advance(30)
    groups = {g["group"]: g for g in online.run(ops.team_live(TEAM))["groups"]}
    assert (groups["VIP"]["oldest_wait_s"], groups["everything else"]["oldest_wait_s"]) == (
        40.0, 30.0)
