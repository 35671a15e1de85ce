"""Business-hours arithmetic: weekends, DST switches, messages outside hours, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportcli.errors import ConfigError
from supportcli.hours import (
    BusinessHours,
    due_at,
    elapsed_hours,
    from_config,
    hours_late,
    is_overdue,
    parse_business_hours,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = parse_business_hours("Mon-Fri 09:00-17:00", "Europe/London")


def london(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "days", "start", "end"), [
    ("Mon-Fri 09:00-17:30", {0, 1, 2, 3, 4}, time(9), time(17, 30)),
    ("mon,wed,fri 8:00 - 12:00", {0, 2, 4}, time(8), time(12)),
    ("Monday-Friday 09:00-17:00", {0, 1, 2, 3, 4}, time(9), time(17)),
    ("Fri-Mon 10:00-14:00", {4, 5, 6, 0}, time(10), time(14)),
    ("Sat 10:00-24:00", {5}, time(10), time(0)),
])
def test_parse(spec: str, days: set[int], start: time, end: time) -> None:
    hours = parse_business_hours(spec, "Europe/London")
    assert (hours.days, hours.start, hours.end, hours.tz) == (days, start, end, "Europe/London")


@pytest.mark.parametrize(("spec", "tz"), [
    ("Mon-Fri 9-17", "UTC"), ("Mon-Fry 09:00-17:00", "UTC"), ("Mon-Fri 17:00-09:00", "UTC"),
    ("Mon-Fri 09:00-25:00", "UTC"), ("Mon-Fri 09:60-17:00", "UTC"), ("09:00-17:00", "UTC"),
    ("Mon-Fri 09:00-17:00", "Europe/Londn"), ("Mon-Fri 09:00-17:00", "../etc/passwd"),
])
def test_parse_errors_are_one_line_config_errors(spec: str, tz: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_business_hours(spec, tz)
    assert "\n" not in info.value.message


def test_from_config() -> None:
    assert from_config({}) is None
    assert from_config({"timezone": "Europe/London"}) is None
    hours = from_config({"business_hours": "Mon-Fri 09:00-17:30", "timezone": "Europe/London"})
    assert hours is not None and hours.describe() == "Mon-Fri 09:00-17:30 Europe/London"
    with pytest.raises(ConfigError):
        from_config({"timezone": "Mars/Olympus"})
    with pytest.raises(ConfigError):
        from_config({"business_hours": 9})


def test_describe() -> None:
    assert parse_business_hours("Mon,Wed 00:00-24:00").describe() == "Mon,Wed 00:00-24:00 UTC"


# -- weekends and messages outside hours --------------------------------------------------


def test_friday_afternoon_plus_two_hours_is_monday_morning() -> None:
    friday = london(2024, 6, 7, 16, 0)
    assert due_at(friday, 2, OFFICE) == london(2024, 6, 10, 10, 0)
    assert elapsed_hours(friday, london(2024, 6, 10, 10, 0), OFFICE) == pytest.approx(2.0)
    assert elapsed_hours(friday, london(2024, 6, 9, 23, 59), OFFICE) == pytest.approx(1.0)


def test_messages_arriving_outside_hours_start_the_clock_at_opening() -> None:
    saturday = london(2024, 6, 8, 11, 0)
    assert due_at(saturday, 2, OFFICE) == london(2024, 6, 10, 11, 0)
    assert elapsed_hours(saturday, london(2024, 6, 9, 20, 0), OFFICE) == 0.0
    early = london(2024, 6, 10, 7, 0)
    assert due_at(early, 1, OFFICE) == london(2024, 6, 10, 10, 0)
    evening = london(2024, 6, 11, 20, 0)
    assert due_at(evening, 3, OFFICE) == london(2024, 6, 12, 12, 0)
    assert due_at(evening, 8, OFFICE) == london(2024, 6, 12, 17, 0)  # the window's last minute
    assert due_at(evening, 9, OFFICE) == london(2024, 6, 13, 10, 0)


def test_whole_weeks() -> None:
    monday = london(2024, 6, 3, 9, 0)
    assert elapsed_hours(monday, monday + timedelta(days=14), OFFICE) == pytest.approx(80.0)
    assert due_at(monday, 80, OFFICE) == london(2024, 6, 14, 17, 0)


def test_overdue() -> None:
    friday = london(2024, 6, 7, 16, 0)
    monday_noon = london(2024, 6, 10, 12, 0)
    # Friday 16-17 and Monday 09-12: 4 business hours
    assert is_overdue(friday, monday_noon, 2, OFFICE)
    assert hours_late(friday, monday_noon, 2, OFFICE) == pytest.approx(2.0)
    assert not is_overdue(friday, monday_noon, 4, OFFICE)
    assert hours_late(friday, monday_noon, 4, OFFICE) == 0.0
    # the wall clock sees the weekend
    assert hours_late(friday, monday_noon, 2, None) == pytest.approx(66.0)


def test_wall_clock() -> None:
    start = datetime(2024, 6, 7, 16, 0, tzinfo=UTC)
    assert elapsed_hours(start, start + timedelta(hours=30), None) == 30.0
    assert due_at(start, 2.5, None) == start + timedelta(hours=2, minutes=30)
    assert elapsed_hours(start, start - timedelta(hours=1), None) == 0.0
    assert elapsed_hours(start, start - timedelta(hours=1), OFFICE) == 0.0


# -- DST ---------------------------------------------------------------------------------


def test_dst_spring_forward_weekend() -> None:
    # clocks go forward on Sunday 31 March 2024 in London: 16:00 GMT Friday + 2 business
    # hours is 10:00 BST Monday, which is 09:00 UTC
    friday = london(2024, 3, 29, 16, 0)
    due = due_at(friday, 2, OFFICE)
    assert due == london(2024, 4, 1, 10, 0)
    assert due == datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
    assert elapsed_hours(friday, due, OFFICE) == pytest.approx(2.0)


@pytest.mark.parametrize(("first", "second", "length"), [
    ((2024, 3, 31), (2024, 4, 1), 23.0), ((2024, 3, 30), (2024, 3, 31), 24.0),
    ((2024, 10, 27), (2024, 10, 28), 25.0)])
def test_dst_day_lengths_for_a_round_the_clock_shop(
    first: tuple[int, int, int], second: tuple[int, int, int], length: float
) -> None:
    always = parse_business_hours("Mon-Sun 00:00-24:00", "Europe/London")
    start, end = london(*first, 0, 0), london(*second, 0, 0)
    assert elapsed_hours(start, end, always) == pytest.approx(length)
    assert elapsed_hours(start, end, None) == pytest.approx(length)


def test_dst_autumn_window_containing_the_switch() -> None:
    # clocks go back at 02:00 BST on Sunday 27 October 2024: 00:00-04:00 lasts 5 hours
    night = parse_business_hours("Sun 00:00-04:00", "Europe/London")
    start, end = london(2024, 10, 26, 12, 0), london(2024, 10, 28, 0, 0)
    assert elapsed_hours(start, end, night) == pytest.approx(5.0)
    assert due_at(start, 4.5, night) == datetime(2024, 10, 27, 3, 30, tzinfo=UTC)


# -- time zones --------------------------------------------------------------------------


def test_shop_time_zone_decides_the_window_not_the_message() -> None:
    ny_office = parse_business_hours("Mon-Fri 09:00-17:00", "America/New_York")
    # 20:30 UTC on Friday is 16:30 in New York (EDT, UTC-4)
    arrived = datetime(2024, 6, 7, 20, 30, tzinfo=UTC)
    assert due_at(arrived, 2, ny_office) == datetime(2024, 6, 10, 10, 30, tzinfo=NEW_YORK)
    assert due_at(arrived, 2, ny_office) == datetime(2024, 6, 10, 14, 30, tzinfo=UTC)
    # the same instant written in Tokyo time gives the same answer
    tokyo = arrived.astimezone(ZoneInfo("Asia/Tokyo"))
    assert due_at(tokyo, 2, ny_office) == due_at(arrived, 2, ny_office)
    # for the London office that instant is after closing on Friday
    assert due_at(arrived, 2, OFFICE) == london(2024, 6, 10, 11, 0)
    # naive datetimes are taken as UTC, like the records store them
    assert due_at(arrived.replace(tzinfo=None), 2, ny_office) == due_at(arrived, 2, ny_office)


def test_windows_are_utc_instants() -> None:
    first = next(OFFICE.windows(london(2024, 6, 10, 0, 0).date()))
    assert first == (datetime(2024, 6, 10, 8, 0, tzinfo=UTC),
                     datetime(2024, 6, 10, 16, 0, tzinfo=UTC))


def test_invalid_business_hours_object() -> None:
    with pytest.raises(ConfigError):
        BusinessHours("UTC", frozenset(), time(9), time(17))


# -- properties --------------------------------------------------------------------------

SHOPS = [OFFICE, parse_business_hours("Mon-Sat 08:30-18:00", "America/New_York"),
         parse_business_hours("Sun 00:00-04:00", "Europe/London"),
         parse_business_hours("Mon-Sun 00:00-24:00", "Australia/Lord_Howe")]
instants = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 1, 1),
                        timezones=st.just(UTC))


@settings(max_examples=150, deadline=None, database=None)
@given(start=instants, sla=st.floats(min_value=0, max_value=200), shop=st.sampled_from(SHOPS))
def test_elapsed_until_due_is_the_target(start: datetime, sla: float, shop: BusinessHours) -> None:
    due = due_at(start, sla, shop)
    assert due >= start
    assert elapsed_hours(start, due, shop) == pytest.approx(sla, abs=1e-6)


@settings(max_examples=150, deadline=None, database=None)
@given(a=instants, b=instants, c=instants, shop=st.sampled_from([*SHOPS, None]))
def test_elapsed_is_additive(a: datetime, b: datetime, c: datetime,
                             shop: BusinessHours | None) -> None:
    a, b, c = sorted((a, b, c))
    total = elapsed_hours(a, c, shop)
    assert total == pytest.approx(elapsed_hours(a, b, shop) + elapsed_hours(b, c, shop), abs=1e-6)
    assert 0 <= total <= (c - a).total_seconds() / 3600 + 1e-9


@pytest.mark.parametrize(
    ("span", "text", "compact"),
    [
        (0.0, "0 min", "0m"),
        (-2.0, "0 min", "0m"),  # a message dated after the as-of time has not waited
        (1 / 120, "1 min", "1m"),  # half a minute reads as one, not nothing
        (0.5, "30 min", "30m"),
        (1.0, "1 h", "1h"),
        (47.4, "47 h", "47h"),
        (48.0, "2 d", "2d"),
        (timedelta(days=3, hours=2), "3 d", "3d"),
        (timedelta(minutes=90), "2 h", "2h"),
    ],
)
def test_one_age_text_for_every_output(span: float | timedelta, text: str, compact: str) -> None:
    from supportcli.hours import age_text

    assert age_text(span) == text
    assert age_text(span, compact=True) == compact
