"""Daily reports: written by the scripts that change state, per hour, bounded by the team;
the figures match a replay of what happened, message by message."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date

import pytest
import redis
from conftest import TEAM, Api, make_team, message

from dispatcher import Dispatcher, ValidationError, defaults, ops
from dispatcher.testing import FakeClock

GROUPS = {"groups": [
    {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}, "target_wait": 120},
    {"name": "Email", "match": {"channel_in": ["email"]}},
]}
DAY = date(2026, 3, 10)


def bucket_of(seconds: float) -> int:
    for i, bound in enumerate(defaults.REPORT_BUCKETS_S):
        if seconds <= bound:
            return i
    return len(defaults.REPORT_BUCKETS_S)


def quantile_bound(values: list[float], q: float) -> float | None:
    """The test's own reading: sort the raw values, take the q-th, report its bucket bound."""
    if not values:
        return None
    ordered = sorted(values)
    import math

    v = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    b = bucket_of(v)
    return float(defaults.REPORT_BUCKETS_S[b]) if b < len(defaults.REPORT_BUCKETS_S) else None


@pytest.mark.parametrize("seed", range(8))
def test_a_days_report_matches_a_replay_of_every_message(redis_client: redis.Redis,
                                                         seed: int) -> None:
    rnd = random.Random(seed)
    redis_client.flushall()
    clock = FakeClock(1_773_133_200_000)  # 2026-03-10 09:00 UTC
    advisors = ("ann", "bob", "cid")
    d = make_team(Dispatcher(redis_client, clock=clock), advisors=advisors, login=True)
    d.configure(TEAM, presence_timeout_s=86400)
    d.set_groups(TEAM, GROUPS)
    now = 0.0  # seconds since 09:00
    arrived: dict[str, float] = {}
    held: dict[str, dict[str, float]] = {a: {} for a in advisors}  # id -> pushed at (s)
    counts: dict[str, Counter[str]] = {a: Counter() for a in advisors}
    handle: dict[str, list[float]] = defaultdict(list)
    arrivals: Counter[str] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    group_of: dict[str, str] = {}
    online = set(advisors)
    for step in range(150):
        roll = rnd.random()
        if roll < 0.35:
            kind = rnd.choice(["vip", "email", "other"])
            m = message(step, channel="email" if kind == "email" else "webchat",
                        customer_tags=["VIP"] if kind == "vip" else [])
            d.ingest(TEAM, m)
            group = {"vip": "VIP", "email": "Email", "other": "everything else"}[kind]
            arrivals[group] += 1
            arrived[m["id"]] = now
            group_of[m["id"]] = group
        elif roll < 0.6:
            a = rnd.choice(sorted(online))
            push = d.next(TEAM, a)
            if push.status == "assigned":
                for msg in push.messages:
                    counts[a]["pushed"] += 1
                    held[a][msg.id] = now
                    waits[msg.group or ""].append(now - arrived[msg.id])
        elif roll < 0.85:
            a = rnd.choice(sorted(online))
            if held[a]:
                mid = rnd.choice(sorted(held[a]))
                act = rnd.choice(["reply", "archive", "help"])
                if act == "help":
                    d.request_help(TEAM, a, mid)
                    counts[a]["help_requests"] += 1
                else:
                    getattr(d, act)(TEAM, a, mid)
                    counts[a]["responses" if act == "reply" else "archives"] += 1
                    handle[a].append(now - held[a][mid])
                del held[a][mid]
        elif roll < 0.93 and len(online) > 1:
            a = rnd.choice(sorted(online))
            counts[a]["reassigned_away"] += len(held[a])
            held[a] = {}
            d.logout(TEAM, a)  # inline: the messages go back at once
            online.discard(a)
        else:
            back = [a for a in advisors if a not in online]
            if back:
                d.login(TEAM, back[0])
                online.add(back[0])
        secs = rnd.choice((1, 5, 20, 45, 90, 400))
        clock.advance(secs)
        now += secs
    report = d.run(ops.daily_report(TEAM, DAY))
    by_adv = {r["advisor"]: r for r in report["advisors"]}
    for a in advisors:
        got = by_adv.get(a, {})
        for k in ("pushed", "responses", "archives", "help_requests", "reassigned_away"):
            assert got.get(k, 0) == counts[a][k], (a, k)
        assert got.get("handle_p50_s") == quantile_bound(handle[a], 0.5), a
        assert got.get("handle_p90_s") == quantile_bound(handle[a], 0.9), a
    by_group = {g["group"]: g for g in report["groups"]}
    for g in ("VIP", "Email", "everything else"):
        row = by_group.get(g, {"arrivals": 0, "pushes": 0, "wait_max_s": None,
                               "wait_p50_s": None, "wait_p90_s": None})
        assert row["arrivals"] == arrivals[g], g
        assert row["pushes"] == len(waits[g]), g
        assert row["wait_p50_s"] == quantile_bound(waits[g], 0.5), g
        assert row["wait_p90_s"] == quantile_bound(waits[g], 0.9), g
        assert row["wait_max_s"] == (round(max(waits[g]), 1) if waits[g] else None), g
    vip = by_group.get("VIP")
    if vip and vip["pushes"]:
        assert vip["within_target"] == round(
            sum(1 for w in waits["VIP"] if w <= 120) / len(waits["VIP"]), 4)
    assert sum(h["pushes"] for h in report["hours"]) == sum(len(w) for w in waits.values())


def test_teams_calling_in_turn_each_find_their_own_stock_and_count_their_own_work(
        redis_client: redis.Redis) -> None:
    """The function library keeps some key names between calls (a group's queue, the hour's,
    the minute's and the day's figures): two teams pressing and replying in turn within one
    hour each get only their own messages and count only their own work."""
    redis_client.flushall()
    clock = FakeClock(1_773_133_200_000)  # 2026-03-10 09:00 UTC
    d = Dispatcher(redis_client, clock=clock)
    sizes = {"north": 3, "southwest": 5}  # (ids of two lengths: a prefix kept shows)
    for team, n in sizes.items():
        d.create_team(team)
        d.set_role(team, "agent", push=True)
        d.set_advisor(team, "ann", "agent")
        d.login(team, "ann")
        d.ingest_many(team, [message(i, customer=f"{team}-u") | {"id": f"{team}-{i}"}
                             for i in range(n)])
    for _ in range(max(sizes.values()) + 1):
        for team in sizes:
            clock.advance(7)
            for m in d.next(team, "ann").messages:
                assert m.id.startswith(team + "-")
                d.reply(team, "ann", m.id)
    for team, n in sizes.items():
        report = d.run(ops.daily_report(team, DAY))
        (ann,) = report["advisors"]
        assert (ann["pushed"], ann["responses"]) == (n, n), team
        assert sum(h["pushes"] for h in report["hours"]) == n, team
        assert d.check(team).ok, d.check(team).problems  # today's figures = its done messages


def test_break_time_counts_per_hour_and_a_running_break_counts_up_to_now(
        online: Dispatcher, clock: FakeClock) -> None:
    online.start_break(TEAM, "ann")  # 09:00
    clock.advance(90 * 60)
    online.end_break(TEAM, "ann")  # 10:30: over two hours
    online.start_break(TEAM, "bob")
    clock.advance(600)
    report = online.run(ops.daily_report(TEAM, DAY))
    breaks = {r["advisor"]: r["break_s"] for r in report["advisors"]}
    assert breaks == {"ann": 5400.0, "bob": 600.0}


def test_a_day_in_a_time_zone_reads_that_zones_hours(online: Dispatcher,
                                                     clock: FakeClock) -> None:
    # 2026-03-10 09:00 UTC is 18:00 in Tokyo: the Tokyo day of the 10th ends 15:00 UTC
    online.ingest(TEAM, message(1))
    clock.advance(8 * 3600)  # 17:00 UTC: the 11th in Tokyo
    online.ingest(TEAM, message(2))
    tokyo = online.run(ops.daily_report(TEAM, DAY, "Asia/Tokyo"))
    utc = online.run(ops.daily_report(TEAM, DAY))
    assert [g["arrivals"] for g in tokyo["groups"]] == [1]
    assert [g["arrivals"] for g in utc["groups"]] == [2]
    assert tokyo["hours"][0]["hour"] == "2026-03-10T00:00+09:00" and len(tokyo["hours"]) == 24
    online.set_hours(TEAM, {"timezone": "Asia/Tokyo", "week": {"tue": ["09:00-18:00"]}})
    assert online.run(ops.daily_report(TEAM, DAY, "team"))["groups"] == tokyo["groups"]
    with pytest.raises(ValidationError) as exc:
        online.run(ops.daily_report(TEAM, DAY, "Mars/Olympus"))
    assert exc.value.field == "tz"


def test_a_report_stays_the_same_size_whatever_the_volume(
        online: Dispatcher, clock: FakeClock, redis_client: redis.Redis) -> None:
    def fields() -> int:
        return sum(redis_client.hlen(k) for k in redis_client.keys(f"pi:{{{TEAM}}}:rh:*"))

    def day_of(n: int, start: int) -> None:
        online.ingest_many(TEAM, [message(start + i) for i in range(n)])
        for _ in range(n):
            push = online.next(TEAM, "ann")
            online.reply(TEAM, "ann", push.messages[0].id)

    day_of(20, 0)
    small = fields()
    day_of(400, 1000)
    assert fields() == small  # more messages, the same fields (counts grew, not entries)


def test_the_scripts_bucket_as_defaults_says() -> None:
    from pathlib import Path

    lua = (Path(__file__).parent.parent / "scripts" / "lua" / "includes" / "reports.lua")
    bounds = ", ".join(str(b) for b in defaults.REPORT_BUCKETS_S)
    assert f"local BUCKETS = {{{bounds}}}\n" in lua.read_text()


def test_supervisors_read_a_day_as_json_or_csv_over_http(api: Api) -> None:
    api.d.login(TEAM, "ann")
    api.push(message("r1"), message("r2"))
    assert api.adv("POST", "ann", "/next").status_code == 200
    assert api.adv("POST", "ann", "/messages/mr1/reply").status_code == 200
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    res = api.sup("GET", f"/reports/daily?day={today}")
    assert res.status_code == 200, res.text
    body = res.json()
    ann = next(a for a in body["advisors"] if a["advisor"] == "ann")
    assert (ann["pushed"], ann["responses"]) == (1, 1)
    assert {g["group"]: g["arrivals"] for g in body["groups"]} == {"everything else": 2}
    csv_text = api.sup("GET", f"/reports/daily?day={today}&format=csv")
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[0].startswith("table,advisor,pushed,responses")
    by_accept = api.sup("GET", f"/reports/daily?day={today}", headers={"Accept": "text/csv"})
    assert by_accept.text == csv_text.text
    bad = api.sup("GET", f"/reports/daily?day={today}&tz=Nowhere/Else")
    assert bad.status_code == 422 and bad.json()["field"] == "tz"


def test_the_cli_prints_a_day_as_tables_json_or_csv(redis_server: object,
                                                     redis_client: redis.Redis) -> None:
    import json

    from click.testing import CliRunner

    from cli.main import cli

    d = make_team(Dispatcher(redis_client), login=True)
    d.ingest(TEAM, message(1))
    d.reply(TEAM, "ann", d.next(TEAM, "ann").messages[0].id)
    url = redis_server.url  # type: ignore[attr-defined]

    def run(*args: str) -> str:
        out = CliRunner().invoke(cli, ["--redis-url", url, *args], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        return out.output

    assert "ann" in run("report", TEAM) and "everything else" in run("report", TEAM)
    as_json = json.loads(run("--json", "report", TEAM))
    assert as_json["advisors"][0]["responses"] == 1
    assert run("report", TEAM, "--csv").startswith("table,advisor,")


def test_a_csv_cell_never_starts_a_spreadsheet_formula() -> None:
    # Advisor ids and group names are team input: a cell a spreadsheet would run as a formula
    # (= + - @) is written as text.
    from dispatcher import reports

    report = {"advisors": [{"advisor": "=HYPERLINK(\"http://x\")", "pushed": 1}],
              "groups": [{"group": "+cmd", "arrivals": -1}, {"group": "@sum", "arrivals": 0}],
              "hours": []}
    rows = reports.to_csv(report).splitlines()
    assert rows[1].startswith("advisors,\"'=HYPERLINK(\"\"http://x\"\")\",1")
    assert rows[3] == "groups,'+cmd,-1"  # numbers stay numbers
    assert rows[4] == "groups,'@sum,0"


@pytest.mark.parametrize(("day", "tz", "field"), [
    (date.max, None, "day"),
    (date(1, 1, 1), "Asia/Tokyo", "day"),
    (DAY, "a" * 5000, "tz"),
    (DAY, "../../etc/passwd", "tz"),
])
def test_a_report_of_a_strange_day_or_zone_is_refused_naming_the_field(
        online: Dispatcher, day: date, tz: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        online.run(ops.daily_report(TEAM, day, tz))
    assert exc.value.field == field


def test_an_impossible_day_over_http_is_a_422_not_a_500(api: Api) -> None:
    res = api.sup("GET", "/reports/daily?day=9999-12-31")
    assert res.status_code == 422 and res.json()["field"] == "day"
