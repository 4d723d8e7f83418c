"""A whole advisor day through the running HTTP service, against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import PRODUCT_GROUPS, TEAM, Api, assert_clean, message


def test_an_advisor_processes_messages_in_push_order_over_http(api: Api) -> None:
    api.push(message(1), message(2, customer_tags=["VIP"]), message(3))
    assert api.adv("POST", "ann", "/session").json()["state"] == "online"
    assert api.sup("PUT", "/groups", json=PRODUCT_GROUPS).status_code == 200

    first = api.adv("POST", "ann", "/next")
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "assigned"
    assert [m["id"] for m in body["messages"]] == ["m2"]
    assert body["messages"][0]["group"] == "VIP"

    retry = api.adv("POST", "ann", "/next")
    assert retry.status_code == 200
    assert retry.json()["status"] == "pending"
    assert [m["id"] for m in retry.json()["messages"]] == ["m2"]

    assert api.adv("POST", "ann", "/messages/m2/reply").json() == {"message": "m2", "status": "ok"}
    assert api.adv("POST", "ann", "/next").json()["messages"][0]["id"] == "m1"
    assert api.adv("POST", "ann", "/messages/m1/archive").json()["status"] == "ok"
    assert api.adv("POST", "ann", "/messages/m1/archive").json()["status"] == "noop"
    assert api.adv("POST", "ann", "/next").json()["messages"][0]["id"] == "m3"
    assert api.adv("POST", "ann", "/messages/m3/reply").status_code == 200

    empty = api.adv("POST", "ann", "/next")
    assert empty.status_code == 204
    assert empty.content == b""
    assert_clean(api.d)


def test_the_screen_shows_state_running_break_figures_and_stock_in_one_call(api: Api) -> None:
    api.push(message(1, channel="whatsapp"), message(2, channel="email"), message(3))
    api.adv("POST", "ann", "/session")
    pushed = api.adv("POST", "ann", "/next").json()["messages"][0]["id"]
    api.adv("POST", "ann", f"/messages/{pushed}/reply")
    started = api.adv("POST", "ann", "/break").json()
    assert started["status"] == "ok"

    screen = api.adv("GET", "ann", "/screen").json()
    assert screen["state"] == "on break"
    assert screen["break_started_at"] == started["started_at"]
    today = datetime.now(UTC).date().isoformat()
    assert screen["today"] == {"day": today, "responses": 1, "archives": 0,
                               "break_seconds": screen["today"]["break_seconds"],
                               "assigned": 0, "stock": 2}
    assert screen["stock"]["total"] == 2
    channel_of = {"m1": "whatsapp", "m2": "email", "m3": "webchat"}
    expected = {"whatsapp": 1, "email": 1, "webchat": 1}
    del expected[channel_of[pushed]]  # a channel with nothing waiting leaves the stock
    assert {c["channel"]: c["waiting"] for c in screen["stock"]["channels"]} == expected

    ended = api.adv("DELETE", "ann", "/break").json()
    assert ended["ended"] is True
    assert api.adv("GET", "ann", "/screen").json()["state"] == "online"


def test_current_messages_help_and_hold_over_http(api: Api) -> None:
    api.push(message(1), message(2))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    held = api.adv("POST", "ann", "/messages/m1/hold")
    assert held.json()["status"] == "ok"
    current = api.adv("GET", "ann", "/messages").json()
    assert [(m["id"], m["on_hold"]) for m in current] == [("m1", True)]
    assert api.adv("POST", "ann", "/messages/m1/unhold").json()["status"] == "ok"
    helped = api.adv("POST", "ann", "/messages/m1/help", json={"note": "refund over 500 EUR"})
    assert helped.json()["status"] == "ok"
    assert [m["id"] for m in api.sup("GET", "/help-requests").json()] == ["m1"]
    assert api.adv("GET", "ann", "/messages").json() == []
    assert_clean(api.d)


def test_logging_out_over_http_hands_messages_back_marked_reassigned(api: Api) -> None:
    api.push(message(1))
    api.adv("POST", "ann", "/session")
    api.adv("POST", "ann", "/next")
    out = api.adv("DELETE", "ann", "/session").json()
    assert out["state"] == "offline"
    found = api.sup("GET", "/messages/m1").json()
    assert found["state"] == "waiting"
    assert found["reassigned"] is True
    api.adv("POST", "bob", "/session")
    got = api.adv("POST", "bob", "/next").json()["messages"][0]
    assert got["id"] == "m1"
    assert got["why"] == "matched no priority group"
    assert_clean(api.d)


def test_a_supervisor_assigns_by_hand_previews_and_reads_break_analytics(api: Api) -> None:
    api.push(message(1), message(2, customer_tags=["VIP"]))
    api.sup("PUT", "/groups", json=PRODUCT_GROUPS)
    preview = api.sup("GET", "/preview", params={"n": 5}).json()
    assert [(r["position"], r["conversation"], r["group"]) for r in preview] == [
        (1, "c2", "VIP"), (2, "c1", "everything else")]

    api.adv("POST", "bob", "/session")
    assigned = api.sup("POST", "/messages/m1/assign", json={"advisor": "bob"})
    assert assigned.status_code == 200
    assert [m["id"] for m in assigned.json()] == ["m1"]
    assert [m["id"] for m in api.adv("GET", "bob", "/messages").json()] == ["m1"]
    assert api.adv("GET", "bob", "/messages").json()[0]["via"] == "manual"

    api.adv("POST", "bob", "/break")
    today = datetime.now(UTC).date().isoformat()
    report = api.sup("GET", "/breaks", params={"start": today, "days": 1}).json()
    assert report["team"] == TEAM
    assert report["days"][0]["day"] == today
    assert "bob" in report["days"][0]["advisors"]
    advisors = {a["advisor"]: a for a in api.sup("GET", "/advisors").json()}
    assert advisors["bob"]["state"] == "on break"
    assert advisors["bob"]["assigned"] == 1
    assert_clean(api.d)


def test_changing_groups_answers_with_the_rebucketing_job_and_its_progress(api: Api) -> None:
    api.push(*[message(i, customer_tags=["VIP"] if i % 3 == 0 else None) for i in range(30)])
    changed = api.sup("PUT", "/groups", json=PRODUCT_GROUPS).json()
    assert changed["version"] == 2
    assert changed["rebucketing"] is True
    # The test service runs moves inline: the job is done when the call returns.
    progress = api.sup("GET", "/rebucketing").json()
    assert progress == {"version": 2, "done": True, "conversations_left": 0}
    shown = api.sup("GET", "/groups").json()
    assert shown == PRODUCT_GROUPS
    assert api.sup("GET", "/preview", params={"n": 1}).json()[0]["group"] == "VIP"


def test_working_hours_are_read_and_changed_over_http(api: Api) -> None:
    assert api.sup("GET", "/hours").json() is None
    hours = {"timezone": "Europe/Paris", "week": {"mon": ["09:00-12:30", "13:30-18:00"]}}
    assert api.sup("PUT", "/hours", json=hours).json() == hours
    assert api.sup("GET", "/hours").json() == hours
    assert api.sup("GET", "").json()["hours"] == hours


def test_upstream_ingest_is_idempotent_and_reports_triage_and_tags(api: Api) -> None:
    one = api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=message(1))
    assert one.status_code == 202
    assert one.json() == {"id": "m1", "result": "queued", "advisor": None}
    again = api.call("POST", f"/v1/teams/{TEAM}/messages", api.ingest, json=message(1))
    assert again.json()["result"] == "duplicate"

    api.sup("PUT", "/groups", json=PRODUCT_GROUPS)
    tags = api.call("PUT", f"/v1/teams/{TEAM}/customers/u1/tags", api.ingest,
                    json={"tags": ["VIP"]})
    assert tags.json() == {"customer": "u1", "conversations_moved": 1}
    assert api.sup("GET", "/preview").json()[0]["group"] == "VIP"

    api.d.login(TEAM, "cid")
    api.d.set_triage(TEAM, [{"name": "email to cid", "match": {"channel_in": ["email"]},
                             "advisor": "cid"}])
    res = api.push(message(2, channel="email"))
    assert res["results"] == [{"id": "m2", "result": "assigned", "advisor": "cid"}]
    assert_clean(api.d)


def test_a_client_read_by_an_advisor_counts_as_presence(api: Api) -> None:
    api.adv("POST", "ann", "/session")
    key = f"pi:{{{TEAM}}}:online"
    api.d.redis.zadd(key, {"ann": 1})  # as if ann had been silent since 1970
    api.adv("GET", "ann", "/screen")
    assert (api.d.redis.zscore(key, "ann") or 0) > 1_000_000_000_000


def test_an_admin_sets_up_a_team_over_http(api: Api) -> None:
    made = api.call("POST", "/v1/teams", api.admin, json={"team": "sales", "name": "Sales"})
    assert made.status_code == 201
    assert made.json()["name"] == "Sales"
    role = api.call("PUT", "/v1/teams/sales/roles/agent", api.admin,
                    json={"push": True, "capacity": 2})
    assert role.status_code == 200
    adv = api.call("PUT", "/v1/teams/sales/advisors/zoe", api.admin, json={"role": "agent"})
    assert adv.status_code == 200
    assert [a["advisor"] for a in api.call("GET", "/v1/teams/sales/advisors", api.admin).json()
            ] == ["zoe"]


def test_a_press_retried_with_the_same_idempotency_key_gets_the_same_answer(api: Api) -> None:
    api.push(message(1), message(2))
    api.adv("POST", "ann", "/session")
    first = api.adv("POST", "ann", "/next", headers={"Idempotency-Key": "press-1"})
    again = api.adv("POST", "ann", "/next", headers={"Idempotency-Key": "press-1"})
    assert first.status_code == again.status_code == 200
    assert first.json()["messages"] == again.json()["messages"]
    bad = api.adv("POST", "ann", "/next", headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422
    assert_clean(api.d)
