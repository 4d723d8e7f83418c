"""Daily reports from the hourly figures the scripts keep (includes/reports.lua).

A report is the sum of the UTC hours of one day, in UTC or a team's time zone (a zone whose
offset is not whole hours is read to the hour). Waiting and handle times are fixed-bucket
histograms: a percentile is the upper bound of the bucket it falls in (``defaults.
REPORT_BUCKETS_S``), the longest wait per group is exact.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatcher import defaults
from dispatcher.errors import ValidationError

__all__ = ["HOUR_MS", "assemble", "day_hours", "percentile", "to_csv"]

HOUR_MS = 3_600_000
#: The days a report may ask for: figures exist from 1970 on; the last day leaves room for
#: the next midnight in any zone.
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9999, 12, 30)


def day_hours(day: date, tz: str | None) -> tuple[int, int, tzinfo]:
    """The day's UTC hour numbers ``range(first, end)`` in ``tz`` (UTC when None), and the
    zone."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(f"day must be from {FIRST_DAY} to {LAST_DAY}", field="day")
    zone: tzinfo = UTC
    if tz:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long
            raise ValidationError(f"unknown time zone {tz[:64]!r}", field="tz") from exc
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return s_ms // HOUR_MS, -(-e_ms // HOUR_MS), zone


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The upper bound (seconds) of the bucket holding the ``q`` quantile; None when empty;
    past the last bound, the last bound is a lower limit and None says so."""
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return float(defaults.REPORT_BUCKETS_S[b]) if b < len(
                defaults.REPORT_BUCKETS_S) else None
    return None


def assemble(rows: list[dict[bytes, bytes]], maxima: list[list[tuple[bytes, float]]],
             hours: list[int], zone: tzinfo,
             targets: dict[str, int], running_breaks: dict[str, float]) -> dict[str, Any]:
    """Sum hourly hashes into the report: per advisor, per group, per hour."""
    adv: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    grp: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    handle: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    wait: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    per_hour = []
    for hour, raw, mx in zip(hours, rows, maxima, strict=True):
        pushes = waited = 0
        longest = 0.0
        for k, v in raw.items():
            field, n = k.decode(), int(v)
            kind, _, rest = field.partition("|")
            if kind in ("p", "r", "a", "h", "ra", "b"):
                adv[rest][kind] += n
            elif kind == "ht":
                who, _, b = rest.rpartition("|")
                handle[who][int(b)] += n
                adv[who]
            elif kind == "ga":
                grp[rest]["arrivals"] += n
            elif kind == "gw":
                name, _, b = rest.rpartition("|")
                wait[name][int(b)] += n
                grp[name]["pushes"] += n
                pushes += n
            elif kind == "gws":
                grp[rest]["wait_ms"] += n
                waited += n
            elif kind == "gwt":
                grp[rest]["within_target"] += n
        for member, score in mx:
            g = member.decode()
            grp[g]["max_ms"] = max(grp[g].get("max_ms", 0), float(score))
            longest = max(longest, float(score))
        start = datetime.fromtimestamp(hour * HOUR_MS / 1000, zone)
        per_hour.append({"hour": start.isoformat(timespec="minutes"), "pushes": pushes,
                         "avg_wait_s": round(waited / pushes / 1000, 1) if pushes else None,
                         "max_wait_s": round(longest / 1000, 1) if pushes else None})
    for who, extra in running_breaks.items():
        adv[who]["b"] += int(extra)
    advisors = []
    for who in sorted(adv):
        f = adv[who]
        advisors.append({
            "advisor": who, "pushed": f["p"], "responses": f["r"], "archives": f["a"],
            "help_requests": f["h"], "reassigned_away": f["ra"],
            "break_s": round(f["b"] / 1000, 1),
            "handle_p50_s": percentile(handle[who], 0.5),
            "handle_p90_s": percentile(handle[who], 0.9),
        })
    groups = []
    for name in sorted(grp, key=lambda g: (g == "everything else", g)):
        f = grp[name]
        target = targets.get(name)
        groups.append({
            "group": name, "arrivals": f["arrivals"], "pushes": f["pushes"],
            "wait_p50_s": percentile(wait[name], 0.5), "wait_p90_s": percentile(wait[name], 0.9),
            "wait_max_s": round(f["max_ms"] / 1000, 1) if f.get("max_ms") else None,
            "wait_avg_s": round(f["wait_ms"] / f["pushes"] / 1000, 1) if f["pushes"] else None,
            "target_wait_s": target,
            "within_target": (round(f["within_target"] / f["pushes"], 4)
                              if target and f["pushes"] else None),
        })
    return {"advisors": advisors, "groups": groups, "hours": per_hour}


def to_csv(report: dict[str, Any]) -> str:
    """The tables in one CSV: a `table` column says which (advisors, groups, hours)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for table in ("advisors", "groups", "hours"):
        rows = report[table]
        if not rows:
            continue
        cols = list(rows[0])
        writer.writerow(["table", *cols])
        for r in rows:
            writer.writerow([table, *(_cell(r[c]) for c in cols)])
    return out.getvalue()


def _cell(value: object) -> object:
    """A CSV cell; text a spreadsheet would run as a formula (= + - @, OWASP's CSV injection)
    is written with a leading quote: advisor ids and group names are the teams' input."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
