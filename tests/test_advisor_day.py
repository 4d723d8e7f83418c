"""An advisor's actions: process, reply, archive, help, hold, break, log out; supervisors'."""

from __future__ import annotations

import pytest
from conftest import PRODUCT_GROUPS, TEAM, assert_clean, message

from dispatcher import (
    ConflictError,
    Dispatcher,
    ForbiddenError,
    NotFoundError,
    NotYoursError,
    ValidationError,
)
from dispatcher.testing import FakeClock


def test_pressing_again_returns_the_same_message_until_it_is_processed(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest_many(TEAM, [message(1), message(2)])
    first = d.next(TEAM, "ann")
    assert first.status == "assigned"
    again = d.next(TEAM, "ann")
    assert again.status == "pending"
    assert [m.id for m in again.messages] == ["m1"]
    d.reply(TEAM, "ann", "m1")
    assert d.next(TEAM, "ann").messages[0].id == "m2"


def test_a_client_retry_with_the_same_request_id_gets_the_same_answer(
    online: Dispatcher,
) -> None:
    d = online
    d.set_role(TEAM, "senior", push=True, capacity=3)
    d.set_advisor(TEAM, "ann", "senior")
    d.ingest_many(TEAM, [message(i) for i in range(5)])
    a = d.next(TEAM, "ann", request_id="r-1")
    b = d.next(TEAM, "ann", request_id="r-1")
    assert [m.id for m in b.messages] == [m.id for m in a.messages] == ["m0"]
    c = d.next(TEAM, "ann", request_id="r-2")
    assert c.messages[0].id == "m1"


def test_role_capacity_caps_unprocessed_pushed_conversations(online: Dispatcher) -> None:
    d = online
    d.set_role(TEAM, "senior", push=True, capacity=2)
    d.set_advisor(TEAM, "ann", "senior")
    d.ingest_many(TEAM, [message(i) for i in range(4)])
    assert d.next(TEAM, "ann").status == "assigned"
    assert d.next(TEAM, "ann").status == "assigned"
    p = d.next(TEAM, "ann")
    assert p.status == "pending"
    assert {m.id for m in p.messages} == {"m0", "m1"}
    d.archive(TEAM, "ann", "m0")
    assert d.next(TEAM, "ann").messages[0].id == "m2"
    assert_clean(d)


def test_reply_and_archive_are_done_and_counted_and_repeats_are_no_ops(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    assert d.reply(TEAM, "ann", "m1") == "ok"
    assert d.reply(TEAM, "ann", "m1") == "noop"
    with pytest.raises(ConflictError, match="already replied"):
        d.archive(TEAM, "ann", "m1")
    d.next(TEAM, "ann")
    assert d.archive(TEAM, "ann", "m2") == "ok"
    assert d.archive(TEAM, "ann", "m2") == "noop"
    s = d.advisor_stats(TEAM, "ann")
    assert (s.responses, s.archives, s.assigned, s.stock) == (1, 1, 0, 0)
    assert d.message(TEAM, "m1").done == "replied"
    assert_clean(d)


def test_an_advisor_cannot_act_on_a_message_that_is_not_theirs(online: Dispatcher) -> None:
    d = online
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    for action in (d.reply, d.archive, d.hold, d.request_help):
        with pytest.raises(NotYoursError, match="m1 is not assigned to advisor bob"):
            action(TEAM, "bob", "m1")
        with pytest.raises(NotYoursError):
            action(TEAM, "ann", "m2")  # waiting, not ann's
    with pytest.raises(NotFoundError, match="unknown message nope"):
        d.reply(TEAM, "ann", "nope")
    with pytest.raises(NotFoundError, match="unknown advisor zed"):
        d.reply(TEAM, "zed", "m1")
    assert_clean(d)


def test_next_while_logged_out_is_a_conflict(team: Dispatcher) -> None:
    team.ingest(TEAM, message(1))
    with pytest.raises(ConflictError, match="ann is not logged in"):
        team.next(TEAM, "ann")
    assert team.stock(TEAM).total == 1


def test_request_help_frees_the_advisor_and_supervisors_hand_it_on(online: Dispatcher) -> None:
    d = online
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    assert d.request_help(TEAM, "ann", "m1", note="angry customer") == "ok"
    assert d.request_help(TEAM, "ann", "m1") == "noop"
    assert [m.id for m in d.help_requests(TEAM)] == ["m1"]
    assert d.next(TEAM, "ann").messages[0].id == "m2"  # free for the next push
    moved = d.assign(TEAM, "bob", "m1", by="sup")
    assert [(m.id, m.via, m.advisor) for m in moved] == [("m1", "manual", "bob")]
    assert d.help_requests(TEAM) == []
    # a manual assignment does not block bob's pushes
    d.ingest(TEAM, message(3))
    assert d.next(TEAM, "bob").messages[0].id == "m3"
    assert_clean(d)


def test_on_hold_keeps_the_message_but_does_not_block_the_next_push(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    assert d.hold(TEAM, "ann", "m1") == "ok"
    assert d.hold(TEAM, "ann", "m1") == "noop"
    assert d.next(TEAM, "ann").messages[0].id == "m2"
    cur = {m.id: m.on_hold for m in d.current(TEAM, "ann")}
    assert cur == {"m1": True, "m2": False}
    assert d.unhold(TEAM, "ann", "m1") == "ok"
    assert not d.message(TEAM, "m1").on_hold
    d.reply(TEAM, "ann", "m1")
    assert_clean(d)


@pytest.mark.parametrize("story", ["pushed", "held", "held then unheld", "taken",
                                   "held before the upgrade"])
@pytest.mark.parametrize("action", ["reply", "archive"])
def test_a_done_message_leaves_every_list_whatever_its_hold_story(
    online: Dispatcher, story: str, action: str
) -> None:
    """A reply or an archive skips the lists a message's record says it is not in (hold,
    pushed); a record written before it said so (an upgrade) is taken out of all of them."""
    d = online
    d.set_role(TEAM, "classic", push=False)
    d.set_advisor(TEAM, "dee", "classic")
    d.login(TEAM, "dee")
    d.ingest_many(TEAM, [message(1), message(2), message(3)])
    adv = "dee" if story == "taken" else "ann"
    if story == "taken":
        d.take(TEAM, "dee", "m1")
    else:
        assert d.next(TEAM, "ann").messages[0].id == "m1"
    if story.startswith("held"):
        d.hold(TEAM, "ann", "m1")
    if story == "held then unheld":
        d.unhold(TEAM, "ann", "m1")
    if story == "held before the upgrade":
        d.redis.hdel(f"pi:{{{TEAM}}}:m:m1", "ho")
    getattr(d, action)(TEAM, adv, "m1")
    assert_clean(d)
    assert d.current(TEAM, adv) == []
    if adv == "ann":
        assert d.next(TEAM, "ann").messages[0].id == "m2"  # nothing left blocks the push
        assert_clean(d)


def test_push_mode_advisors_cannot_pick_but_classic_ones_can(online: Dispatcher) -> None:
    d = online
    d.set_role(TEAM, "classic", push=False)
    d.set_advisor(TEAM, "dee", "classic")
    d.login(TEAM, "dee")
    d.ingest_many(TEAM, [message(1), message(2), message(3, conv="c2")])
    with pytest.raises(ForbiddenError, match="push mode"):
        d.take(TEAM, "ann", "m2")
    taken = d.take(TEAM, "dee", "m2")
    assert [m.id for m in taken] == ["m2", "m3"]  # the whole conversation comes along
    d.next(TEAM, "ann")  # m1 is pushed to ann
    with pytest.raises(ConflictError, match="m1 is not waiting"):
        d.take(TEAM, "dee", "m1")
    assert_clean(d)


def test_supervisors_move_messages_between_advisors_and_back_to_the_stock(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest_many(TEAM, [message(1, conv="c"), message(2, conv="c"), message(3)])
    d.next(TEAM, "ann")  # m1 + m2
    moved = d.assign(TEAM, "bob", "m1")
    assert sorted(m.id for m in moved) == ["m1", "m2"]  # the conversation is not split
    assert d.current(TEAM, "ann") == []
    assert d.send_to_stock(TEAM, "m2") == "ok"
    p = d.preview(TEAM, 5)
    assert p[0]["conversation"] == "c"
    assert all(m.reassigned for m in p[0]["messages"])
    assert [m.id for m in d.next(TEAM, "cid").messages] == ["m1", "m2"]
    d.reply(TEAM, "cid", "m1")
    with pytest.raises(ConflictError, match="m1 is already done"):
        d.send_to_stock(TEAM, "m1")
    assert_clean(d)


def test_logout_hands_every_message_back_marked_reassigned(online: Dispatcher) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.ingest_many(TEAM, [message(i) for i in range(3)])
    d.set_triage(TEAM, [{"name": "all email", "match": {"channel_in": ["email"]},
                         "advisor": "ann"}])
    d.ingest(TEAM, message(9, channel="email"))  # triaged to ann
    d.next(TEAM, "ann")
    d.hold(TEAM, "ann", "m0")
    d.next(TEAM, "ann")
    assert len(d.current(TEAM, "ann")) == 3
    d.logout(TEAM, "ann")
    assert d.advisor_stats(TEAM, "ann").state == "offline"
    assert d.current(TEAM, "ann") == []
    preview = d.preview(TEAM, 10)
    assert [r["group"] for r in preview[:3]] == ["Automatically reassigned"] * 3
    assert {r["messages"][0].id for r in preview[:3]} == {"m0", "m1", "m9"}
    assert_clean(d)


def test_a_message_requeued_too_often_is_quarantined(online: Dispatcher) -> None:
    d = online
    d.configure(TEAM, max_requeues=2)
    d.ingest(TEAM, message(1))
    for bounce in (1, 2):  # up to the limit: back in the stock each time
        d.login(TEAM, "ann")
        assert d.next(TEAM, "ann").messages[0].id == "m1"
        d.logout(TEAM, "ann")
        assert d.message(TEAM, "m1").requeues == bounce
        assert d.stock(TEAM).total == 1 and d.quarantined(TEAM) == []
    d.login(TEAM, "ann")
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    d.logout(TEAM, "ann")  # past the limit
    assert [m.id for m in d.quarantined(TEAM)] == ["m1"]
    assert d.stock(TEAM).total == 0
    d.login(TEAM, "ann")
    assert d.next(TEAM, "ann").status == "empty"
    assert_clean(d)
    assert d.send_to_stock(TEAM, "m1") == "ok"  # released by a supervisor
    assert d.quarantined(TEAM) == []
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    assert_clean(d)


def test_breaks_are_server_state_and_processing_a_message_ends_them(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.ingest(TEAM, message(1))
    b = d.start_break(TEAM, "ann")
    assert b.status == "ok"
    clock.advance(90)
    again = d.start_break(TEAM, "ann")  # a refresh: the same running break
    assert (again.status, again.since) == ("noop", b.since)
    s = d.advisor_stats(TEAM, "ann")
    assert (s.state, s.break_seconds, s.break_started_at) == ("on break", 90.0, b.since)
    clock.advance(30)
    d.next(TEAM, "ann")
    s = d.advisor_stats(TEAM, "ann")
    assert (s.state, s.break_seconds) == ("online", 120.0)
    d.start_break(TEAM, "ann")
    clock.advance(10)
    assert d.end_break(TEAM, "ann") == 10_000
    assert d.end_break(TEAM, "ann") == 0
    assert d.advisor_stats(TEAM, "ann").break_seconds == 130.0


def test_bad_settings_are_refused_before_anything_is_stored(online: Dispatcher) -> None:
    d = online
    before = d.groups(TEAM)
    bad_specs = [
        ({"groups": [{"name": "x", "match": {"customer_tags_any": "VIP"}}]},
         "groups[0].match.customer_tags_any"),
        ({"groups": [{"name": "x", "match": {"channel": ["a"]}}]}, "groups[0].match.channel"),
        ({"groups": [{"name": "a"}, {"name": "a"}]}, "groups[1].name"),
        ({"order": "random"}, "order"),
        ({"groups": [{"name": "x", "match": {"reassigned": "yes"}}]},
         "groups[0].match.reassigned"),
        ({"groups": [{"name": f"g{i}"} for i in range(33)]}, "groups"),
        ({"groups": [], "colour": 1}, "colour"),
    ]
    for spec, field in bad_specs:
        with pytest.raises(ValidationError) as err:
            d.set_groups(TEAM, spec)
        assert err.value.field == field, spec
    assert d.groups(TEAM) == before
    with pytest.raises(ValidationError, match="capacity"):
        d.set_role(TEAM, "agent", capacity=0)
    with pytest.raises(NotFoundError, match="unknown role boss"):
        d.set_advisor(TEAM, "eve", "boss")
    with pytest.raises(ValidationError, match="presence_timeout_s"):
        d.configure(TEAM, presence_timeout_s=-1)


def test_a_break_started_this_very_moment_already_shows_in_the_break_report(
        online: Dispatcher, clock: FakeClock) -> None:
    online.start_break(TEAM, "ann")  # the test clock does not move: 0 ms of break so far
    today = clock.now.date()
    report = online.breaks(TEAM, today, days=1)
    assert report["days"][0]["advisors"] == {"ann": 0.0}
