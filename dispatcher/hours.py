"""Working hours: an IANA time zone and weekly ranges in local wall-clock time.

    timezone: Europe/Paris
    week:
      mon: ["09:00-12:30", "13:30-18:00"]
      sat: ["10:00-14:00"]

Ranges are computed in the team's zone and converted to UTC, so a daylight-saving change moves
the UTC end of a range as the people in that zone expect. A range ends at most at 24:00; a
night shift is written as two ranges (``"22:00-24:00"`` and the next day's ``"00:00-06:00"``),
which join into one continuous range.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatcher.errors import ValidationError

__all__ = ["DAYS", "WorkingHours"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class WorkingHours:
    timezone: str
    week: dict[str, list[tuple[int, int]]]  # day -> [(start minute, end minute)]

    @classmethod
    def parse(cls, spec: object) -> WorkingHours:
        """Validate working hours; raises ValidationError naming the bad field."""
        if not isinstance(spec, dict):
            raise ValidationError("working hours must be an object", field="hours")
        extra = sorted(set(spec) - {"timezone", "week"})
        if extra:
            raise ValidationError(f"unknown working-hours field {extra[0]!r}", field=extra[0])
        tz = spec.get("timezone")
        if not isinstance(tz, str):
            raise ValidationError("timezone must be an IANA zone name", field="timezone")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"unknown time zone {tz!r}", field="timezone") from exc
        week_in = spec.get("week", {})
        if not isinstance(week_in, dict):
            raise ValidationError("week must map days (mon..sun) to ranges", field="week")
        week: dict[str, list[tuple[int, int]]] = {}
        for day, ranges in week_in.items():
            if day not in DAYS:
                raise ValidationError(f"week.{day} is not a day; use {', '.join(DAYS)}", "week")
            if not isinstance(ranges, list):
                raise ValidationError(f"week.{day} must be a list of ranges", f"week.{day}")
            parsed: list[tuple[int, int]] = []
            for i, r in enumerate(ranges):
                m = _RANGE_RE.match(r) if isinstance(r, str) else None
                if not m:
                    raise ValidationError(
                        f"week.{day}[{i}] must look like '09:00-17:30', got {r!r}",
                        field=f"week.{day}[{i}]",
                    )
                start = int(m.group(1)) * 60 + int(m.group(2))
                end = int(m.group(3)) * 60 + int(m.group(4))
                if end > 24 * 60 or end <= start:
                    raise ValidationError(
                        f"week.{day}[{i}] must end after it starts, by 24:00 at the latest",
                        field=f"week.{day}[{i}]",
                    )
                parsed.append((start, end))
            parsed.sort()
            for (_, e1), (s2, _) in itertools.pairwise(parsed):
                if s2 < e1:
                    raise ValidationError(f"week.{day} has overlapping ranges", f"week.{day}")
            week[day] = parsed
        return cls(timezone=tz, week=week)

    def to_dict(self) -> dict[str, Any]:
        def fmt(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        return {
            "timezone": self.timezone,
            "week": {
                d: [f"{fmt(s)}-{fmt(e)}" for s, e in self.week[d]] for d in DAYS if d in self.week
            },
        }

    # --- computing ranges -------------------------------------------------------------------
    def _ranges_around(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        """UTC ranges of the local days around ``moment``, adjacent ranges merged."""
        tz = ZoneInfo(self.timezone)
        local_day = moment.astimezone(tz).date()
        out: list[tuple[datetime, datetime]] = []
        for offset in range(-8, 9):
            d = local_day + timedelta(days=offset)
            for start, end in self.week.get(DAYS[d.weekday()], []):
                out.append((_at(d, start, tz), _at(d, end, tz)))
        merged: list[tuple[datetime, datetime]] = []
        for s, e in sorted(out):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def current_range_end(self, moment: datetime) -> datetime | None:
        """End (UTC) of the working range containing ``moment``; None outside working hours."""
        for s, e in self._ranges_around(moment):
            if s <= moment < e:
                return e
        return None

    def last_end_before(self, moment: datetime) -> datetime | None:
        """The latest range end at or before ``moment`` (within the last week)."""
        ends = [e for s, e in self._ranges_around(moment) if e <= moment]
        return max(ends) if ends else None


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0, 0), tz).astimezone(UTC)
    return datetime.combine(day, time(minute // 60, minute % 60), tz).astimezone(UTC)
