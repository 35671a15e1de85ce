"""Response-target arithmetic: how long a customer has waited, when a reply is due.

Without business hours every hour counts (wall clock). With them, only the hours inside the
opening window of an opening day count, in the shop's own time zone, so a message that arrives
on Friday at 16:00 with a 2-hour target for a 9–17 shop is due on Monday at 10:00. Each day's
window is turned into UTC instants before any subtraction, so DST changes are handled by
zoneinfo and never by adding hours to local times.

Config (the table the keys live in is the caller's choice)::

    business_hours = "Mon-Fri 09:00-17:30"   # days: Mon..Sun, ranges and commas
    timezone = "Europe/London"               # IANA name
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^\s*(?P<days>[A-Za-z, \-]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<end>\d{1,2}:\d{2})\s*$")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOUR = 3600.0


@dataclass(frozen=True)
class BusinessHours:
    """Opening days (0 = Monday) and one daily window, in the time zone ``tz``.

    ``end`` of ``time(0, 0)`` means midnight at the end of the day (written ``24:00``).
    """

    tz: str
    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        zone(self.tz)
        if not self.days or not all(0 <= d <= 6 for d in self.days):
            raise ConfigError("business_hours: give at least one day between Mon and Sun")
        if self.end != time(0) and self.end <= self.start:
            raise ConfigError("business_hours: the closing time must be after the opening time"
                              " (windows across midnight are not supported)")

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)

    def describe(self) -> str:
        end = "24:00" if self.end == time(0) else self.end.strftime("%H:%M")
        return f"{_describe_days(self.days)} {self.start:%H:%M}-{end} {self.tz}"

    def windows(self, first: date) -> Iterator[tuple[datetime, datetime]]:
        """Opening windows as UTC instants, from the local day ``first`` on, forever."""
        tz, day = self.zone, first
        while True:
            if day.weekday() in self.days:
                opens = datetime.combine(day, self.start, tzinfo=tz)
                closes = (datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
                          if self.end == time(0) else datetime.combine(day, self.end, tzinfo=tz))
                yield opens.astimezone(UTC), closes.astimezone(UTC)
            day += timedelta(days=1)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or a one-line ConfigError."""
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as "
                          "'Europe/London')") from None


def parse_business_hours(spec: str, tz: str = "UTC") -> BusinessHours:
    """``"Mon-Fri 09:00-17:30"``, ``"Mon,Wed,Fri 08:00-12:00"``, ``"Sat-Sun 10:00-24:00"``."""
    match = _SPEC.match(str(spec))
    if not match:
        raise ConfigError(f"business_hours {spec!r}: expected e.g. 'Mon-Fri 09:00-17:30'")
    days: set[int] = set()
    for part in match["days"].replace(" ", "").lower().split(","):
        first, _, last = part.partition("-")
        a, b = _day(first, spec), _day(last or first, spec)
        days.update((a + n) % 7 for n in range((b - a) % 7 + 1))
    return BusinessHours(tz, frozenset(days), _clock(match["start"], spec),
                         _clock(match["end"], spec, allow_24=True))


def from_config(table: Mapping[str, Any]) -> BusinessHours | None:
    """Business hours from a config table with ``business_hours`` and ``timezone``.

    None when ``business_hours`` is not set (wall-clock targets); the time zone alone is
    still checked so a typo fails early.
    """
    tz = str(table.get("timezone") or "UTC")
    zone(tz)
    spec = table.get("business_hours")
    if spec in (None, ""):
        return None
    if not isinstance(spec, str):
        raise ConfigError("business_hours must be a string such as 'Mon-Fri 09:00-17:30'")
    return parse_business_hours(spec, tz)


def age_text(span: float | timedelta, compact: bool = False) -> str:
    """How long, as people read it: minutes under an hour, hours under two days, then days:
    "45 min", "5 h", "3 d"; ``compact`` (narrow columns) "45m", "5h", "3d". ``span`` is a
    timedelta or a number of hours; nothing (or less) reads "0 min"."""
    hours = span.total_seconds() / 3600 if isinstance(span, timedelta) else span
    if hours < 1:
        value, unit = (max(1, round(hours * 60)) if hours > 0 else 0), "min"
    elif hours < 48:
        value, unit = round(hours), "h"
    else:
        value, unit = round(hours / 24), "d"
    return f"{value}{unit[0]}" if compact else f"{value} {unit}"


def elapsed_hours(start: datetime, end: datetime, hours: BusinessHours | None) -> float:
    """Hours from ``start`` to ``end``: all of them, or only business hours. Never negative."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds() / _HOUR
    total = 0.0
    for opens, closes in hours.windows(_local_day(start, hours)):
        if opens >= end:
            break
        overlap = (min(closes, end) - max(opens, start)).total_seconds()
        total += max(overlap, 0.0)
    return total / _HOUR


def due_at(start: datetime, sla_hours: float, hours: BusinessHours | None) -> datetime:
    """When a reply is due (UTC): ``sla_hours`` after ``start``, counting business hours only."""
    start = _utc(start)
    if hours is None:
        return start + timedelta(hours=sla_hours)
    remaining = max(sla_hours, 0.0) * _HOUR
    for opens, closes in hours.windows(_local_day(start, hours)):
        if closes <= start:
            continue
        begin = max(opens, start)
        length = (closes - begin).total_seconds()
        if remaining <= length:
            return begin + timedelta(seconds=remaining)
        remaining -= length
    raise AssertionError("unreachable: business hours have at least one window a week")


def is_overdue(start: datetime, now: datetime, sla_hours: float,
               hours: BusinessHours | None) -> bool:
    return hours_late(start, now, sla_hours, hours) > 0


def hours_late(start: datetime, now: datetime, sla_hours: float,
               hours: BusinessHours | None) -> float:
    """How far past the target ``now`` is, in the same hours the target counts (0 if not)."""
    return max(elapsed_hours(start, now, hours) - sla_hours, 0.0)


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already (records store UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _local_day(value: datetime, hours: BusinessHours) -> date:
    return value.astimezone(hours.zone).date()


def _day(name: str, spec: str) -> int:
    key = name.lower()
    for number, full in enumerate(_FULL_NAMES):
        if key in (full, full[:3]):
            return number
    raise ConfigError(f"business_hours {spec!r}: unknown day {name!r} (use Mon..Sun)")


def _clock(text: str, spec: str, *, allow_24: bool = False) -> time:
    hh, mm = (int(x) for x in text.split(":"))
    if allow_24 and (hh, mm) == (24, 0):
        return time(0)
    if hh > 23 or mm > 59:
        raise ConfigError(f"business_hours {spec!r}: {text} is not a time of day")
    return time(hh, mm)


def _describe_days(days: frozenset[int]) -> str:
    names = [DAY_NAMES[d].title() for d in sorted(days)]
    ordered = sorted(days)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{names[0]}-{names[-1]}"
    return ",".join(names)
