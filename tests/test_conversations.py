"""One conversation, one holder, in arrival order: the paths that used to split a
conversation between two advisors or reorder it, each as the issue reproduced it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from conftest import LaterJobs, message, script_commands

from dispatcher import Dispatcher, ops
from dispatcher.errors import ConflictError, NotFoundError
from dispatcher.testing import FakeClock

T = "t"


@pytest.fixture
def d(redis_client: redis.Redis, clock: FakeClock) -> Dispatcher:
    d = Dispatcher(redis_client, clock=clock, jobs=LaterJobs())
    d.create_team(T)
    d.set_role(T, "agent", push=True, capacity=1)
    for a in ("ann", "bob", "cid"):
        d.set_advisor(T, a, "agent")
        d.login(T, a)
    return d


def held(d: Dispatcher, adv: str) -> list[str]:
    return [m.id for m in d.current(T, adv)]


def pushed(d: Dispatcher, adv: str) -> list[str]:
    return [m.id for m in d.next(T, adv).messages]


def clean(d: Dispatcher) -> None:
    report = d.check(T)
    assert report.ok, report.problems


def test_a_late_logout_requeue_hands_the_message_to_whoever_holds_its_conversation_now(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")  # the requeue job has not run yet
    d.ingest(T, message(2, conv="c1"))
    assert pushed(d, "bob") == ["m2"]
    d.tick(T)  # the requeue runs now
    assert sorted(held(d, "bob")) == ["m1", "m2"]
    assert d.next(T, "cid").status == "empty"
    d.ingest(T, message(3, conv="c1"))
    assert sorted(held(d, "bob")) == ["m1", "m2", "m3"]
    clean(d)


def test_logging_back_in_before_the_requeue_hands_over_what_another_advisor_took_up(
        d: Dispatcher) -> None:
    # Found by the conversation model in CI: ann leaves holding m1, bob takes up the
    # conversation's next message, ann is back before her requeue ran.
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    d.ingest(T, message(2, conv="c1"))
    assert pushed(d, "bob") == ["m2"]
    d.login(T, "ann")
    assert held(d, "ann") == []
    assert held(d, "bob") == ["m1", "m2"]
    d.ingest(T, message(3, conv="c1"))
    assert held(d, "bob") == ["m1", "m2", "m3"]
    clean(d)


def test_logging_back_in_makes_the_advisor_the_holder_when_the_other_holder_left_too(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    d.ingest(T, message(2, conv="c1"))
    assert pushed(d, "bob") == ["m2"]
    d.logout(T, "bob")
    d.login(T, "ann")  # neither requeue has run: ann is back, bob is gone
    d.ingest(T, message(3, conv="c1"))
    assert held(d, "ann") == ["m1", "m3"]
    assert d.next(T, "cid").status == "empty"
    d.tick(T)  # bob's requeue: his part goes to ann
    assert held(d, "ann") == ["m1", "m2", "m3"]
    clean(d)


def test_a_requeue_in_batches_of_one_moves_whole_conversations(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.ingest(T, message(2, conv="c1"))  # affinity: ann holds m1 and m2
    d.logout(T, "ann")
    epoch = int(d.redis.hget(f"pi:{{{T}}}:a:ann", "ep"))
    res = d.call("requeue_batch", T, adv="ann", epoch=epoch, n=1)
    assert int(res["moved"]) == 2 and int(res["left"]) == 0
    assert pushed(d, "bob") == ["m1", "m2"]
    clean(d)


def test_logging_back_in_between_batches_never_splits_a_conversation(d: Dispatcher) -> None:
    d.set_role(T, "agent", push=True, capacity=2)
    d.ingest_many(T, [message(1, conv="c1"), message(3, conv="c2")])
    assert pushed(d, "ann") == ["m1"]
    assert pushed(d, "ann") == ["m3"]
    d.ingest(T, message(2, conv="c1"))
    d.logout(T, "ann")
    epoch = int(d.redis.hget(f"pi:{{{T}}}:a:ann", "ep"))
    d.call("requeue_batch", T, adv="ann", epoch=epoch, n=1)  # c1 goes, whole
    d.login(T, "ann")  # the job is fenced from here: ann keeps c2
    assert held(d, "ann") == ["m3"]
    assert pushed(d, "bob") == ["m1", "m2"]
    clean(d)


def test_a_message_back_from_help_goes_to_the_advisor_holding_its_conversation(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.ingest(T, message(2, conv="c1"))
    d.request_help(T, "ann", "m1", "refund?")
    assert d.send_to_stock(T, "m1") == "assigned"
    assert sorted(held(d, "ann")) == ["m1", "m2"]
    assert d.next(T, "bob").status == "empty"
    clean(d)


def test_a_press_at_capacity_answers_the_pushes_in_arrival_order_after_one_came_back_from_help(
        d: Dispatcher, clock: FakeClock) -> None:
    """Found by `make test-model`: m1 goes to help, m2 of the same conversation is pushed,
    a second later m1 comes back to its holder; the press at capacity answered the pushes in
    the order they reached the advisor (m2, m1), not as the conversation has them."""
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "bob") == ["m1"]
    d.request_help(T, "bob", "m1", "")
    d.ingest(T, message(2, conv="c1"))
    assert pushed(d, "bob") == ["m2"]
    clock.advance(1)
    assert d.send_to_stock(T, "m1") == "assigned"
    assert held(d, "bob") == ["m1", "m2"]
    assert pushed(d, "bob") == ["m1", "m2"]  # at capacity: the pushes again, in arrival order
    clean(d)


def test_an_untouched_push_goes_back_with_every_message_of_its_conversation(
        d: Dispatcher, clock: FakeClock) -> None:
    d.configure(T, untouched_after_s=3)
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    clock.advance(2)
    d.ingest(T, message(5, conv="c1"))  # affinity: ann
    clock.advance(2)
    d.tick(T)
    assert held(d, "ann") == []
    assert pushed(d, "bob") == ["m1", "m5"]
    clean(d)


def test_assigning_a_help_request_brings_the_rest_of_its_conversation(d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.request_help(T, "ann", "m1", "")
    d.ingest(T, message(2, conv="c1"))  # nobody holds c1 now: it waits
    given = d.assign(T, "bob", "m1")
    assert sorted(m.id for m in given) == ["m1", "m2"]
    d.ingest(T, message(3, conv="c1"))
    assert sorted(held(d, "bob")) == ["m1", "m2", "m3"]
    assert d.next(T, "cid").status == "empty"
    clean(d)


def test_assigning_a_message_held_by_another_advisor_moves_the_whole_conversation(
        d: Dispatcher) -> None:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.ingest(T, message(2, conv="c1"))
    d.assign(T, "bob", "m2")
    assert held(d, "ann") == [] and sorted(held(d, "bob")) == ["m1", "m2"]
    clean(d)


def test_a_requeued_conversation_comes_back_in_arrival_order(d: Dispatcher) -> None:
    d.ingest(T, message(9, conv="c1") | {"id": "msg-9"})
    d.ingest(T, message(10, conv="c1") | {"id": "msg-10"})
    assert pushed(d, "ann") == ["msg-9", "msg-10"]
    d.ingest(T, message(11, conv="c1") | {"id": "msg-11"})  # affinity
    d.logout(T, "ann")
    d.ingest(T, message(12, conv="c1") | {"id": "msg-12"})  # arrives while the job waits
    d.tick(T)
    assert pushed(d, "bob") == ["msg-9", "msg-10", "msg-11", "msg-12"]
    clean(d)


def test_send_to_stock_says_when_the_message_went_to_quarantine(d: Dispatcher) -> None:
    d.configure(T, max_requeues=1)
    d.ingest(T, message(1))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    d.tick(T)  # requeued once
    assert pushed(d, "bob") == ["m1"]
    assert d.send_to_stock(T, "m1") == "quarantined"
    assert [m.id for m in d.quarantined(T)] == ["m1"]
    clean(d)


@pytest.mark.parametrize("how", ["next", "end_break", "logout", "tick"])
def test_a_break_never_counts_past_the_end_of_working_hours(d: Dispatcher, clock: FakeClock,
                                                            how: str) -> None:
    d.set_hours(T, {"timezone": "UTC", "week": {"tue": ["08:00-12:30"]}})
    clock.set(datetime(2026, 3, 10, 12, 20, tzinfo=UTC))  # a Tuesday
    d.start_break(T, "ann")
    clock.set(datetime(2026, 3, 10, 12, 50, tzinfo=UTC))
    {"next": lambda: d.next(T, "ann"), "end_break": lambda: d.end_break(T, "ann"),
     "logout": lambda: d.logout(T, "ann"), "tick": lambda: d.tick(T)}[how]()
    assert d.advisor_stats(T, "ann").break_seconds == 600


def test_a_team_being_deleted_cannot_be_created_again_until_the_deletion_is_done(
        d: Dispatcher) -> None:
    d.ingest_many(T, [message(i) for i in range(50)])
    d.call("team_delete", T, cursor="0", n=5, first=True)  # the deletion has begun
    with pytest.raises(ConflictError) as err:
        d.create_team(T)
    assert err.value.field == "team" and "being deleted" in str(err.value)
    d.delete_team(T)  # finishing it (again from the start) is allowed
    assert not d.redis.keys(f"pi:{{{T}}}:*")
    d.create_team(T)
    d.set_role(T, "agent")
    d.set_advisor(T, "ann", "agent")
    d.ingest(T, message(1))
    assert d.check(T).ok


def _two_holders(d: Dispatcher) -> str:
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c2")])
    assert pushed(d, "ann") == ["m1"]
    assert pushed(d, "bob") == ["m2"]
    r = d.redis  # m2 "belongs" to c1 now: bob and ann both hold c1
    r.hset(f"pi:{{{T}}}:m:m2", "conv", "c1")
    r.hincrby(f"pi:{{{T}}}:c:c1", "held", 1)
    r.hset(f"pi:{{{T}}}:c:c2", mapping={"held": 0, "owner": ""})
    r.hdel(f"pi:{{{T}}}:pconv:bob", "c2")
    r.hset(f"pi:{{{T}}}:pconv:bob", "c1", 1)
    return "conversation c1 is held by ann and bob"


def _waiting_while_held(d: Dispatcher) -> str:
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "ann") == ["m1"]
    d.redis.hset(f"pi:{{{T}}}:a:ann", "st", "off")  # as if ann were away for a moment
    d.ingest(T, message(2, conv="c1"))  # so it waits
    d.redis.hset(f"pi:{{{T}}}:a:ann", "st", "on")
    return "conversation c1 is waiting while ann holds it"


def _out_of_order(d: Dispatcher) -> str:
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c1")])
    key = f"pi:{{{T}}}:cw:c1"
    d.redis.delete(key)
    d.redis.rpush(key, "m2", "m1")
    return "conversation c1 waits out of arrival order (m1)"


@pytest.mark.parametrize("corrupt", [_two_holders, _waiting_while_held, _out_of_order])
def test_check_reports_and_repair_mends_a_broken_conversation(d: Dispatcher,
                                                              corrupt: object) -> None:
    expected = corrupt(d)  # type: ignore[operator]
    report = d.check(T)
    assert expected in report.problems, report.problems
    assert d.repair(T) > 0
    clean(d)
    holders = {a for a in ("ann", "bob", "cid") for m in d.current(T, a)
               if m.conversation == "c1"}
    assert len(holders) <= 1


def test_assigning_a_help_request_takes_the_rest_from_the_advisor_who_asked(
        d: Dispatcher) -> None:
    """Found by the model-based test: the rest of the conversation stayed with ann."""
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c1")])
    d.assign(T, "ann", "m1")
    d.request_help(T, "ann", "m1", "")
    d.assign(T, "bob", "m1")
    assert held(d, "ann") == [] and held(d, "bob") == ["m1", "m2"]
    clean(d)


def test_a_requeue_of_an_old_session_leaves_the_new_sessions_messages(d: Dispatcher) -> None:
    d.ingest(T, message(1))
    assert pushed(d, "ann") == ["m1"]
    d.logout(T, "ann")
    old = int(d.redis.hget(f"pi:{{{T}}}:a:ann", "ep"))
    d.login(T, "ann")  # back: keeps m1
    d.logout(T, "ann")  # gone again: the new session's requeue is queued, not run
    res = d.call("requeue_batch", T, adv="ann", epoch=old, n=100)  # the old job, late
    assert res["fenced"] and int(res["moved"]) == 0
    assert held(d, "ann") == ["m1"]
    new = int(d.redis.hget(f"pi:{{{T}}}:a:ann", "ep"))
    assert int(d.call("requeue_batch", T, adv="ann", epoch=new, n=100)["moved"]) == 1
    assert pushed(d, "bob") == ["m1"]
    clean(d)


def test_a_press_hands_a_waiting_conversation_to_the_logged_in_advisor_holding_the_rest(
        d: Dispatcher) -> None:
    # Login pulls back what arrived meanwhile for the first 1,000 messages an advisor holds;
    # past those, the next press by anyone hands the conversation over instead.
    d.set_role(T, "agent", push=True, capacity=3)
    d.ingest_many(T, [message(f"a{i}", conv="A") for i in range(500)])
    d.ingest_many(T, [message(f"b{i}", conv="B") for i in range(500)])
    d.ingest(T, message("c0", conv="C"))
    for _ in range(3):
        d.next(T, "ann")
    assert len(held(d, "ann")) == 1001
    d.logout(T, "ann")
    d.ingest(T, message("c1", conv="C"))  # queued: ann is gone
    d.login(T, "ann")  # her first 1,000 messages are A and B
    assert d.next(T, "bob").status == "empty"  # C went to ann, not to bob
    assert held(d, "ann")[-2:] == ["mc0", "mc1"]
    clean(d)


def test_requeueing_a_logged_out_advisor_now_hands_their_messages_back(d: Dispatcher) -> None:
    # What ops run when a requeue job was lost: `pushinbox requeue TEAM ADVISOR`.
    d.ingest_many(T, [message(1, conv="c1"), message(2, conv="c1")])
    assert pushed(d, "ann") == ["m1", "m2"]
    with pytest.raises(ConflictError) as logged_in:
        d.run(ops.requeue_now(T, "ann", 10))
    assert logged_in.value.field == "advisor"
    with pytest.raises(NotFoundError) as unknown:
        d.run(ops.requeue_now(T, "zed", 10))
    assert unknown.value.field == "advisor"
    d.logout(T, "ann")  # the job has not run
    assert d.run(ops.requeue_now(T, "ann", 1)) == 2  # whole conversations, in batches
    assert pushed(d, "bob") == ["m1", "m2"]
    clean(d)


def test_a_new_message_joins_its_waiting_conversation_once_its_taker_gave_it_back(
        d: Dispatcher) -> None:
    """Found by `make test-model`: bob logs out holding m1 (his requeue not run yet); ann takes
    the rest of the conversation, then a supervisor sends it back to the stock. Ann holds
    nothing of it any more, so the next message joins the conversation where it waits; it
    used to follow ann, leaving the conversation waiting while she held some of it."""
    d.ingest(T, message(1, conv="c1"))
    assert pushed(d, "bob") == ["m1"]
    d.logout(T, "bob")  # m1 stays with bob until his requeue runs
    d.ingest(T, message(2, conv="c1"))
    assert pushed(d, "ann") == ["m2"]
    assert d.send_to_stock(T, "m2") == "ok"
    assert held(d, "ann") == []
    d.ingest(T, message(3, conv="c1"))
    assert held(d, "ann") == []
    report = d.check(T)
    assert report.problems == ["advisor bob is logged out but still holds 1 messages (stranded)"]
    d.requeue_advisor(T, "bob", int(d.redis.hget(f"pi:{{{T}}}:a:bob", "ep") or 0))
    clean(d)
    assert pushed(d, "cid") == ["m1", "m2", "m3"]
    clean(d)


def test_a_requeue_reads_and_writes_each_message_once(d: Dispatcher) -> None:
    """A logout's requeue costs Redis by the command: each message handed back is read once
    (its conversation, arrival, channel and requeue count) and written once (waiting,
    reassigned, counted), and its conversation's holder is not read again after the release
    that just wrote it. 40 one-message conversations back to the stock: 22.3 commands a
    message (27.3 before those reads and writes were folded; the held-ids lookup, the release,
    the conversation's waiting list and its place in the queue are the rest)."""
    d.set_role(T, "agent", push=True, capacity=100)
    d.ingest_many(T, [message(i) for i in range(40)])
    for _ in range(40):
        assert pushed(d, "ann")
    d.logout(T, "ann")
    epoch = int(d.redis.hget(f"pi:{{{T}}}:a:ann", "ep"))
    d.redis.config_resetstat()
    res = d.call("requeue_batch", T, adv="ann", epoch=epoch, n=40)
    assert int(res["moved"]) == 40
    commands = script_commands(d.redis)
    assert commands <= 23 * 40, commands / 40
    back = [m for row in d.preview(T, 100) for m in row["messages"]]
    assert len(back) == 40
    assert all(m.state == "waiting" and m.reassigned and m.requeues == 1 for m in back)
    clean(d)
