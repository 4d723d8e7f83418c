"""*Reply, then process a new message* in one call (``reply_next``): the advisor's whole cycle,
what ``reply`` then ``next`` do, atomically, or nothing when either part is refused."""

from __future__ import annotations

import asyncio

import pytest
import redis
from conftest import TEAM, Api, assert_clean, make_team, message

from dispatcher import Dispatcher, FakeClock, ops
from dispatcher.api import AsyncDispatcher
from dispatcher.errors import ConflictError, ForbiddenError, NotYoursError
from dispatcher.testing import RedisServer


def _events(d: Dispatcher) -> list[tuple[str, str]]:
    return [(e["e"], e.get("m", "")) for e in d.events(TEAM, count=1000)]


def test_reply_and_next_answers_the_message_and_pushes_the_next_conversation(
        online: Dispatcher, clock: FakeClock) -> None:
    online.ingest_many(TEAM, [message(1), message(2), message(3)])
    first = online.next(TEAM, "ann").message
    assert first is not None and first.id == "m1"
    clock.advance(30)
    out = online.reply_next(TEAM, "ann", "m1")
    assert out.replied == "ok"
    assert out.status == "assigned" and [m.id for m in out.messages] == ["m2"]
    assert online.message(TEAM, "m1").done == "replied"
    assert online.message(TEAM, "m2").advisor == "ann"
    # what reply then next would have recorded: the reply before the push
    assert _events(online)[-2:] == [("replied", "m1"), ("assigned", "m2")]
    assert online.advisor_stats(TEAM, "ann").responses == 1
    assert_clean(online)


def test_reply_and_next_frees_the_place_the_reply_leaves_for_the_press(
        online: Dispatcher) -> None:
    # a push role of one conversation at a time: next would answer "pending" before the reply
    online.ingest_many(TEAM, [message(1), message(2)])
    online.next(TEAM, "ann")
    assert online.next(TEAM, "ann").status == "pending"
    out = online.reply_next(TEAM, "ann", "m1")
    assert (out.status, [m.id for m in out.messages]) == ("assigned", ["m2"])


def test_reply_and_next_on_an_empty_stock_still_answers_the_message(online: Dispatcher) -> None:
    online.ingest(TEAM, message(1))
    online.next(TEAM, "ann")
    out = online.reply_next(TEAM, "ann", "m1")
    assert (out.replied, out.status, out.messages) == ("ok", "empty", [])
    assert online.message(TEAM, "m1").done == "replied"
    assert_clean(online)


def test_a_retried_reply_and_next_answers_nothing_twice_and_pushes_nothing_more(
        online: Dispatcher) -> None:
    online.ingest_many(TEAM, [message(1), message(2), message(3)])
    online.next(TEAM, "ann")
    online.reply_next(TEAM, "ann", "m1")
    again = online.reply_next(TEAM, "ann", "m1")  # the first answer was lost
    assert again.replied == "noop"
    assert (again.status, [m.id for m in again.messages]) == ("pending", ["m2"])
    assert online.advisor_stats(TEAM, "ann").responses == 1
    assert online.message(TEAM, "m3").state == "waiting"
    assert_clean(online)


def test_reply_and_next_on_a_message_of_someone_else_does_nothing(online: Dispatcher) -> None:
    online.ingest_many(TEAM, [message(1), message(2)])
    online.next(TEAM, "bob")  # m1 is bob's
    before = _events(online)
    with pytest.raises(NotYoursError):
        online.reply_next(TEAM, "ann", "m1")
    assert _events(online) == before
    assert online.message(TEAM, "m2").state == "waiting"
    assert online.message(TEAM, "m1").advisor == "bob"


def test_reply_and_next_by_an_advisor_out_of_push_mode_answers_nothing(
        team: Dispatcher) -> None:
    team.set_role(TEAM, "classic", push=False)
    team.set_advisor(TEAM, "dan", "classic")
    team.login(TEAM, "dan")
    team.ingest_many(TEAM, [message(1), message(2)])
    team.take(TEAM, "dan", "m1")
    with pytest.raises(ForbiddenError):
        team.reply_next(TEAM, "dan", "m1")
    # the refused press took the reply with it: m1 is still in dan's hands, unanswered
    assert team.message(TEAM, "m1").state == "assigned"
    assert team.reply(TEAM, "dan", "m1") == "ok"
    assert_clean(team)


def test_reply_and_next_after_logging_out_is_refused_whole(online: Dispatcher) -> None:
    online.ingest_many(TEAM, [message(1), message(2)])
    online.next(TEAM, "ann")
    online.logout(TEAM, "ann")
    with pytest.raises((ConflictError, NotYoursError)):
        online.reply_next(TEAM, "ann", "m1")
    assert online.message(TEAM, "m2").state == "waiting"
    assert_clean(online)


def test_reply_and_next_ends_a_break_as_a_press_does(online: Dispatcher,
                                                     clock: FakeClock) -> None:
    online.ingest_many(TEAM, [message(1), message(2)])
    online.next(TEAM, "ann")
    online.start_break(TEAM, "ann")
    clock.advance(60)
    out = online.reply_next(TEAM, "ann", "m1")
    assert out.status == "assigned"
    assert ("break_ended", "") in _events(online)
    assert online.advisor_stats(TEAM, "ann").break_seconds == 60


def test_the_async_driver_and_both_script_paths_give_the_same_cycle(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    answers = []
    for functions in (True, False):
        redis_client.flushall()
        d = make_team(Dispatcher(redis_client, functions=functions), login=True)
        d.ingest_many(TEAM, [message(1, conv="c1"), message(2, conv="c2"), message(3)])
        d.next(TEAM, "ann")

        async def cycle(functions: bool = functions) -> tuple[str, str, list[str]]:
            client = redis.asyncio.Redis(port=redis_server.port)
            try:
                ad = AsyncDispatcher(client, functions=functions)
                out = await ad.run(ops.reply_next(TEAM, "ann", "m1"))
                return out.replied, out.status, [m.id for m in out.messages]
            finally:
                await client.aclose()
        answers.append(asyncio.run(cycle()))
        assert_clean(d)
    assert answers == [("ok", "assigned", ["m2"])] * 2


def test_the_service_answers_reply_and_next_for_the_advisor_alone(api: Api) -> None:
    api.adv("POST", "ann", "/session")
    api.adv("POST", "bob", "/session")
    api.push(message(1), message(2))
    first = api.adv("POST", "ann", "/next")
    assert first.json()["messages"][0]["id"] == "m1"
    # another advisor's token may not act for ann
    refused = api.call("POST", f"/v1/teams/{TEAM}/advisors/ann/messages/m1/reply-and-next",
                       api.advisor["bob"])
    assert refused.status_code == 403
    res = api.adv("POST", "ann", "/messages/m1/reply-and-next")
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["replied"], body["status"]) == ("ok", "assigned")
    assert [m["id"] for m in body["messages"]] == ["m2"]
    last = api.adv("POST", "ann", "/messages/m2/reply-and-next").json()
    assert (last["replied"], last["status"], last["messages"]) == ("ok", "empty", [])
    wrong = api.adv("POST", "bob", "/messages/m2/reply-and-next")
    assert wrong.status_code == 403 and "m2" in wrong.text  # ann's (replied), not bob's
