"""The scope matrix: every endpoint x every kind of token x own team / other team / other
advisor, expecting exactly the allowed answers. The table is written out here, by hand, and
must cover every operation the running service's OpenAPI document lists."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import TEAM, Api, message

from dispatcher import tokens

ADV = "/v1/teams/{team}/advisors/{advisor}"
TEAM_PATH = "/v1/teams/{team}"

# Who may call what. "advisor" is ann's token on ann's resources (or her team's);
# "advisor_peer" is bob's token on ann's resources; "*_other" tokens belong to another team.
ADVISOR_ACTS = {"admin", "advisor"}
TEAM_READERS = {"admin", "supervisor", "advisor", "advisor_peer"}
ADVISOR_READERS = {"admin", "supervisor", "advisor"}
SUPERVISORS = {"admin", "supervisor"}
UPSTREAM = {"admin", "ingest", "ingest_all"}
ADMINS = {"admin"}

PRINCIPALS = ["anonymous", "admin", "supervisor", "supervisor_other", "ingest", "ingest_all",
              "ingest_other", "advisor", "advisor_peer", "advisor_other"]

MATRIX: list[tuple[str, str, set[str], Any]] = [
    ("POST", TEAM_PATH + "/messages", UPSTREAM, message(1)),
    ("POST", TEAM_PATH + "/messages/batch", UPSTREAM, {"messages": [message(2)]}),
    ("PUT", TEAM_PATH + "/customers/{customer}/tags", UPSTREAM, {"tags": ["VIP"]}),
    ("POST", ADV + "/session", ADVISOR_ACTS, None),
    ("DELETE", ADV + "/session", ADVISOR_ACTS, None),
    ("POST", ADV + "/next", ADVISOR_ACTS, None),
    ("GET", ADV + "/messages", ADVISOR_READERS, None),
    ("POST", ADV + "/messages/{message}/reply", ADVISOR_ACTS, None),
    ("POST", ADV + "/messages/{message}/reply-and-next", ADVISOR_ACTS, None),
    ("POST", ADV + "/messages/{message}/archive", ADVISOR_ACTS, None),
    ("POST", ADV + "/messages/{message}/hold", ADVISOR_ACTS, None),
    ("POST", ADV + "/messages/{message}/unhold", ADVISOR_ACTS, None),
    ("POST", ADV + "/messages/{message}/help", ADVISOR_ACTS, {"note": "?"}),
    ("POST", ADV + "/break", ADVISOR_ACTS, None),
    ("DELETE", ADV + "/break", ADVISOR_ACTS, None),
    ("GET", ADV + "/screen", ADVISOR_READERS, None),
    ("GET", ADV + "/live", ADVISOR_READERS, None),
    ("GET", TEAM_PATH + "/live", TEAM_READERS, None),
    ("GET", TEAM_PATH, SUPERVISORS, None),
    ("GET", TEAM_PATH + "/stock", TEAM_READERS, None),
    ("GET", TEAM_PATH + "/advisors", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/preview", SUPERVISORS, None),
    ("PUT", TEAM_PATH + "/advisors/{advisor}/skills", SUPERVISORS, {"add": ["ko"]}),
    ("GET", TEAM_PATH + "/groups/stock", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/team-view", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/reports/daily", SUPERVISORS, None),
    ("POST", TEAM_PATH + "/messages/{message}/assign", SUPERVISORS, {"advisor": "ann"}),
    ("GET", TEAM_PATH + "/messages/{message}", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/help-requests", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/quarantine", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/groups", SUPERVISORS, None),
    ("PUT", TEAM_PATH + "/groups", SUPERVISORS, {"groups": []}),
    ("GET", TEAM_PATH + "/rebucketing", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/hours", SUPERVISORS, None),
    ("PUT", TEAM_PATH + "/hours", SUPERVISORS, {"timezone": "UTC", "week": {}}),
    ("GET", TEAM_PATH + "/breaks", SUPERVISORS, None),
    ("GET", TEAM_PATH + "/webhooks", SUPERVISORS, None),
    ("POST", TEAM_PATH + "/webhooks", SUPERVISORS,
     {"url": "http://127.0.0.1:9/hook", "events": ["replied"]}),
    ("DELETE", TEAM_PATH + "/webhooks/{hook}", SUPERVISORS, None),
    ("POST", "/v1/teams", ADMINS, {"team": "acme"}),
    ("PUT", TEAM_PATH + "/roles/{role}", ADMINS, {"push": True}),
    ("PUT", ADV, ADMINS, {"role": "agent"}),
    ("GET", "/v1/whoami", set(PRINCIPALS) - {"anonymous"}, None),
]
PARAMS = {"team": TEAM, "advisor": "ann", "message": "m1", "customer": "u1", "hook": "h1",
          "role": "agent"}
QUERY = {TEAM_PATH + "/breaks": {"start": "2026-01-01"},
         TEAM_PATH + "/reports/daily": {"day": "2026-01-01"}}


@pytest.fixture
def principals(api: Api) -> dict[str, str | None]:
    d = api.d
    d.create_team("other")
    d.set_role("other", "agent")
    d.set_advisor("other", "ann", "agent")
    make = lambda scope, **kw: d.run(tokens.create_token(scope, **kw)).token  # noqa: E731
    return {
        "anonymous": None,
        "admin": api.admin,
        "supervisor": api.supervisor,
        "supervisor_other": make("supervisor", team="other"),
        "ingest": api.ingest,
        "ingest_all": make("ingest", all_teams=True),
        "ingest_other": make("ingest", teams=["other"]),
        "advisor": api.advisor["ann"],
        "advisor_peer": api.advisor["bob"],
        "advisor_other": make("advisor", team="other", advisor="ann"),
    }


def test_the_matrix_covers_every_operation_of_the_api(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    listed = {(method.upper(), path) for path, item in spec["paths"].items()
              for method in item if method in ("get", "post", "put", "delete")}
    public = {("GET", "/healthz"), ("GET", "/readyz")}
    assert listed - public == {(m, p) for m, p, _, _ in MATRIX}


def test_every_endpoint_answers_exactly_the_allowed_tokens(
        api: Api, principals: dict[str, str | None]) -> None:
    api.push(message(1))
    wrong: list[str] = []
    for method, template, allowed, body in MATRIX:
        path = template.format(**PARAMS)
        for who in PRINCIPALS:
            token = principals[who]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with api.http.stream(method, path, headers=headers, json=body,
                                 params=QUERY.get(template)) as res:
                if "event-stream" not in res.headers.get("content-type", ""):
                    res.read()
                status = res.status_code
                code = res.json().get("code") if status in (401, 403) else None
            if who == "anonymous":
                outcome = "ok" if status != 401 else "401"
                expect = "401"
            else:
                refused = status == 403 and code == "forbidden"
                outcome = ("401" if status == 401 else "refused" if refused
                           else "failed" if status >= 500 else "ok")  # a 500 is never "allowed"
                expect = "ok" if who in allowed else "refused"
            if outcome != expect:
                wrong.append(f"{method} {template} as {who}: {status} (expected {expect})")
    assert not wrong, "\n".join(wrong)
