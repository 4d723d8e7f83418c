"""Upstream services push messages in: validation, idempotency, affinity, triage rules."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from conftest import TEAM, LaterJobs, assert_clean, make_team, message

from dispatcher import ConflictError, Dispatcher, NotFoundError, ValidationError
from dispatcher.testing import FakeClock


def _snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key and its type and size, events excluded: to prove nothing changed."""
    out = {}
    for k in client.scan_iter():
        if not k.endswith(b":events"):
            out[k] = (client.type(k), client.dump(k))
    return out


def _changed(before: dict[bytes, Any], after: dict[bytes, Any]) -> dict[str, Any]:
    """What differs between two snapshots, by key (with the values where a hash changed):
    a failure names what was written, and so who wrote it."""
    out: dict[str, Any] = {}
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            out[k.decode()] = (before.get(k, (None,))[0], after.get(k, (None,))[0])
    return out


def test_ingest_is_idempotent_by_message_id(online: Dispatcher) -> None:
    d = online
    assert d.ingest(TEAM, message(1)) == "queued"
    before = _snapshot(d.redis)
    assert d.ingest(TEAM, message(1)) == "duplicate"
    assert d.ingest_many(TEAM, [message(1), message(1)]) == ["duplicate", "duplicate"]
    assert not _changed(before, _snapshot(d.redis))
    assert d.stock(TEAM).total == 1


def test_the_same_id_with_another_body_is_refused_and_the_batch_stores_nothing(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest(TEAM, message(1))
    before = _snapshot(d.redis)
    changed = {**message(1), "body": {"text": "something else"}}
    with pytest.raises(ConflictError, match="m1 was already ingested with a different content"):
        d.ingest_many(TEAM, [message(2), changed])
    with pytest.raises(ConflictError):
        d.ingest_many(TEAM, [message(3), {**message(3), "channel": "email"}])
    assert not _changed(before, _snapshot(d.redis))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"conversation": "c", "customer": "u", "channel": "web", "body": "x"}, "id"),
        ({**message(1), "id": "has space"}, "id"),
        ({**message(1), "id": "brace{team}"}, "id"),
        ({**message(1), "id": ""}, "id"),
        ({**message(1), "id": 42}, "id"),
        ({**message(1), "channel": None}, "channel"),
        ({k: v for k, v in message(1).items() if k != "body"}, "body"),
        ({**message(1), "body": "x" * 70_000}, "body"),
        ({**message(1), "body": float("nan")}, "body"),
        ({**message(1), "tags": "vip"}, "tags"),
        ({**message(1), "tags": ["x"] * 65}, "tags"),
        ({**message(1), "tags": ["ok", ""]}, "tags[1]"),
        ({**message(1), "customer_tags": [1]}, "customer_tags[0]"),
        ({**message(1), "attributes": {"tier": {"nested": 1}}}, "attributes.tier"),
        ({**message(1), "attributes": [1]}, "attributes"),
        ({**message(1), "language": 7}, "language"),
        ({**message(1), "surprise": 1}, "surprise"),
    ],
)
def test_malformed_messages_are_refused_naming_the_field_and_change_nothing(
    online: Dispatcher, bad: dict[str, Any], field: str
) -> None:
    d = online
    d.ingest(TEAM, message("ok"))
    before = _snapshot(d.redis)
    with pytest.raises(ValidationError) as err:
        d.ingest_many(TEAM, [message(2), bad])
    assert err.value.field == f"messages[1].{field}"
    assert "message 1:" in str(err.value)
    assert not _changed(before, _snapshot(d.redis))


def test_unknown_team_is_refused(online: Dispatcher) -> None:
    with pytest.raises(NotFoundError, match="unknown team nowhere"):
        online.ingest("nowhere", message(1))
    assert not online.redis.exists("pi:{nowhere}:cfg")


def test_lua_looking_and_unicode_content_is_stored_verbatim(online: Dispatcher) -> None:
    d = online
    body = {"text": "redis.call('FLUSHALL') -- ]]  \u202e 🙂 \x00 é", "n": [1, 2.5, None, True]}
    d.ingest(TEAM, message(1, body=body, attributes={"k]]": "v'\""}, tags=["ü", "--"]))
    m = d.next(TEAM, "ann").messages[0]
    assert m.body == body
    assert m.attributes == {"k]]": "v'\""}
    assert m.tags == ["ü", "--"]


def test_new_messages_of_a_conversation_follow_the_advisor_who_holds_it(
    online: Dispatcher,
) -> None:
    d = online
    d.ingest(TEAM, message(1, conv="chat"))
    assert d.next(TEAM, "ann").messages[0].id == "m1"
    assert d.ingest(TEAM, message(2, conv="chat")) == "assigned:ann"
    cur = {m.id: m for m in d.current(TEAM, "ann")}
    assert set(cur) == {"m1", "m2"}
    assert cur["m2"].via == "affinity"
    # the new message joins the unprocessed push: pressing again returns both
    assert {m.id for m in d.next(TEAM, "ann").messages} == {"m1", "m2"}
    assert d.stock(TEAM).total == 0
    assert_clean(d)


def test_affinity_never_sends_a_message_to_a_logged_out_advisor(redis_client: redis.Redis,
                                                               clock: FakeClock) -> None:
    # The logout's requeue has not run yet (a late worker): ann still holds m2 when m3
    # arrives, and must not get it.
    d = make_team(Dispatcher(redis_client, clock=clock, jobs=LaterJobs()), login=True)
    d.ingest(TEAM, message(1, conv="chat"))
    d.next(TEAM, "ann")
    d.reply(TEAM, "ann", "m1")
    d.ingest(TEAM, message(2, conv="chat"))  # back to ann? she holds nothing: stock
    assert d.stock(TEAM).total == 1
    assert [m.id for m in d.next(TEAM, "ann").messages] == ["m2"]
    d.logout(TEAM, "ann")
    assert d.ingest(TEAM, message(3, conv="chat")) == "queued"
    assert [m.id for m in d.next(TEAM, "bob").messages] == ["m3"]
    d.tick(TEAM)  # the requeue: m2 joins its conversation with bob
    assert [m.id for m in d.current(TEAM, "bob")] == ["m2", "m3"]
    assert_clean(d)


def test_triage_rules_assign_matching_messages_to_a_logged_in_advisor(
    online: Dispatcher,
) -> None:
    d = online
    d.set_triage(TEAM, [
        {"name": "Korean", "match": {"language_in": ["ko"]}, "advisor": "cid"},
        {"name": "Any email", "match": {"channel_in": ["email"]}, "advisor": "bob"},
    ])
    assert d.ingest(TEAM, message(1, language="ko", channel="email")) == "assigned:cid"
    assert d.ingest(TEAM, message(2, channel="email")) == "assigned:bob"
    m = d.current(TEAM, "cid")[0]
    assert m.via == "triage"
    assert m.why is not None and m.why.startswith("triage rule Korean")
    # triaged messages do not block cid's next push
    d.ingest(TEAM, message(3))
    assert d.next(TEAM, "cid").messages[0].id == "m3"
    d.logout(TEAM, "bob")
    assert d.ingest(TEAM, message(4, channel="email")) == "queued"
    assert_clean(d)


def test_invalid_triage_rules_are_refused(online: Dispatcher) -> None:
    with pytest.raises(NotFoundError, match="unknown advisor ghost"):
        online.set_triage(TEAM, [{"name": "x", "match": {}, "advisor": "ghost"}])
    with pytest.raises(ValidationError, match=r"rules\[0\]\.match\.colour"):
        online.set_triage(TEAM, [{"name": "x", "match": {"colour": "red"}, "advisor": "ann"}])
    assert online.triage(TEAM) == []


def test_a_customers_tag_change_moves_their_waiting_messages(online: Dispatcher,
                                                              clock: object) -> None:
    d = online
    d.set_groups(TEAM, {"groups": [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}]})
    d.ingest(TEAM, message(1))
    d.ingest(TEAM, message(2, customer="rich"))
    assert d.preview(TEAM, 1)[0]["conversation"] == "c1"
    assert d.set_customer_tags(TEAM, "rich", ["VIP"]) == 1
    first = d.preview(TEAM, 1)[0]
    assert (first["conversation"], first["group"]) == ("c2", "VIP")
    assert d.set_customer_tags(TEAM, "rich", []) == 1
    assert d.preview(TEAM, 1)[0]["conversation"] == "c1"
    assert_clean(d)


@pytest.mark.parametrize(("extra", "field"), [
    ({"body": {"n": [2**64]}}, "body"),
    ({"body": -(2**63) - 1}, "body"),
    ({"attributes": {"order": 2**70}}, "attributes.order"),
])
def test_integers_beyond_64_bits_are_refused_naming_the_field(
        online: Dispatcher, extra: dict[str, object], field: str) -> None:
    """JSON allows any integer; msgpack stores 64 bits (found by the HTTP fuzz run)."""
    with pytest.raises(ValidationError) as err:
        online.ingest(TEAM, message(1, **extra))
    assert err.value.field == field
    assert online.stock(TEAM).total == 0
    online.ingest(TEAM, message(2, body={"n": 2**64 - 1}, attributes={"k": -(2**63)}))


def test_a_long_batch_finds_what_is_stored_past_its_first_five_hundred_messages(
        team: Dispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """The script asks whether any of a batch's messages or conversations exists in one
    EXISTS per 500 keys: a stored message or an open conversation at position 1,100 of a
    library caller's batch of 1,200 is found as at position 1."""
    from dispatcher import defaults

    d = team
    d.ingest(TEAM, message(1100))
    d.ingest(TEAM, message("open", conv="c1150"))
    batch = [message(i) for i in range(1200)]
    before = _snapshot(d.redis)
    with pytest.raises(ConflictError, match="m1100 was already ingested"):
        d.ingest_many(TEAM, [*batch[:1100], {**batch[1100], "body": "other"}, *batch[1101:]])
    assert not _changed(before, _snapshot(d.redis))
    monkeypatch.setattr(defaults, "MAX_CONVERSATION", 2)
    with pytest.raises(ValidationError, match="c1150 already holds 2"):
        d.ingest_many(TEAM, [*batch, message(1150.5, conv="c1150")])
    assert not _changed(before, _snapshot(d.redis))
    status = d.ingest_many(TEAM, batch)
    assert status[1100] == "duplicate"
    assert status.count("queued") == 1199
    assert d.redis.hget("pi:{acme}:c:c1150", "n") == b"2"  # one more, not a new record
    assert d.stock(TEAM).total == 1201
    assert_clean(d)


def test_each_new_conversation_of_a_batch_waits_in_the_group_its_own_message_matches(
        online: Dispatcher) -> None:
    """A batch decodes each distinct tag list and attribute map once and shares it between
    the messages that carry it: each message is still classified by its own."""
    d = online
    d.set_groups(TEAM, {"groups": [
        {"name": "Refunds", "match": {"message_tags_any": ["refund"]}},
        {"name": "Gold", "match": {"attribute_equals": {"tier": "gold"}}},
    ]})
    d.ingest_many(TEAM, [
        message(1), message(2, tags=["refund"]), message(3, attributes={"tier": "gold"}),
        message(4, tags=["other"]), message(5, tags=["refund"], attributes={"tier": "gold"}),
        message(6, attributes={"tier": "silver"}), message(7, tags=["refund"]),
    ])
    pushed = []
    for _ in range(7):
        m = d.next(TEAM, "ann").messages[0]
        pushed.append((m.id, m.group))
        d.archive(TEAM, "ann", m.id)
    assert pushed == [("m2", "Refunds"), ("m5", "Refunds"), ("m7", "Refunds"), ("m3", "Gold"),
                      ("m1", "everything else"), ("m4", "everything else"),
                      ("m6", "everything else")]
    assert_clean(d)
