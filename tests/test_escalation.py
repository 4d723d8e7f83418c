"""Escalation by waiting time: `waiting_longer_than` puts a message that has waited too long
in an earlier group; the stock moves as messages cross, presses and previews see it at once."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from conftest import (
    TEAM,
    LaterJobs,
    assert_clean,
    make_team,
    message,
    press_until_empty,
    stop_worker,
)

from dispatcher import Dispatcher, ValidationError, ops
from dispatcher.testing import FakeClock, RedisServer

OVERDUE = {"groups": [
    {"name": "Overdue", "match": {"waiting_longer_than": 900}},
    {"name": "WhatsApp overdue", "match": {"channel_in": ["whatsapp"], "waiting_longer_than": 300}},
    {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
]}


@pytest.fixture
def desk(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    d = make_team(Dispatcher(redis_client, clock=clock), login=True)
    d.set_groups(TEAM, OVERDUE)
    return d


def press(d: Dispatcher, adv: str = "ann") -> tuple[str, str] | None:
    push = d.next(TEAM, adv)
    if push.status == "empty":
        return None
    first = push.messages[0]
    for m in push.messages:
        d.reply(TEAM, adv, m.id)
    return first.id, first.group or ""


def test_a_message_waiting_past_the_threshold_is_pushed_before_anything_else(
        desk: Dispatcher, clock: FakeClock) -> None:
    desk.ingest(TEAM, message(1))
    clock.advance(10)
    desk.ingest(TEAM, message(2, customer_tags=["VIP"]))
    clock.advance(500)
    assert [r["group"] for r in desk.preview(TEAM, 5)] == ["VIP", "everything else"]
    clock.advance(391)  # m1 has now waited 901 s: no mover has run, the preview sees it
    rows = desk.preview(TEAM, 5)
    assert [(r["conversation"], r["group"]) for r in rows] == [("c1", "Overdue"), ("c2", "VIP")]
    assert rows[0]["why"] == "waiting longer than 15 min"
    assert press(desk) == ("m1", "Overdue")
    assert press(desk) == ("m2", "VIP")
    assert_clean(desk)


def test_a_press_alone_sees_what_crossed_its_threshold(desk: Dispatcher,
                                                       clock: FakeClock) -> None:
    # no escalator, no preview: the press itself re-places what is due before it looks
    desk.ingest(TEAM, message(1))
    clock.advance(10)
    desk.ingest(TEAM, message(2, customer_tags=["VIP"]))
    clock.advance(900)
    assert press(desk) == ("m1", "Overdue")


def test_a_waiting_time_combines_with_other_conditions(desk: Dispatcher,
                                                       clock: FakeClock) -> None:
    desk.ingest(TEAM, message(1, channel="webchat"))
    desk.ingest(TEAM, message(2, channel="whatsapp"))
    clock.advance(5)
    desk.ingest(TEAM, message(3, customer_tags=["VIP"]))
    clock.advance(301)
    assert press(desk) == ("m2", "WhatsApp overdue")
    assert press(desk) == ("m3", "VIP")
    assert press(desk) == ("m1", "everything else")


def test_the_escalator_moves_crossed_conversations_in_atomic_batches(
        desk: Dispatcher, clock: FakeClock) -> None:
    desk.ingest_many(TEAM, [message(i) for i in range(120)])
    clock.advance(901)
    seen: list[tuple[int, int]] = []
    moved = desk.run(ops.escalate(TEAM, 25, lambda done, left: seen.append((done, left))))
    assert moved == 120
    assert seen == [(25, 95), (50, 70), (75, 45), (100, 20), (120, 0)]
    rows = {g["group"]: g["waiting"] for g in desk.run(ops.group_stock(TEAM))}
    assert rows["Overdue"] == 120 and rows["everything else"] == 0
    assert desk.run(ops.escalate(TEAM, 25)) == 0
    assert_clean(desk)


def test_an_escalator_that_dies_between_batches_loses_nothing_and_the_next_run_finishes(
        desk: Dispatcher, clock: FakeClock) -> None:
    desk.configure(TEAM, presence_timeout_s=3600)  # the tick below reaps nobody
    desk.ingest_many(TEAM, [message(i) for i in range(60)])
    clock.advance(901)

    class Killed(Exception):
        pass

    def die_after_two(done: int, left: int) -> None:
        if done >= 20:
            raise Killed

    with pytest.raises(Killed):
        desk.run(ops.escalate(TEAM, 10, die_after_two))
    rows = {g["group"]: g["waiting"] for g in desk.run(ops.group_stock(TEAM))}
    assert rows == {"Overdue": 20, "WhatsApp overdue": 0, "VIP": 0, "everything else": 40}
    assert_clean(desk)  # every message in exactly one place after the crash
    assert desk.run(ops.tick(TEAM, 10))["escalated"] == 40
    assert [press(desk) for _ in range(60)] == [(f"m{i}", "Overdue") for i in range(60)]


def test_a_conversation_escalates_by_its_oldest_waiting_message_not_an_answered_one(
        desk: Dispatcher, clock: FakeClock) -> None:
    desk.ingest(TEAM, message(1, conv="c"))
    assert press(desk) == ("m1", "everything else")  # answered at once
    clock.advance(500)
    desk.ingest(TEAM, message(2, conv="c"))  # waits from now
    desk.ingest(TEAM, message(3, customer_tags=["VIP"]))
    clock.advance(401)  # 901 s after m1, 401 s after m2: c is not overdue
    assert press(desk) == ("m3", "VIP")
    assert desk.preview(TEAM, 5)[0]["group"] == "everything else"
    clock.advance(500)
    assert press(desk) == ("m2", "Overdue")
    assert_clean(desk)


def test_messages_handed_back_after_their_threshold_go_straight_to_the_overdue_group(
        desk: Dispatcher, clock: FakeClock) -> None:
    desk.ingest(TEAM, message(1))
    desk.ingest(TEAM, message(2, customer_tags=["VIP"]))
    assert press(desk, "bob") == ("m2", "VIP")
    assert desk.next(TEAM, "bob").messages[0].id == "m1"  # bob holds m1 ...
    clock.advance(1000)
    desk.logout(TEAM, "bob")  # ... and logs out: m1 has waited 1,000 s
    desk.ingest(TEAM, message(3, customer_tags=["VIP"]))
    assert press(desk) == ("m1", "Overdue")
    assert_clean(desk)


def test_new_groups_re_bucket_what_already_waited_too_long(
        redis_client: redis.Redis, clock: FakeClock) -> None:
    d = make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs()), login=True)
    d.ingest(TEAM, message(1))
    clock.advance(10)
    d.ingest(TEAM, message(2, customer_tags=["VIP"]))
    clock.advance(1000)
    d.set_groups(TEAM, OVERDUE)
    d.rebucket(TEAM)
    assert [(r["conversation"], r["group"]) for r in d.preview(TEAM, 5)] == [
        ("c1", "Overdue"), ("c2", "Overdue")]
    assert_clean(d)


def test_settings_without_waiting_time_leave_no_escalation_index_behind(
        desk: Dispatcher, clock: FakeClock, redis_client: redis.Redis) -> None:
    desk.ingest_many(TEAM, [message(i) for i in range(5)])
    assert redis_client.keys(f"pi:{{{TEAM}}}:esc:*")
    press(desk)
    desk.set_groups(TEAM, {"groups": []})
    desk.rebucket(TEAM)
    assert redis_client.keys(f"pi:{{{TEAM}}}:esc:*") == []


@pytest.mark.parametrize(("value", "message_part"), [
    (0, "from 1 to"), (-5, "from 1 to"), ("900", "whole number"), (True, "whole number"),
    (31 * 86400, "from 1 to"), (1.5, "whole number"),
])
def test_bad_waiting_times_are_refused_naming_the_field(team: Dispatcher, value: object,
                                                        message_part: str) -> None:
    with pytest.raises(ValidationError) as exc:
        team.set_groups(TEAM, {"groups": [{"name": "g",
                                           "match": {"waiting_longer_than": value}}]})
    assert exc.value.field == "groups[0].match.waiting_longer_than"
    assert message_part in exc.value.message


def test_a_triage_rule_cannot_wait(team: Dispatcher) -> None:
    with pytest.raises(ValidationError) as exc:
        team.set_triage(TEAM, [{"name": "x", "match": {"waiting_longer_than": 60},
                                "advisor": "ann"}])
    assert exc.value.field == "rules[0].match.waiting_longer_than"


def test_the_groups_show_their_waiting_time_back(desk: Dispatcher) -> None:
    assert desk.groups(TEAM).groups[0]["match"] == {"waiting_longer_than": 900}


# --- an independent model, press by press ---------------------------------------------------
def model_group(g_specs: list[tuple[str | None, int | None]], tag: str | None, age_s: float
                ) -> int:
    """The first group whose tag (if any) and waiting time (if any) hold; last: everything
    else."""
    for i, (want, wait) in enumerate(g_specs):
        if want is not None and tag != want:
            continue
        if wait is not None and age_s < wait:
            continue
        return i
    return len(g_specs)


@pytest.mark.parametrize("seed", range(12))
def test_presses_match_an_independent_model_of_waiting_time_and_skills(
        redis_client: redis.Redis, seed: int) -> None:
    rnd = random.Random(seed)
    redis_client.flushall()
    clock = FakeClock(1_773_133_200_000)
    advisors = ("a0", "a1", "a2")
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=advisors, login=True)
    specs: list[tuple[str | None, int | None]] = []
    needs: list[set[str]] = []
    for _ in range(4):
        want = rnd.choice([None, "x", "y"])
        wait = rnd.choice([None, 30, 60, 120])
        if want is None and wait is None:
            want = "z"
        specs.append((want, wait))
        needs.append(set(rnd.sample(["ko", "fr"], rnd.choice((0, 0, 1)))))
    d.set_groups(TEAM, {"groups": [
        {"name": f"g{i}", "match": {**({"message_tags_any": [w]} if w else {}),
                                    **({"waiting_longer_than": t} if t else {})},
         **({"requires_skills": sorted(needs[i])} if needs[i] else {})}
        for i, (w, t) in enumerate(specs)]})
    needs.append(set())  # everything else
    has = {a: set(rnd.sample(["ko", "fr"], rnd.randint(0, 2))) for a in advisors}
    for a in advisors:
        d.run(ops.set_skills(TEAM, a, skills=sorted(has[a])))
    waiting: dict[str, tuple[float, str | None]] = {}  # id -> (arrival s, tag)
    now = 0.0
    for step in range(100):
        roll = rnd.random()
        if roll < 0.45:
            tag = rnd.choice([None, "x", "y", "z"])
            d.ingest(TEAM, message(step, tags=[tag] if tag else []))
            waiting[f"m{step}"] = (now, tag)
        elif roll < 0.8:
            a = rnd.choice(advisors)
            push = d.next(TEAM, a)
            got = push.messages[0].id if push.messages else None
            # the group a message is in now (by its wait), the advisor's skills decide
            allowed = {m: model_group(specs, tag, now - at) for m, (at, tag) in waiting.items()}
            allowed = {m: g for m, g in allowed.items() if needs[g] <= has[a]}
            want = min(allowed, key=lambda m: (allowed[m], waiting[m][0])) if allowed else None
            assert got == want, (step, specs, needs, has)
            for m in push.messages:
                d.reply(TEAM, a, m.id)
                waiting.pop(m.id)
        elif roll < 0.9:
            d.run(ops.escalate(TEAM, rnd.choice((1, 3, 50))))
        secs = rnd.choice((0, 1, 7, 29, 45))
        clock.advance(secs)
        now += secs
    assert_clean(d)


def test_presses_while_the_escalator_moves_get_each_message_exactly_once(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    d = make_team(Dispatcher(redis_client), advisors=tuple(f"a{i}" for i in range(6)),
                  login=True)
    d.set_groups(TEAM, {"groups": [{"name": "Overdue", "match": {"waiting_longer_than": 1}}]})
    d.ingest_many(TEAM, [message(i) for i in range(600)])
    time.sleep(1.1)  # every message crosses its threshold (the server's clock)
    port = redis_server.port

    def escalator() -> None:
        mine = Dispatcher(redis.Redis(port=port))
        while mine.run(ops.escalate(TEAM, 5)):
            pass

    got = press_until_empty(port, [f"a{i}" for i in range(6)], also=[escalator])
    counts = Counter(m for ids in got.values() for m in ids)
    assert sorted(counts) == sorted(f"m{i}" for i in range(600)) and set(counts.values()) == {1}
    assert_clean(d)


@contextlib.contextmanager
def worker_process(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`pushinbox --redis-url URL worker`, as ops start it; stopped (or reaped) at the end."""
    worker = subprocess.Popen([sys.executable, "-m", "cli", "--redis-url", url, "worker"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        yield worker
    finally:
        stop_worker(worker)


def overdue_waiting(d: Dispatcher) -> int:
    return {g["group"]: g["waiting"] for g in d.run(ops.group_stock(TEAM))}["Overdue"]


def wait_until_overdue(d: Dispatcher, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while overdue_waiting(d) < n:
        assert time.monotonic() < deadline, f"only {overdue_waiting(d)} moved"
        time.sleep(0.05)


def test_the_worker_moves_crossed_conversations_within_seconds_without_a_press(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """The worker's escalator re-places what crossed its threshold; the supervisor's counts
    show it with nobody pressing."""
    d = make_team(Dispatcher(redis_client))
    d.set_groups(TEAM, {"groups": [{"name": "Overdue", "match": {"waiting_longer_than": 2}}]})
    d.ingest_many(TEAM, [message(i) for i in range(30)])
    with worker_process(redis_server.url) as worker:
        # the reconciler's next tick is 15 s away: within 10 s, only the escalator moves them
        wait_until_overdue(d, 30, 10)
        assert worker.poll() is None, "the worker exited"
    assert_clean(d)


def test_a_worker_killed_while_it_escalates_leaves_every_message_in_one_place(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """SIGKILL the worker while its escalator moves a mass crossing: each batch is one atomic
    script, so `check` passes at once, and a new worker finishes the move."""
    d = make_team(Dispatcher(redis_client))
    d.set_groups(TEAM, {"groups": [{"name": "Overdue", "match": {"waiting_longer_than": 1}}]})
    for start in range(0, 20_000, 1000):
        d.ingest_many(TEAM, [message(start + i) for i in range(1000)])
    time.sleep(1.1)  # all 20,000 cross together
    with worker_process(redis_server.url) as worker:
        wait_until_overdue(d, 1, 20)  # the escalator has started moving
        worker.send_signal(signal.SIGKILL)
    moved = overdue_waiting(d)
    assert_clean(d)
    assert 0 < moved <= 20_000
    with worker_process(redis_server.url):
        wait_until_overdue(d, 20_000, 30)
    assert_clean(d)
