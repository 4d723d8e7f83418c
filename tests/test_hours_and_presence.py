"""Working hours across time zones and DST, breaks ending by themselves, the reaper."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from conftest import TEAM, assert_clean, message

from dispatcher import Dispatcher, ValidationError, WorkingHours
from dispatcher.testing import FakeClock

PARIS = {"timezone": "Europe/Paris", "week": {
    d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sun")}}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "end"),
    [
        # winter: Paris is UTC+1
        (utc(2026, 3, 10, 8, 30), utc(2026, 3, 10, 11, 0)),
        (utc(2026, 3, 10, 11, 30), None),  # lunch
        (utc(2026, 3, 10, 12, 0), utc(2026, 3, 10, 17, 0)),
        # Sunday 29 March 2026: clocks go forward at 02:00, Paris becomes UTC+2
        (utc(2026, 3, 29, 7, 30), utc(2026, 3, 29, 10, 0)),
        (utc(2026, 3, 29, 14, 0), utc(2026, 3, 29, 16, 0)),
        # Sunday 25 October 2026: back to UTC+1
        (utc(2026, 10, 25, 8, 30), utc(2026, 10, 25, 11, 0)),
        (utc(2026, 10, 24, 9, 0), None),  # Saturday: no hours
    ],
)
def test_the_end_of_the_current_range_follows_the_teams_zone_and_dst(
    moment: datetime, end: datetime | None
) -> None:
    assert WorkingHours.parse(PARIS).current_range_end(moment) == end


def test_ranges_in_other_zones_and_night_shifts() -> None:
    seoul = WorkingHours.parse({"timezone": "Asia/Seoul",
                                "week": {"tue": ["22:00-24:00"], "wed": ["00:00-06:00"]}})
    # 23:00 Tuesday in Seoul (14:00 UTC): the night shift ends 06:00 Wednesday = 21:00 UTC Tue
    assert seoul.current_range_end(utc(2026, 3, 10, 14, 0)) == utc(2026, 3, 10, 21, 0)
    ny = WorkingHours.parse({"timezone": "America/New_York", "week": {"mon": ["08:00-17:00"]}})
    assert ny.current_range_end(utc(2026, 3, 9, 13, 0)) == utc(2026, 3, 9, 21, 0)  # EDT


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"timezone": "Mars/Olympus", "week": {}}, "timezone"),
        ({"timezone": "UTC", "week": {"monday": []}}, "week"),
        ({"timezone": "UTC", "week": {"mon": ["9-17"]}}, "week.mon[0]"),
        ({"timezone": "UTC", "week": {"mon": ["17:00-09:00"]}}, "week.mon[0]"),
        ({"timezone": "UTC", "week": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "week.mon"),
    ],
)
def test_invalid_working_hours_are_refused(team: Dispatcher, spec: dict[str, object],
                                           field: str) -> None:
    with pytest.raises(ValidationError) as err:
        team.set_hours(TEAM, spec)
    assert err.value.field == field
    assert team.hours(TEAM) is None


def test_a_break_ends_by_itself_at_the_end_of_the_working_range(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.set_hours(TEAM, PARIS)
    d.configure(TEAM, presence_timeout_s=7200)
    clock.set(utc(2026, 3, 10, 10, 45))  # 11:45 in Paris, range ends 12:00 (11:00 UTC)
    b = d.start_break(TEAM, "ann")
    assert b.until == int(utc(2026, 3, 10, 11, 0).timestamp() * 1000)
    clock.set(utc(2026, 3, 10, 11, 20))  # the job is late: the break still stops at 11:00
    assert d.tick(TEAM)["breaks_ended"] == 1
    s = d.advisor_stats(TEAM, "ann")
    assert (s.state, s.break_seconds) == ("online", 15 * 60)
    # a scheduled end for a break that already ended is a no-op
    assert d.end_break(TEAM, "ann", epoch=b.epoch, at_ms=b.until) == 0


def test_an_old_scheduled_end_does_not_end_a_newer_break(online: Dispatcher,
                                                        clock: FakeClock) -> None:
    d = online
    first = d.start_break(TEAM, "ann")
    clock.advance(60)
    d.end_break(TEAM, "ann")
    second = d.start_break(TEAM, "ann")
    assert second.epoch == first.epoch + 1
    assert d.end_break(TEAM, "ann", epoch=first.epoch) == 0
    assert d.advisor_stats(TEAM, "ann").state == "on break"


def test_a_break_over_midnight_utc_is_split_across_days(online: Dispatcher,
                                                        clock: FakeClock) -> None:
    d = online
    clock.set(utc(2026, 3, 10, 23, 50))
    d.start_break(TEAM, "ann")
    d.start_break(TEAM, "bob")
    clock.set(utc(2026, 3, 11, 0, 20))
    d.end_break(TEAM, "ann")
    out = d.breaks(TEAM, date(2026, 3, 10), 2)
    # bob's break is still running: it counts up to now, split too
    assert out["days"] == [
        {"day": "2026-03-10", "team_seconds": 1200.0,
         "advisors": {"ann": 600.0, "bob": 600.0}},
        {"day": "2026-03-11", "team_seconds": 2400.0,
         "advisors": {"ann": 1200.0, "bob": 1200.0}},
    ]
    assert d.advisor_stats(TEAM, "ann", date(2026, 3, 10)).break_seconds == 600.0
    assert d.advisor_stats(TEAM, "ann").break_seconds == 1200.0


def test_the_reaper_logs_out_silent_advisors_and_hands_their_messages_back(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.configure(TEAM, presence_timeout_s=600)
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    d.next(TEAM, "bob")
    clock.advance(400)
    d.heartbeat(TEAM, "bob")
    clock.advance(300)  # ann silent for 700 s, bob for 300 s
    done = d.tick(TEAM)
    assert (done["reaped"], done["requeued"]) == (2, 1)  # ann and cid (who held nothing)
    states = {a["advisor"]: a["state"] for a in d.advisors(TEAM)}
    assert states == {"ann": "offline", "bob": "online", "cid": "offline"}
    assert d.preview(TEAM, 1)[0]["messages"][0].reassigned
    assert_clean(d)


def test_an_untouched_push_goes_back_to_the_stock_when_the_team_wants_it(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.configure(TEAM, presence_timeout_s=7200)
    d.ingest_many(TEAM, [message(1), message(2)])
    d.next(TEAM, "ann")
    clock.advance(3600)
    assert d.tick(TEAM)["untouched"] == 0  # off by default
    d.configure(TEAM, untouched_after_s=300)
    d.next(TEAM, "bob")
    clock.advance(200)
    assert d.tick(TEAM)["untouched"] == 1  # ann's, not bob's
    assert [m.id for m in d.current(TEAM, "bob")] == ["m2"]
    assert d.current(TEAM, "ann") == []
    assert d.preview(TEAM, 1)[0]["messages"][0].reassigned
    assert_clean(d)


def test_advisors_are_logged_out_at_the_end_of_working_hours_when_the_team_wants_it(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.set_hours(TEAM, PARIS)
    d.configure(TEAM, logout_at_end_of_hours=True, presence_timeout_s=86400)
    d.ingest(TEAM, message(1))
    clock.set(utc(2026, 3, 10, 16, 30))  # 17:30 Paris
    for adv in ("ann", "bob", "cid"):
        d.heartbeat(TEAM, adv)
    d.next(TEAM, "ann")
    assert d.tick(TEAM)["logged_out_end_of_hours"] == 0
    clock.set(utc(2026, 3, 10, 17, 5))  # 18:05 Paris: the day's last range ended
    done = d.tick(TEAM)
    assert done["logged_out_end_of_hours"] == 3
    assert done["requeued"] == 1
    d.login(TEAM, "ann")  # logging in after hours is allowed and not undone
    assert d.tick(TEAM)["logged_out_end_of_hours"] == 0
    assert_clean(d)


def test_an_advisor_on_a_scheduled_break_is_not_reaped_before_it_ends(
    online: Dispatcher, clock: FakeClock
) -> None:
    d = online
    d.set_hours(TEAM, PARIS)
    clock.set(utc(2026, 3, 10, 8, 0))  # 09:00 Paris
    d.heartbeat(TEAM, "ann")
    d.start_break(TEAM, "ann")  # laptop closed for lunch; the break ends at 12:00 Paris
    clock.set(utc(2026, 3, 10, 10, 30))
    assert "ann" not in [a for a, _ in d.call("reap", TEAM, cutoff=clock() - 600_000, n=10)]
    assert d.advisor_stats(TEAM, "ann").state == "on break"
    clock.set(utc(2026, 3, 10, 11, 30))
    d.tick(TEAM)  # the break ends at 11:00 UTC, then ann, silent, is logged out
    s = d.advisor_stats(TEAM, "ann")
    assert (s.state, s.break_seconds) == ("offline", 3 * 3600)


def test_an_advisors_presence_is_written_at_most_once_a_second_and_still_keeps_them_in(
    online: Dispatcher, clock: FakeClock
) -> None:
    """Presence is refreshed by every call an advisor makes, but written at most once per
    PRESENCE_STEP_S (a press and a reply within the second write it once): the reaper's
    600 s cannot tell the difference, and each call saves two commands."""
    from dispatcher import defaults

    d = online
    key = f"pi:{{{TEAM}}}:online"
    d.ingest_many(TEAM, [message(i) for i in range(1, 5)])
    seen = d.redis.zscore(key, "ann")
    clock.advance(defaults.PRESENCE_STEP_S / 2)
    for m in d.next(TEAM, "ann").messages:
        d.reply(TEAM, "ann", m.id)
    assert d.redis.zscore(key, "ann") == seen  # within the step: not written again
    clock.advance(defaults.PRESENCE_STEP_S)
    d.next(TEAM, "ann")
    later = d.redis.zscore(key, "ann")
    assert later is not None and seen is not None
    assert later == seen + 1500 * defaults.PRESENCE_STEP_S  # past the step: written, exactly now
    clock.advance(599)
    d.heartbeat(TEAM, "ann")  # a heartbeat always writes
    clock.advance(300)
    assert d.tick(TEAM)["reaped"] == 2  # bob and cid; ann was heard 300 s ago
    assert {a["advisor"]: a["state"] for a in d.advisors(TEAM)}["ann"] == "online"
    assert_clean(d)


def test_the_scripts_step_presence_as_defaults_says() -> None:
    from pathlib import Path

    from dispatcher import defaults

    lua = Path(__file__).parent.parent / "scripts" / "lua" / "includes" / "advisors.lua"
    step_ms = round(defaults.PRESENCE_STEP_S * 1000)
    assert f"local PRESENCE_STEP_MS = {step_ms}\n" in lua.read_text()
