"""Skills: a priority group may require skills; *Process a new message* gives an advisor the
first message of the ordered list among the groups whose skills they have."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import redis
from conftest import (
    TEAM,
    Api,
    LaterJobs,
    assert_clean,
    make_team,
    message,
    press_until_empty,
)

from dispatcher import Dispatcher, ValidationError, defaults, ops
from dispatcher.testing import FakeClock

SKILL_GROUPS = {"groups": [
    {"name": "Korean", "match": {"language_in": ["ko"]}, "requires_skills": ["ko"]},
    {"name": "Refunds", "match": {"message_tags_any": ["refund"]},
     "requires_skills": ["refunds"]},
    {"name": "Korean refunds", "match": {"message_tags_any": ["kr-refund"]},
     "requires_skills": ["ko", "refunds"]},
    {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
]}


@pytest.fixture
def skilled(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=("ann", "bob", "cid", "dee"))
    d.set_advisor(TEAM, "ann", "agent", skills=["ko"])
    d.set_advisor(TEAM, "bob", "agent", skills=["refunds"])
    d.set_advisor(TEAM, "cid", "agent", skills=["ko", "refunds"])
    d.set_groups(TEAM, SKILL_GROUPS)
    for a in ("ann", "bob", "cid", "dee"):
        d.login(TEAM, a)
    return d


def ingest_in_order(d: Dispatcher, clock: FakeClock, *msgs: dict[str, object]) -> None:
    for m in msgs:
        d.ingest(TEAM, m)
        clock.advance(1)


def first_of_each_press(d: Dispatcher, advisor: str) -> list[str]:
    out = []
    while True:
        push = d.next(TEAM, advisor)
        if push.status == "empty":
            return out
        for m in push.messages:
            d.reply(TEAM, advisor, m.id)
        out.append(push.messages[0].id)


def test_an_advisor_without_the_skill_is_never_pushed_that_groups_messages(
        skilled: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(skilled, clock, message(1, language="ko"), message(2),
                    message(3, tags=["refund"]))
    assert first_of_each_press(skilled, "dee") == ["m2"]
    assert [r["group"] for r in skilled.preview(TEAM, 5)] == ["Korean", "Refunds"]
    assert_clean(skilled)


def test_an_advisor_gets_the_first_message_among_the_groups_they_may_take(
        skilled: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(skilled, clock, message(1), message(2, customer_tags=["VIP"]),
                    message(3, tags=["refund"]), message(4, language="ko"),
                    message(5, tags=["kr-refund"]))
    # bob (refunds): Refunds first, then VIP, then everything else; never Korean ones
    assert first_of_each_press(skilled, "bob") == ["m3", "m2", "m1"]
    # ann (ko): the Korean message; the Korean refund needs both skills
    assert first_of_each_press(skilled, "ann") == ["m4"]
    assert first_of_each_press(skilled, "cid") == ["m5"]
    assert_clean(skilled)


def test_a_skill_given_or_taken_counts_from_the_next_press(
        skilled: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(skilled, clock, message(1, language="ko"), message(2, language="ko"))
    assert skilled.next(TEAM, "dee").status == "empty"
    skilled.run(ops.set_skills(TEAM, "dee", add=["ko"]))
    assert skilled.next(TEAM, "dee").messages[0].id == "m1"
    skilled.run(ops.set_skills(TEAM, "ann", remove=["ko"]))
    assert skilled.next(TEAM, "ann").status == "empty"
    assert [a["skills"] for a in skilled.advisors(TEAM)] == [[], ["refunds"], ["ko", "refunds"],
                                                              ["ko"]]


def test_preview_for_an_advisor_shows_what_their_presses_get(
        skilled: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(skilled, clock, message(1), message(2, customer_tags=["VIP"]),
                    message(3, tags=["refund"]), message(4, language="ko"),
                    message(5, tags=["kr-refund"]))
    seen = []
    for adv in ("ann", "bob", "dee", "cid"):  # each takes what their preview showed, in order
        shown = [r["conversation"] for r in skilled.preview(TEAM, 10, advisor=adv)]
        assert shown == [f"c{m[1:]}" for m in first_of_each_press(skilled, adv)]
        assert skilled.preview(TEAM, 10, advisor=adv) == []
        seen.append(shown)
    assert seen == [["c4", "c2", "c1"], ["c3"], [], ["c5"]]


def test_the_team_preview_counts_who_may_take_each_group_and_flags_nobody(
        skilled: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(skilled, clock, message(1, language="ko"), message(2, language="ko"),
                    message(3, tags=["refund"]), message(4))
    skilled.logout(TEAM, "ann")
    skilled.logout(TEAM, "cid")
    rows = {g["group"]: g for g in skilled.run(ops.group_stock(TEAM))}
    assert rows["Korean"] == {"group": "Korean", "requires_skills": ["ko"], "waiting": 2,
                              "restricted": {}, "advisors_who_may_take": 0, "unserved": True}
    assert rows["Refunds"]["advisors_who_may_take"] == 1 and not rows["Refunds"]["unserved"]
    assert rows["Korean refunds"] == {"group": "Korean refunds",
                                      "requires_skills": ["ko", "refunds"], "waiting": 0,
                                      "restricted": {}, "advisors_who_may_take": 0,
                                      "unserved": False}
    assert rows["everything else"]["advisors_who_may_take"] == 2
    assert rows["everything else"]["waiting"] == 1


def test_groups_show_their_required_skills_back(skilled: Dispatcher) -> None:
    shown = skilled.groups(TEAM).to_dict()
    assert shown["groups"][2]["requires_skills"] == ["ko", "refunds"]
    assert "requires_skills" not in shown["groups"][3]


def test_waiting_stock_of_older_settings_keeps_its_skills_until_rebucketed(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs()))
    d.set_advisor(TEAM, "ann", "agent", skills=["ko"])
    d.set_groups(TEAM, SKILL_GROUPS)
    d.login(TEAM, "ann")
    d.login(TEAM, "bob")
    ingest_in_order(d, clock, message(1, language="ko"), message(2))
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    # not re-bucketed yet: m1 still sits in the Korean group of the older settings
    assert [r["conversation"] for r in d.preview(TEAM, 5, advisor="bob")] == ["c2"]
    assert d.next(TEAM, "bob").messages[0].id == "m2"
    d.reply(TEAM, "bob", "m2")
    assert d.next(TEAM, "bob").status == "empty"
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    assert_clean(d)


@pytest.mark.parametrize(("skills", "field"), [
    (["ko", "bad id"], "skills[1]"),
    ([f"s{i}" for i in range(defaults.MAX_SKILLS + 1)], "skills"),
    (["x" * 200], "skills[0]"),
])
def test_bad_skills_are_refused_naming_the_field(team: Dispatcher, skills: list[str],
                                                 field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        team.set_advisor(TEAM, "ann", "agent", skills=skills)
    assert exc.value.field == field
    with pytest.raises(ValidationError) as exc:
        team.set_groups(TEAM, {"groups": [{"name": "g", "match": {}, "requires_skills": skills}]})
    assert exc.value.field == f"groups[0].requires_{field}"


def test_adding_skills_past_the_cap_is_refused_and_changes_nothing(team: Dispatcher) -> None:
    full = [f"s{i}" for i in range(defaults.MAX_SKILLS)]
    team.set_advisor(TEAM, "ann", "agent", skills=full)
    with pytest.raises(ValidationError) as exc:
        team.run(ops.set_skills(TEAM, "ann", add=["one-more"]))
    assert exc.value.field == "skills"
    assert next(a for a in team.advisors(TEAM) if a["advisor"] == "ann")["skills"] == sorted(full)


def test_another_teams_skills_and_groups_change_nothing_here(
        skilled: Dispatcher, clock: FakeClock) -> None:
    skilled.create_team("other")
    skilled.set_role("other", "agent")
    skilled.set_advisor("other", "dee", "agent", skills=["ko"])
    skilled.set_groups("other", {"groups": [{"name": "all", "match": {},
                                             "requires_skills": ["ko"]}]})
    ingest_in_order(skilled, clock, message(1))
    assert skilled.next(TEAM, "dee").messages[0].id == "m1"


# --- an independent model, press by press ---------------------------------------------------
def model_press(waiting: list[tuple[int, int, str, str | None]], needs: list[set[str]],
                has: set[str]) -> str | None:
    """The first (group, arrival) message among the groups whose skills ``has`` covers and,
    for a message triage restricted to a skill, that skill too."""
    allowed = [w for w in waiting if needs[w[0]] <= has and (w[3] is None or w[3] in has)]
    if not allowed:
        return None
    best = min(allowed, key=lambda w: (w[0], w[1]))
    waiting.remove(best)
    return best[2]


@pytest.mark.parametrize("seed", range(12))
def test_presses_match_an_independent_model_of_skills(redis_client: redis.Redis,
                                                      seed: int) -> None:
    rnd = random.Random(seed)
    redis_client.flushall()
    clock = FakeClock(1_773_133_200_000)
    advisors = ("a0", "a1", "a2", "a3")
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=advisors, login=True)
    pool = ["x", "y", "z"]
    needs = [set(rnd.sample(pool, rnd.randint(0, 2))) for _ in range(4)]
    d.set_groups(TEAM, {"groups": [
        {"name": f"g{g}", "match": {"message_tags_any": [f"t{g}"]},
         **({"requires_skills": sorted(needs[g])} if needs[g] else {})} for g in range(4)]})
    needs.append(set())  # everything else
    # messages tagged k wait restricted to a skill (a triage rule), in whatever group
    restrict = rnd.choice(pool)
    d.set_triage(TEAM, [{"name": "k", "match": {"message_tags_any": ["k"]},
                         "skill": restrict}])
    has = {a: set(rnd.sample(pool, rnd.randint(0, 3))) for a in advisors}
    for a in advisors:
        d.run(ops.set_skills(TEAM, a, skills=sorted(has[a])))
    waiting: list[tuple[int, int, str, str | None]] = []
    for step in range(80):
        roll = rnd.random()
        if roll < 0.5:
            g = rnd.randint(0, 4)
            k = rnd.random() < 0.3
            d.ingest(TEAM, message(step, tags=([f"t{g}"] if g < 4 else []) + (["k"] if k else [])))
            waiting.append((g, step, f"m{step}", restrict if k else None))
            clock.advance(1)
        elif roll < 0.9:
            a = rnd.choice(advisors)
            push = d.next(TEAM, a)
            got = push.messages[0].id if push.messages else None
            assert got == model_press(waiting, needs, has[a]), (step, a)
            for m in push.messages:
                d.reply(TEAM, a, m.id)
        else:
            a = rnd.choice(advisors)
            has[a] = set(rnd.sample(pool, rnd.randint(0, 3)))
            d.run(ops.set_skills(TEAM, a, skills=sorted(has[a])))
    assert_clean(d)


def test_advisors_with_different_skills_pressing_at_once_get_each_message_once(
        redis_server: object, redis_client: redis.Redis) -> None:
    d = make_team(Dispatcher(redis_client), advisors=tuple(f"a{i}" for i in range(8)))
    d.set_groups(TEAM, SKILL_GROUPS)
    skills = {f"a{i}": [["ko"], ["refunds"], ["ko", "refunds"], []][i % 4] for i in range(8)}
    for a, s in skills.items():
        d.set_advisor(TEAM, a, "agent", skills=s)
        d.login(TEAM, a)
    kinds = [{"language": "ko"}, {"tags": ["refund"]}, {"tags": ["kr-refund"]},
             {}]
    need = [{"ko"}, {"refunds"}, {"ko", "refunds"}, set()]
    d.ingest_many(TEAM, [message(i, **kinds[i % 4]) for i in range(400)])
    got = press_until_empty(redis_server.port, skills)  # type: ignore[attr-defined]
    counts = Counter(m for ids in got.values() for m in ids)
    assert sorted(counts) == sorted(f"m{i}" for i in range(400))
    assert set(counts.values()) == {1}
    for a, ids in got.items():
        for m in ids:
            assert need[int(m[1:]) % 4] <= set(skills[a]), (a, m)
    assert_clean(d)


# --- over HTTP ----------------------------------------------------------------------------
def test_supervisors_give_skills_and_see_who_may_take_each_group_over_http(api: Api) -> None:
    res = api.call("PUT", f"/v1/teams/{TEAM}/advisors/dee", api.admin,
                   json={"role": "agent", "skills": ["ko"]})
    assert res.status_code == 200, res.text
    res = api.sup("PUT", "/groups", json={"groups": [
        {"name": "Korean", "match": {"language_in": ["ko"]}, "requires_skills": ["ko"]}]})
    assert res.status_code == 200, res.text
    assert api.sup("GET", "/groups").json()["groups"][0]["requires_skills"] == ["ko"]
    api.push(message("h1", language="ko"), message("h2"))
    api.d.login(TEAM, "ann")
    assert [r["conversation"] for r in api.sup("GET", "/preview?advisor=ann").json()] == ["ch2"]
    rows = {g["group"]: g for g in api.sup("GET", "/groups/stock").json()}
    assert rows["Korean"]["unserved"] is True and rows["Korean"]["waiting"] == 1
    metrics = api.http.get("/metrics").text
    assert f'pushinbox_unserved_groups{{team="{TEAM}"}} 1.0' in metrics
    res = api.sup("PUT", "/advisors/ann/skills", json={"add": ["ko", "fr"], "remove": ["fr"]})
    assert res.json() == {"advisor": "ann", "skills": ["ko"]}
    assert [a["skills"] for a in api.sup("GET", "/advisors").json()
            if a["advisor"] == "ann"] == [["ko"]]
    assert not {g["group"]: g for g in api.sup("GET", "/groups/stock").json()}["Korean"][
        "unserved"]
    assert api.adv("POST", "ann", "/next").json()["messages"][0]["id"] == "mh1"
    bad = api.sup("PUT", "/advisors/ann/skills", json={"add": ["a b"]})
    assert bad.status_code == 422 and bad.json()["field"] == "add[0]"
    # an advisor cannot give themselves skills
    mine = api.call("PUT", f"/v1/teams/{TEAM}/advisors/ann/skills", api.advisor["ann"],
                    json={"add": ["refunds"]})
    assert mine.status_code == 403


# --- triage rules that target a skill ------------------------------------------------------
KOREAN_TRIAGE = [{"name": "Korean speakers", "match": {"language_in": ["ko"]}, "skill": "ko"}]


@pytest.fixture
def triaged(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=("ann", "bob", "cid"))
    d.set_advisor(TEAM, "ann", "agent", skills=["ko"])
    d.set_advisor(TEAM, "cid", "agent", skills=["ko", "refunds"])
    d.set_groups(TEAM, {"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Refunds", "match": {"message_tags_any": ["refund"]},
         "requires_skills": ["refunds"]}]})
    d.set_triage(TEAM, KOREAN_TRIAGE)
    for a in ("ann", "bob", "cid"):
        d.login(TEAM, a)
    return d


def test_a_message_triaged_to_a_skill_keeps_its_groups_place_for_advisors_with_the_skill(
        triaged: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(triaged, clock, message(1), message(2, language="ko"),
                    message(3, customer_tags=["VIP"], language="ko"), message(4))
    # the team's list keeps each in its group, by arrival
    assert [(r["conversation"], r["group"]) for r in triaged.preview(TEAM, 5)] == [
        ("c3", "VIP"), ("c1", "everything else"), ("c2", "everything else"),
        ("c4", "everything else")]
    assert [r["conversation"] for r in triaged.preview(TEAM, 5, advisor="bob")] == ["c1", "c4"]
    assert first_of_each_press(triaged, "bob") == ["m1", "m4"]
    assert first_of_each_press(triaged, "ann") == ["m3", "m2"]
    assert_clean(triaged)


def test_a_skill_from_triage_adds_to_the_skills_its_group_requires(
        triaged: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(triaged, clock, message(1, language="ko", tags=["refund"]))
    assert triaged.next(TEAM, "ann").status == "empty"  # ko, but not refunds
    rows = {g["group"]: g for g in triaged.run(ops.group_stock(TEAM))}
    assert rows["Refunds"]["restricted"] == {"ko": 1} and rows["Refunds"]["waiting"] == 1
    triaged.logout(TEAM, "cid")
    rows = {g["group"]: g for g in triaged.run(ops.group_stock(TEAM))}
    assert rows["Refunds"]["unserved"]
    triaged.login(TEAM, "cid")
    assert first_of_each_press(triaged, "cid") == ["m1"]


def test_the_restriction_survives_a_requeue_and_a_new_settings_version(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs()),
                  advisors=("ann", "bob"))
    d.set_advisor(TEAM, "ann", "agent", skills=["ko"])
    d.set_triage(TEAM, KOREAN_TRIAGE)
    d.login(TEAM, "ann")
    d.login(TEAM, "bob")
    ingest_in_order(d, clock, message(1, language="ko"), message(2))
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    d.logout(TEAM, "ann")
    d.run(ops.requeue_now(TEAM, "ann", 50))
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    assert [r["conversation"] for r in d.preview(TEAM, 5, advisor="bob")] == ["c2"]
    d.rebucket(TEAM)
    assert [r["conversation"] for r in d.preview(TEAM, 5, advisor="bob")] == ["c2"]
    assert first_of_each_press(d, "bob") == ["m2"]
    d.login(TEAM, "ann")
    assert first_of_each_press(d, "ann") == ["m1"]
    assert_clean(d)


def test_a_conversation_answered_and_written_to_again_is_triaged_afresh(
        triaged: Dispatcher, clock: FakeClock) -> None:
    ingest_in_order(triaged, clock, message(1, conv="c", language="ko"))
    assert first_of_each_press(triaged, "ann") == ["m1"]
    ingest_in_order(triaged, clock, message(2, conv="c", language="en"))
    assert first_of_each_press(triaged, "bob") == ["m2"]  # no rule matches: unrestricted


@pytest.mark.parametrize(("rule", "field"), [
    ({"name": "x", "match": {}, "advisor": "ann", "skill": "ko"}, "rules[0].advisor"),
    ({"name": "x", "match": {}}, "rules[0].advisor"),
    ({"name": "x", "match": {}, "skill": "no spaces"}, "rules[0].skill"),
    ({"name": "x", "match": {}, "skill": ["ko"]}, "rules[0].skill"),
])
def test_a_triage_rule_names_one_advisor_or_one_skill(team: Dispatcher, rule: dict[str, object],
                                                      field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        team.set_triage(TEAM, [rule])
    assert exc.value.field == field


def test_triage_rules_show_their_skill_back(triaged: Dispatcher) -> None:
    assert [r.to_dict() for r in triaged.run(ops.triage(TEAM))] == KOREAN_TRIAGE


def test_the_scripts_cap_restricted_skills_as_defaults_says() -> None:
    from pathlib import Path

    lua = (Path(__file__).parent.parent / "scripts" / "lua" / "includes" / "stock.lua")
    assert f"local MAX_RESTRICTED = {defaults.MAX_RESTRICTED_SKILLS}\n" in lua.read_text()
