"""Property-based bad input: whatever arrives at ingest (core API and HTTP), it is either a
valid message stored once, or refused with an error naming a field, storing nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import TEAM, Api, make_team, message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher import ConflictError, Dispatcher, PushinboxError, ValidationError, keys

FIELDS = ["id", "conversation", "customer", "channel", "body", "language", "tags",
          "attributes", "customer_tags"]
HOSTILE = st.sampled_from([
    "redis.call('FLUSHALL')", "]]--", "{acme}", "a b", "a/b", "", "x" * 300, "\u202e", "🙂",
    "\x00", "é", "pi:{acme}:cfg", "%2F", "?", "#",
])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)
TAGS = st.lists(st.text(max_size=200) | HOSTILE, max_size=80) | JSONISH


IDS = st.from_regex(keys.ID_PATTERN, fullmatch=True) | st.sampled_from(
    ["]]--", "pi:x", "a|b", "~", "\\x", "9" * 200])
VALID = {  # a value each field accepts, strange ones included
    "id": IDS, "conversation": IDS, "customer": IDS, "channel": IDS,
    "body": st.dictionaries(st.text(max_size=8), JSONISH, max_size=4),
    "language": st.sampled_from(["en", "fr-CA", "", "zh-Hant-TW"]),
    "tags": st.lists(st.text(min_size=1, max_size=20), max_size=5),
    "attributes": st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
                                  st.text(max_size=20), max_size=4),
    "customer_tags": st.lists(st.text(min_size=1, max_size=20), max_size=5),
}


@st.composite
def incoming(draw: Any) -> dict[str, Any]:
    """A message with some fields dropped, given a strange but valid value, given a hostile
    value, or added at random."""
    m: dict[str, Any] = message(draw(st.integers(0, 5)))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            m.pop(field, None)
        elif choice == 1:
            m[field] = draw(VALID[field])
        elif field in ("tags", "customer_tags"):
            m[field] = draw(TAGS)
        else:
            m[field] = draw(JSONISH | HOSTILE)
    if draw(st.integers(0, 7)) == 7:  # an unknown field (hypothesis favours 0)
        m[draw(st.text(min_size=1, max_size=10))] = draw(JSONISH)
    return m


def keyspace(d: Dispatcher) -> dict[bytes, Any]:
    return {k: d.redis.dump(k) for k in d.redis.scan_iter(count=1000)
            if not k.startswith(b"pi:tokens")}


def fresh_team(d: Dispatcher) -> None:
    """Every example starts from the same team: no message of an earlier example is there to
    make this one a duplicate or a conflict."""
    stale = list(d.redis.scan_iter(match=f"pi:{{{TEAM}}}:*", count=1000))
    if stale:
        d.redis.delete(*stale)
    d.redis.srem("pi:teams", TEAM)
    make_team(d)


def assert_healthy_shares(outcomes: Counter[str], total: int) -> None:
    """Both branches were really exercised: at least a fifth of the examples each."""
    assert outcomes["stored"] + outcomes["refused"] == total, outcomes
    assert outcomes["stored"] >= total // 5, outcomes
    assert outcomes["refused"] >= total // 5, outcomes


def test_any_input_is_stored_once_or_refused_naming_a_field(team: Dispatcher) -> None:
    d = team
    outcomes: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(m=incoming())
    def one(m: dict[str, Any]) -> None:
        fresh_team(d)
        before = keyspace(d)
        try:
            result = d.ingest(TEAM, m)
        except ValidationError as exc:
            assert exc.field, exc
            assert keyspace(d) == before
            outcomes["refused"] += 1
            outcomes["why:" + str(exc.field)] += 1
            return
        assert result == "queued"
        assert d.message(TEAM, m["id"]).body == m["body"]
        assert d.check(TEAM).ok
        outcomes["stored"] += 1

    one()
    assert_healthy_shares(outcomes, 150)


def test_any_input_over_http_is_a_202_or_a_4xx_naming_a_field(api: Api) -> None:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(m=incoming())
    def one(m: dict[str, Any]) -> None:
        fresh_team(api.d)
        before = keyspace(api.d)
        res = api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=m)
        assert res.status_code in (202, 413, 422), res.text
        if res.status_code != 202:
            assert res.headers["content-type"].startswith("application/problem+json")
            assert keyspace(api.d) == before
            assert res.json().get("field"), res.text
            outcomes["refused"] += 1
        else:
            assert api.d.check(TEAM).ok
            outcomes["stored"] += 1

    one()
    assert_healthy_shares(outcomes, 60)


def test_a_batch_with_one_conflicting_duplicate_stores_nothing(team: Dispatcher) -> None:
    team.ingest(TEAM, message(1))
    before = keyspace(team)
    batch = [message(2), {**message(1), "body": {"text": "changed"}}, message(3)]
    try:
        team.ingest_many(TEAM, batch)
        raise AssertionError("the conflicting batch was accepted")
    except PushinboxError as exc:
        assert isinstance(exc, ConflictError)
    assert keyspace(team) == before


def test_a_group_name_over_its_limit_is_refused_saying_the_limit(team: Dispatcher) -> None:
    with pytest.raises(ValidationError) as err:
        team.set_groups(TEAM, {"groups": [{"name": "n" * 65, "match": {"channel_in": ["sms"]}}]})
    assert err.value.field == "groups[0].name"
    assert "at most 64 characters" in str(err.value)
