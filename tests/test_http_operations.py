"""What ops watch: health, readiness, Prometheus metrics and JSON access logs."""

from __future__ import annotations

import json
import re
import time

from conftest import TEAM, Api, message

from dispatcher.testing import ServiceProcess


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    raise AssertionError(f"no sample {name}{{{want}}}")


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert api.http.get("/readyz").json() == {"status": "ready"}


def test_readiness_loads_scripts_that_redis_lost(api: Api) -> None:
    api.d.redis.script_flush()
    api.d.redis.function_flush()
    assert api.http.get("/readyz").status_code == 200
    # Redis 7: the service calls the scripts as one function library (EVALSHA's readiness:
    # tests/test_functions.py)
    assert api.d.redis.function_list()


def test_metrics_count_assignments_by_group_waiting_stock_and_latencies(api: Api) -> None:
    # The service lives for the whole session: every count is compared with its value before.
    def count(text: str, name: str, **labels: str) -> float:
        try:
            return metric(text, name, **labels)
        except AssertionError:  # not exported yet
            return 0.0

    next_route = {"method": "POST", "route": "/v1/teams/{team}/advisors/{advisor}/next",
                  "status": "200"}
    before = api.http.get("/metrics").text
    api.sup("PUT", "/groups", json={"groups": [{"name": "VIP",
                                                "match": {"customer_tags_any": ["VIP"]}}]})
    api.push(message(1, customer_tags=["VIP"]), message(2, channel="email"))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    api.sup("GET", "/stock")
    text = api.http.get("/metrics").text
    for name, labels in [("pushinbox_assignments_total", {"team": TEAM, "group": "VIP"}),
                         ("pushinbox_wait_seconds_count", {"team": TEAM}),
                         ("pushinbox_script_seconds_count", {"script": "next"}),
                         ("pushinbox_http_requests_total", next_route)]:
        assert count(text, name, **labels) == count(before, name, **labels) + 1, name
    assert metric(text, "pushinbox_waiting_messages", team=TEAM, channel="email") == 1


def test_access_logs_are_json_lines_with_request_id_team_and_advisor(
        api: Api, service: ServiceProcess) -> None:
    res = api.adv("GET", "ann", "/screen", headers={"X-Request-Id": "req-abc-123"})
    assert res.headers["x-request-id"] == "req-abc-123"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in service.log().splitlines() if x.startswith("{")]
        found = [x for x in lines if x.get("request_id") == "req-abc-123"]
        if found:
            break
        time.sleep(0.05)
    assert found, service.log()[-2000:]
    entry = found[0]
    assert entry["event"] == "request"
    assert entry["team"] == TEAM
    assert entry["advisor"] == "ann"
    assert entry["status"] == 200
    assert entry["path"] == f"/v1/teams/{TEAM}/advisors/ann/screen"
    assert 0 < entry["ms"] < 5_000  # measured, in milliseconds
    # the next request on the same connection gets its own generated id, in its header and
    # its log line: nothing of the previous request's bindings carries over
    again = api.adv("GET", "ann", "/screen")
    fresh = again.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh) and fresh != "req-abc-123"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in service.log().splitlines() if x.startswith("{")]
        mine = [x for x in lines if x.get("request_id") == fresh]
        if mine:
            break
        time.sleep(0.05)
    assert mine and mine[0]["advisor"] == "ann", service.log()[-2000:]


def test_the_advisor_s_cycle_writes_the_same_access_log_lines(
        api: Api, service: ServiceProcess) -> None:
    # next and reply are answered on the short path (httpapi/hot.py): their lines are the same
    api.push(message(1))
    api.adv("POST", "ann", "/session")
    got = api.adv("POST", "ann", "/next", headers={"X-Request-Id": "req-next-1"})
    assert got.status_code == 200 and got.headers["x-request-id"] == "req-next-1"
    mid = got.json()["messages"][0]["id"]
    done = api.adv("POST", "ann", f"/messages/{mid}/reply")
    rid = done.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = {x.get("request_id"): x for x in
                 (json.loads(x) for x in service.log().splitlines() if x.startswith("{"))}
        if "req-next-1" in lines and rid in lines:
            break
        time.sleep(0.05)
    assert "req-next-1" in lines and rid in lines, service.log()[-2000:]
    for req, path in (("req-next-1", "/next"), (rid, f"/messages/{mid}/reply")):
        entry = lines[req]
        assert (entry["event"], entry["team"], entry["advisor"], entry["status"]) == \
            ("request", TEAM, "ann", 200)
        assert entry["path"] == f"/v1/teams/{TEAM}/advisors/ann{path}"
        assert entry["method"] == "POST" and 0 < entry["ms"] < 5_000
