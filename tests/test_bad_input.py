"""Property-based bad input: whatever arrives at ingest (core API and HTTP), it is either a
valid message stored once, or refused with an error naming a field, storing nothing."""

from __future__ import annotations

from typing import Any

from conftest import TEAM, Api, message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher import ConflictError, Dispatcher, PushinboxError, ValidationError

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


@st.composite
def incoming(draw: Any) -> dict[str, Any]:
    """A message with some fields replaced, dropped or added at random."""
    m: dict[str, Any] = message(draw(st.integers(0, 5)))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            m.pop(field, None)
        elif field in ("tags", "customer_tags"):
            m[field] = draw(TAGS)
        else:
            m[field] = draw(JSONISH | HOSTILE)
    if draw(st.booleans()):
        m[draw(st.text(min_size=1, max_size=10))] = draw(JSONISH)
    return m


def keyspace(d: Dispatcher) -> dict[bytes, Any]:
    return {k: d.redis.dump(k) for k in d.redis.scan_iter(count=1000)
            if not k.startswith(b"pi:tokens")}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(m=incoming())
def test_any_input_is_stored_once_or_refused_naming_a_field(team: Dispatcher,
                                                            m: dict[str, Any]) -> None:
    d = team
    before = keyspace(d)
    try:
        result = d.ingest(TEAM, m)
    except ValidationError as exc:
        assert exc.field, exc
        assert keyspace(d) == before
        return
    except ConflictError:  # the same id came before with another content
        assert keyspace(d) == before
        return
    assert result in ("queued", "duplicate")
    assert d.message(TEAM, m["id"]).body == m["body"]
    assert d.check(TEAM).ok


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(m=incoming())
def test_any_input_over_http_is_a_202_or_a_4xx_naming_a_field(api: Api,
                                                              m: dict[str, Any]) -> None:
    before = keyspace(api.d)
    res = api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=m)
    assert res.status_code in (202, 409, 413, 422), res.text
    if res.status_code != 202:
        assert res.headers["content-type"].startswith("application/problem+json")
        assert keyspace(api.d) == before
        if res.status_code in (413, 422):
            assert res.json().get("field"), res.text
    else:
        assert api.d.check(TEAM).ok


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
