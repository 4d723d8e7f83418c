"""Errors over HTTP: problem+json with the right status, naming the field; bad input changes
nothing; Redis away answers 503 with Retry-After and the service recovers by itself."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from conftest import TEAM, Api, assert_clean, message

from dispatcher import Dispatcher, defaults, tokens
from dispatcher.testing import RedisServer, ServiceProcess


def problem(res: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = res.json()
    assert body["status"] == status
    assert body["detail"]
    if field is not None:
        assert body["field"] == field, body
    return body


def snapshot(d: Dispatcher) -> dict[bytes, Any]:
    """Every key with its type and content: what 'changes nothing' compares."""
    out = {}
    for key in d.redis.scan_iter(count=1000):
        if key.startswith(b"pi:tokens"):
            continue
        kind = d.redis.type(key)
        out[key] = (kind, d.redis.dump(key))
    return out


def test_calls_without_a_valid_token_are_refused_with_401(api: Api) -> None:
    path = f"/v1/teams/{TEAM}/stock"
    problem(api.call("GET", path, None), 401)
    problem(api.call("GET", path, "pi_000000000000_nope"), 401)
    problem(api.call("GET", path, None, headers={"Authorization": "Basic abc"}), 401)
    assert api.call("GET", path, None).headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_stops_working(api: Api) -> None:
    new = api.d.run(tokens.create_token("supervisor", team=TEAM))
    path = f"/v1/teams/{TEAM}/stock"
    assert api.call("GET", path, new.token).status_code == 200
    api.d.run(tokens.revoke_token(new.info.id))
    time.sleep(0.3)  # the test service trusts a checked token for 0.2 s
    problem(api.call("GET", path, new.token), 401)


def test_unknown_team_advisor_and_message_are_404_naming_the_field(api: Api) -> None:
    problem(api.call("GET", "/v1/teams/nope/stock", api.admin), 404, "team")
    problem(api.call("POST", f"/v1/teams/{TEAM}/advisors/zed/session", api.admin), 404,
            "advisor")
    problem(api.sup("GET", "/messages/nope"), 404, "message")
    problem(api.call("GET", "/v1/nothing-here", api.admin), 404)


def test_next_while_logged_out_is_a_409_conflict(api: Api) -> None:
    api.push(message(1))
    body = problem(api.adv("POST", "ann", "/next"), 409)
    assert "logged in" in body["detail"]


def test_acting_on_another_advisors_message_is_refused_and_changes_nothing(api: Api) -> None:
    api.push(message(1))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    api.adv("POST", "bob", "/session")
    before = snapshot(api.d)
    problem(api.adv("POST", "bob", "/messages/m1/reply"), 403, "message")
    assert snapshot(api.d) == before


@pytest.mark.parametrize(("change", "field"), [
    ({"channel": 5}, "channel"),
    ({"id": "has space"}, "id"),
    ({"id": "a/b"}, "id"),
    ({"body": None, "attributes": {"k": [1]}}, "attributes"),
    ({"customer_tags": ["x" * 500]}, "customer_tags[0]"),
    ({"surprise": 1}, "surprise"),
])
def test_a_malformed_message_is_a_422_naming_the_field_and_stores_nothing(
        api: Api, change: dict[str, Any], field: str) -> None:
    before = snapshot(api.d)
    res = api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest,
                   json={**message(1), **change})
    body = problem(res, 422)
    assert field in (body.get("field") or "") + body["detail"], body
    assert snapshot(api.d) == before


def test_a_bad_message_in_a_batch_stores_none_of_the_batch(api: Api) -> None:
    before = snapshot(api.d)
    res = api.call("POST", f"/v1/teams/{TEAM}/messages/batch", api.ingest,
                   json={"messages": [message(1), {**message(2), "channel": ""}]})
    problem(res, 422)
    assert snapshot(api.d) == before


def test_an_oversized_message_or_batch_is_a_413(api: Api) -> None:
    before = snapshot(api.d)
    big = {**message(1), "body": {"text": "x" * (defaults.MAX_BODY_BYTES + 10)}}
    problem(api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=big), 413)
    huge = {**message(1), "body": {"text": "x" * (defaults.MAX_BODY_BYTES + 64 * 1024)}}
    problem(api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=huge), 413)
    many = {"messages": [message(i) for i in range(defaults.INGEST_BATCH_MAX + 1)]}
    problem(api.call("POST", f"/v1/teams/{TEAM}/messages/batch", api.ingest, json=many), 413,
            "messages")
    assert snapshot(api.d) == before


def test_invalid_settings_are_a_422_naming_the_field_and_change_nothing(api: Api) -> None:
    before = snapshot(api.d)
    bad_groups = {"groups": [{"name": "x", "match": {"channel_in": "whatsapp"}}]}
    problem(api.sup("PUT", "/groups", json=bad_groups), 422, "groups[0].match.channel_in")
    problem(api.sup("PUT", "/hours", json={"timezone": "Mars/Olympus"}), 422, "timezone")
    problem(api.sup("GET", "/preview", params={"n": 0}), 422)
    problem(api.sup("GET", "/breaks", params={"start": "yesterday"}), 422)
    problem(api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, content=b"{not json",
                     headers={"content-type": "application/json"}), 400)
    assert snapshot(api.d) == before
    assert_clean(api.d)


def test_redis_unreachable_is_a_503_with_retry_after_and_the_service_recovers() -> None:
    server = RedisServer().start()
    d = Dispatcher(server.client())
    d.create_team(TEAM)
    token = d.run(tokens.create_token("admin")).token
    svc = ServiceProcess(server.url).start()
    try:
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:  # an advisor's client polling the stock the whole time
            with httpx.Client(base_url=svc.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as c:
                while not stop.is_set():
                    statuses.append(c.get(f"/v1/teams/{TEAM}/stock").status_code)

        loader = threading.Thread(target=load)
        with httpx.Client(base_url=svc.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.get("/readyz").status_code == 200
            loader.start()
            time.sleep(0.3)
            server.stop(kill=True)
            time.sleep(1)
            down = http.get(f"/v1/teams/{TEAM}/stock")
            body = problem(down, 503)
            assert down.headers["retry-after"] == "1"
            assert "Redis" in body["detail"]
            # where Redis runs is the operators' business (the log has it), not the callers'
            assert str(server.port) not in body["detail"] and "127.0.0.1" not in body["detail"]
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200

            server.start()  # same port, empty data: the team is gone, scripts too
            Dispatcher(server.client()).create_team(TEAM)
            deadline = time.monotonic() + 20
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, svc.log()
                time.sleep(0.2)
            fresh = Dispatcher(server.client()).run(tokens.create_token("admin")).token
            ok = http.get(f"/v1/teams/{TEAM}/stock",
                          headers={"Authorization": f"Bearer {fresh}"})
            assert ok.status_code == 200, ok.text
            assert ok.json()["total"] == 0
            stop.set()
            loader.join(30)
            # Under load: answers before, 503s while Redis was away, never another 5xx.
            assert statuses[0] == 200 and 503 in statuses
            assert set(statuses) <= {200, 401, 404, 503}, set(statuses)
    finally:
        svc.stop()
        server.stop()


def test_a_full_redis_is_a_503_saying_so_and_the_operator_frees_it_by_deleting_a_team() -> None:
    """Redis at its maxmemory (noeviction, as deploy.md requires) refuses writes: every caller
    is told so with a 503 and Retry-After (not a 500), the neighbours' screens still read, and
    the operator frees memory with the CLI as the README has them type it (here by deleting
    the team whose upstream flooded it), after which the other teams take messages again."""
    from conftest import pushinbox

    server = RedisServer().start()
    d = Dispatcher(server.client())
    for t in (TEAM, "flood"):
        d.create_team(t)
        d.set_role(t, "agent")
        d.set_advisor(t, "ann", "agent")
    ingest = d.run(tokens.create_token("ingest", teams=[TEAM, "flood"])).token
    ann = d.run(tokens.create_token("advisor", team=TEAM, advisor="ann")).token
    svc = ServiceProcess(server.url).start()
    try:
        with httpx.Client(base_url=svc.url, timeout=30) as http:
            push = lambda team, msgs: http.post(  # noqa: E731
                f"/v1/teams/{team}/messages/batch", json={"messages": msgs},
                headers={"Authorization": f"Bearer {ingest}"})
            assert push(TEAM, [message(1)]).status_code == 202
            server.client().config_set("maxmemory", server.client().info("memory")
                                       ["used_memory"] + 4_000_000)
            batch = lambda tag: [message(f"{tag}-{i}", body={"text": "x" * 4000})  # noqa: E731
                                 for i in range(100)]
            for n in range(1, 1000):
                res = push("flood", batch(f"f{n}"))
                if res.status_code != 202:
                    break
            body = problem(res, 503)
            assert res.headers["retry-after"]
            assert "memory" in body["detail"]
            # past the limit (as after a config change or a restart with the data): the
            # neighbour's messages meet the same full Redis, the small ones too
            r = server.client()
            r.config_set("maxmemory", r.info("memory")["used_memory"] - 1_000_000)
            assert "memory" in problem(push(TEAM, [message(2)]), 503)["detail"]
            screen = http.get(f"/v1/teams/{TEAM}/advisors/ann/screen",
                              headers={"Authorization": f"Bearer {ann}"})
            assert screen.status_code == 200, screen.text
            done = pushinbox(server.url, "team", "delete", "flood", "--yes")
            assert done.returncode == 0, done.stderr
            assert push(TEAM, batch("a")).status_code == 202
        assert_clean(d)
    finally:
        svc.stop()
        server.stop()


def test_an_upstream_past_its_teams_message_bound_gets_a_429_naming_messages(api: Api) -> None:
    api.d.configure(TEAM, max_messages=2)
    api.push(message(1))
    res = api.call("POST", f"/v1/teams/{TEAM}/messages/batch", api.ingest,
                   json={"messages": [message(2), message(3)]})
    body = problem(res, 429, "messages")
    assert res.headers["retry-after"] and "2" in body["detail"]
    assert api.sup("GET", "/").json()["stored_messages"] == 1
    api.push(message(2))  # the second fits
