"""The ordered list: priority groups in the supervisors' order, the team's order inside."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PRODUCT_GROUPS, TEAM, assert_clean, message, pushed_ids

from dispatcher import Dispatcher
from dispatcher.testing import FakeClock


def test_the_product_description_example_vip_then_reassigned_then_the_rest_fifo_inside(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    # bob takes two messages and logs out: they come back marked reassigned
    d.ingest(TEAM, message("r1"))
    clock.advance(1)
    d.ingest(TEAM, message("r2"))
    clock.advance(1)
    assert d.next(TEAM, "bob").messages[0].id == "mr1"
    d.hold(TEAM, "bob", "mr1")
    assert d.next(TEAM, "bob").messages[0].id == "mr2"
    # then the rest of the traffic, interleaved
    for n in ("o1", "v1", "o2", "v2", "o3"):
        clock.advance(1)
        tags = ["VIP"] if n.startswith("v") else []
        d.ingest(TEAM, message(n, customer_tags=tags))
    d.logout(TEAM, "bob")
    clock.advance(1)
    order = pushed_ids(d, "ann", 7)
    assert order == ["mv1", "mv2", "mr1", "mr2", "mo1", "mo2", "mo3"]
    assert d.next(TEAM, "ann").status == "empty"
    assert_clean(d)


def test_vip_messages_are_pushed_before_reassigned_ones(online: Dispatcher,
                                                        clock: FakeClock) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    d.ingest(TEAM, message(1))
    d.next(TEAM, "bob")
    d.logout(TEAM, "bob")  # m1 is now reassigned
    clock.advance(5)
    d.ingest(TEAM, message(2, customer_tags=["VIP"]))
    p = d.next(TEAM, "ann")
    assert p.messages[0].id == "m2"
    assert p.messages[0].group == "VIP"
    assert p.messages[0].why == "customer tag VIP"
    d.reply(TEAM, "ann", "m2")
    p = d.next(TEAM, "ann")
    assert p.messages[0].id == "m1"
    assert p.messages[0].reassigned
    assert p.messages[0].group == "Automatically reassigned"
    assert p.messages[0].why == "automatically reassigned"


def test_every_pushed_message_says_why_it_came_now(online: Dispatcher) -> None:
    d = online
    d.set_groups(TEAM, {"groups": [
        {"name": "French WhatsApp", "match": {"channel_in": ["whatsapp"], "language_in": ["fr"]}},
        {"name": "Refunds", "match": {"message_tags_any": ["refund"]}},
        {"name": "Gold", "match": {"attribute_equals": {"tier": "gold"}}},
    ]})
    d.ingest(TEAM, message(1, channel="whatsapp", language="fr"))
    d.ingest(TEAM, message(2, tags=["refund", "urgent"]))
    d.ingest(TEAM, message(3, attributes={"tier": "gold"}))
    d.ingest(TEAM, message(4))
    whys = []
    for _ in range(4):
        m = d.next(TEAM, "ann").messages[0]
        whys.append((m.id, m.group, m.why))
        d.archive(TEAM, "ann", m.id)
    assert whys == [
        ("m1", "French WhatsApp", "channel whatsapp and language fr"),
        ("m2", "Refunds", "message tag refund"),
        ("m3", "Gold", "tier = gold"),
        ("m4", "everything else", "matched no priority group"),
    ]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("oldest_conversation", ["mA1", "mB1", "mC1"]),
        ("newest_conversation", ["mC1", "mB1", "mA1"]),
        ("oldest_message", ["mB1", "mC1", "mA1"]),
        ("newest_message", ["mA1", "mC1", "mB1"]),
    ],
)
def test_order_inside_a_group_is_the_teams_choice(
    online: Dispatcher, clock: FakeClock, order: str, expected: list[str]
) -> None:
    d = online
    d.set_groups(TEAM, {"order": order, "groups": []})
    # Conversation A started first, but its waiting message arrived last (after a reply).
    d.ingest(TEAM, message("A0", conv="A"))
    clock.advance(1)
    assert d.next(TEAM, "bob").messages[0].id == "mA0"
    d.reply(TEAM, "bob", "mA0")
    clock.advance(1)
    d.ingest(TEAM, message("B1", conv="B"))
    clock.advance(1)
    d.ingest(TEAM, message("C1", conv="C"))
    clock.advance(1)
    d.ingest(TEAM, message("A1", conv="A"))
    got = [d.next(TEAM, a).messages[0].id for a in ("ann", "bob", "cid")]
    assert got == expected


def test_pending_messages_of_one_conversation_are_pushed_together(online: Dispatcher,
                                                                  clock: FakeClock) -> None:
    d = online
    for i in range(3):
        d.ingest(TEAM, message(i, conv="chat-1", customer="u1"))
        clock.advance(1)
    d.ingest(TEAM, message(9, conv="chat-2"))
    p = d.next(TEAM, "ann")
    assert [m.id for m in p.messages] == ["m0", "m1", "m2"]
    assert d.next(TEAM, "bob").messages[0].id == "m9"
    assert_clean(d)


def test_the_messages_a_press_answers_are_the_messages_as_any_later_read_shows_them(
        online: Dispatcher, clock: FakeClock) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    for i in range(2):
        d.ingest(TEAM, message(i, conv="chat-1", customer="u1", language="fr",
                               tags=["refund"], attributes={"order": 7}))
        clock.advance(1)
    d.ingest(TEAM, message(5, conv="chat-2", customer_tags=["VIP"]))
    d.logout(TEAM, "cid")  # nothing held: a no-op requeue
    pushed = d.next(TEAM, "ann").messages + d.next(TEAM, "bob").messages
    assert {m.id for m in pushed} == {"m0", "m1", "m5"}
    first = next(m for m in pushed if m.id == "m0")
    assert (first.language, first.tags, first.attributes) == ("fr", ["refund"], {"order": 7})
    for m in pushed:
        assert m == d.message(TEAM, m.id)
    assert sorted(pushed, key=lambda m: m.id)[:2] == d.current(TEAM, "bob")
    assert_clean(d)


def test_preview_shows_exactly_what_the_next_presses_get(online: Dispatcher,
                                                         clock: FakeClock) -> None:
    d = online
    d.set_groups(TEAM, PRODUCT_GROUPS)
    for i in range(12):
        tags = ["VIP"] if i % 4 == 0 else []
        d.ingest(TEAM, message(i, customer_tags=tags, channel=("whatsapp", "email")[i % 2]))
        clock.advance(1)
    preview = d.preview(TEAM, 12)
    assert [r["position"] for r in preview] == list(range(1, 13))
    expected = [r["messages"][0].id for r in preview]
    groups = [r["group"] for r in preview]
    assert groups[:3] == ["VIP"] * 3
    assert pushed_ids(d, "ann", 12) == expected


#: Each match condition, a message it takes and one it leaves (customer tags come with the
#: message here, as upstream sends them).
CONDITIONS = {
    "customer_tags_any": ({"customer_tags_any": ["VIP", "gold"]},
                          {"customer_tags": ["gold"]}, {"customer_tags": ["silver"]}),
    "customer_tags_all": ({"customer_tags_all": ["VIP", "gold"]},
                          {"customer_tags": ["gold", "VIP"]}, {"customer_tags": ["VIP"]}),
    "channel_in": ({"channel_in": ["whatsapp", "sms"]},
                   {"channel": "sms"}, {"channel": "email"}),
    "message_tags_any": ({"message_tags_any": ["refund", "legal"]},
                         {"tags": ["legal"]}, {"tags": ["other"]}),
    "message_tags_all": ({"message_tags_all": ["refund", "legal"]},
                         {"tags": ["legal", "refund"]}, {"tags": ["refund"]}),
    "language_in": ({"language_in": ["ko", "ja"]}, {"language": "ja"}, {"language": "en"}),
    "attribute_equals": ({"attribute_equals": {"plan": "pro"}},
                         {"attributes": {"plan": "pro"}}, {"attributes": {"plan": "free"}}),
    "attribute_in": ({"attribute_in": {"plan": ["pro", "team"]}},
                     {"attributes": {"plan": "team"}}, {"attributes": {"plan": "free"}}),
    "all conditions together": ({"channel_in": ["sms"], "language_in": ["ko"]},
                                {"channel": "sms", "language": "ko"},
                                {"channel": "sms", "language": "en"}),
}


@pytest.mark.parametrize("condition", sorted(CONDITIONS))
def test_each_match_condition_takes_exactly_the_messages_it_names(online: Dispatcher,
                                                                  clock: FakeClock,
                                                                  condition: str) -> None:
    d = online
    match, taken, left = CONDITIONS[condition]
    d.set_groups(TEAM, {"groups": [{"name": "G", "match": match}]})
    d.ingest(TEAM, message("left", **left))  # older: first in the team's order otherwise
    clock.advance(1)
    d.ingest(TEAM, message("taken", **taken))
    first = d.next(TEAM, "ann").messages[0]
    assert (first.id, first.group) == ("mtaken", "G")
    second = d.next(TEAM, "bob").messages[0]
    assert (second.id, second.group) == ("mleft", "everything else")
    assert_clean(d)


REFUNDS = {"groups": [{"name": "Refunds", "match": {"message_tags_any": ["refund"]}}]}


def test_a_conversation_waits_in_the_best_group_of_its_messages(online: Dispatcher,
                                                                clock: FakeClock) -> None:
    d = online
    d.ingest(TEAM, message("X", conv="X"))  # older, in no group
    clock.advance(1)
    d.ingest_many(TEAM, [message("C1", conv="C"), message("C2", conv="C", tags=["refund"])])
    d.set_groups(TEAM, REFUNDS)  # re-bucketed: C by its best message
    push = d.next(TEAM, "ann").messages
    assert [(m.id, m.group) for m in push] == [("mC1", "Refunds"), ("mC2", "Refunds")]
    assert_clean(d)


def test_a_new_message_in_a_better_group_promotes_its_waiting_conversation(
        online: Dispatcher, clock: FakeClock) -> None:
    d = online
    d.set_groups(TEAM, REFUNDS)
    d.ingest(TEAM, message("X", conv="X"))
    clock.advance(1)
    d.ingest(TEAM, message("C1", conv="C"))  # everything else, behind X
    clock.advance(1)
    d.ingest(TEAM, message("C2", conv="C", tags=["refund"]))  # C is a refund now
    assert [m.id for m in d.next(TEAM, "ann").messages] == ["mC1", "mC2"]
    assert d.next(TEAM, "bob").messages[0].id == "mX"
    assert_clean(d)


#: Groups of one condition on a list (indexed by value when a message is classified) among
#: groups of several and overlapping values: the first group that matches takes the message.
MIXED = {"groups": [
    {"name": "Tags A or B", "match": {"message_tags_any": ["a", "b"]}},
    {"name": "Email", "match": {"channel_in": ["email"]}},
    {"name": "Tags B or C", "match": {"message_tags_any": ["b", "c"]}},
    {"name": "Korean", "match": {"language_in": ["ko"]}},
    {"name": "Tag E by sms", "match": {"message_tags_any": ["e"], "channel_in": ["sms"]}},
    {"name": "Tag D", "match": {"message_tags_any": ["d"]}},
    {"name": "French or Korean", "match": {"language_in": ["fr", "ko"]}},
    {"name": "SMS", "match": {"channel_in": ["sms", "email"]}},
]}
#: message: (tags, channel, language) -> (group, why)
MIXED_CASES = {
    "cb": ((["c", "b"], "sms", None), ("Tags A or B", "message tag b")),
    "c-email": ((["c"], "email", None), ("Email", "channel email")),
    "c-ko": ((["c"], "sms", "ko"), ("Tags B or C", "message tag c")),
    "d-ko": ((["d"], "webchat", "ko"), ("Korean", "language ko")),
    "d": ((["d", "x"], "webchat", None), ("Tag D", "message tag d")),
    "e-sms": ((["e"], "sms", None), ("Tag E by sms", "channel sms and message tag e")),
    "e-fr": ((["e"], "webchat", "fr"), ("French or Korean", "language fr")),
    "sms": (([], "sms", "de"), ("SMS", "channel sms")),
    "none": ((["x"], "webchat", "de"), ("everything else", "matched no priority group")),
}


def _mixed_message(name: str, prefix: str = "") -> dict[str, Any]:
    (tags, channel, language), _ = MIXED_CASES[name]
    extra: dict[str, Any] = {"tags": tags}
    if language:
        extra["language"] = language
    return message(prefix + name, channel=channel, **extra)


def _groups_pushed(d: Dispatcher, prefix: str = "") -> dict[str, tuple[str, str]]:
    """Each case's group and why, as the presses push them (the last message of each push)."""
    got = {}
    for _ in MIXED_CASES:
        push = d.next(TEAM, "ann").messages
        got[push[-1].id.removeprefix("m" + prefix)] = (push[-1].group, push[-1].why)
        for each in push:
            d.reply(TEAM, "ann", each.id)
    assert d.next(TEAM, "ann").status == "empty"
    return got


def test_a_message_goes_to_the_first_group_it_meets_among_groups_of_one_condition(
        online: Dispatcher, clock: FakeClock) -> None:
    d = online
    d.set_groups(TEAM, MIXED)
    expected = {name: want for name, (_, want) in MIXED_CASES.items()}
    # a batch of new conversations
    d.ingest_many(TEAM, [_mixed_message(name) for name in MIXED_CASES])
    assert _groups_pushed(d) == expected
    # each the next message of a conversation waiting in everything else (re-classified)
    for name in MIXED_CASES:
        clock.advance(1)
        d.ingest(TEAM, message(f"first-{name}", conv=f"cnext-{name}"))
        d.ingest(TEAM, {**_mixed_message(name, "next-"), "conversation": f"cnext-{name}"})
    assert _groups_pushed(d, "next-") == expected
    # and placed again by a change of the settings (re-bucketing)
    d.set_groups(TEAM, {"groups": []})
    d.ingest_many(TEAM, [_mixed_message(name, "again-") for name in MIXED_CASES])
    d.set_groups(TEAM, MIXED)
    assert _groups_pushed(d, "again-") == expected
    assert_clean(d)
