"""Schedules: Computus, Polish holidays, opening hours across DST, the server clock."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.clock import ServerClock, clock_arg, parse_clock
from ivr.schedule import (
    Schedule,
    ScheduleState,
    easter_sunday,
    parse_days,
    parse_ranges,
    polish_holidays,
)

WARSAW = ZoneInfo("Europe/Warsaw")


def business(**kwargs: object) -> Schedule:
    week = {d: ((8 * 60, 20 * 60),) for d in range(5)} | {5: ((9 * 60, 14 * 60),)}
    return Schedule(week=week, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2000, date(2000, 4, 23)), (2008, date(2008, 3, 23)), (2011, date(2011, 4, 24)),
     (2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
     (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25))],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_polish_holidays_2026() -> None:
    days = polish_holidays(2026)
    assert list(days) == [
        date(2026, 1, 1), date(2026, 1, 6), date(2026, 4, 5), date(2026, 4, 6),
        date(2026, 5, 1), date(2026, 5, 3), date(2026, 5, 24), date(2026, 6, 4),
        date(2026, 8, 15), date(2026, 11, 1), date(2026, 11, 11), date(2026, 12, 24),
        date(2026, 12, 25), date(2026, 12, 26),
    ]
    assert days[date(2026, 6, 4)] == "Boże Ciało"


def test_christmas_eve_is_a_holiday_from_2025() -> None:
    assert date(2024, 12, 24) not in polish_holidays(2024)
    assert date(2025, 12, 24) in polish_holidays(2025)


def test_hours_and_holidays() -> None:
    s = business()
    assert s.state(datetime(2026, 11, 23, 10, 0, tzinfo=WARSAW)) is ScheduleState.OPEN
    assert s.state(datetime(2026, 11, 23, 7, 59, tzinfo=WARSAW)) is ScheduleState.CLOSED
    assert s.state(datetime(2026, 11, 23, 20, 0, tzinfo=WARSAW)) is ScheduleState.CLOSED
    assert s.is_open(datetime(2026, 11, 28, 13, 59, tzinfo=WARSAW))  # Saturday
    assert not s.is_open(datetime(2026, 11, 28, 14, 0, tzinfo=WARSAW))
    assert not s.is_open(datetime(2026, 11, 29, 10, 0, tzinfo=WARSAW))  # Sunday
    # Easter Monday and Corpus Christi (a Thursday) are closed, the Tuesday after Easter is not
    assert s.state(datetime(2026, 4, 6, 10, 0, tzinfo=WARSAW)) is ScheduleState.HOLIDAY
    assert s.state(datetime(2026, 6, 4, 10, 0, tzinfo=WARSAW)) is ScheduleState.HOLIDAY
    assert s.is_open(datetime(2026, 4, 7, 10, 0, tzinfo=WARSAW))
    assert s.state(datetime(2026, 11, 11, 10, 0, tzinfo=WARSAW)) is ScheduleState.HOLIDAY


def test_admin_closed_and_special_days() -> None:
    s = business(
        closed_days=frozenset({date(2026, 11, 23)}),
        special_days={date(2026, 11, 24): ((8 * 60, 12 * 60),), date(2026, 11, 1): ((600, 720),)},
    )
    assert s.state(datetime(2026, 11, 23, 10, 0, tzinfo=WARSAW)) is ScheduleState.HOLIDAY
    assert s.is_open(datetime(2026, 11, 24, 11, 0, tzinfo=WARSAW))
    assert not s.is_open(datetime(2026, 11, 24, 13, 0, tzinfo=WARSAW))
    assert s.is_open(datetime(2026, 11, 1, 11, 0, tzinfo=WARSAW))  # special hours win
    easter_monday = datetime(2026, 4, 6, 10, 0, tzinfo=WARSAW)
    assert business(holidays=()).state(easter_monday) is ScheduleState.OPEN


def test_opening_hours_are_wall_clock_across_dst() -> None:
    s = business()
    # Friday before the spring switch (CET, +01:00) and Monday after it (CEST, +02:00):
    # 08:30 local is open on both days although the UTC hour differs.
    assert s.is_open(datetime(2026, 3, 27, 7, 30, tzinfo=UTC))
    assert s.is_open(datetime(2026, 3, 30, 6, 30, tzinfo=UTC))
    assert not s.is_open(datetime(2026, 3, 30, 5, 30, tzinfo=UTC))  # 07:30 CEST
    # Autumn: 19:30 local on the Friday (CEST) and the Monday after (CET)
    assert s.is_open(datetime(2026, 10, 23, 17, 30, tzinfo=UTC))
    assert s.is_open(datetime(2026, 10, 26, 18, 30, tzinfo=UTC))
    assert not s.is_open(datetime(2026, 10, 26, 19, 30, tzinfo=UTC))  # 20:30 CET
    # Another zone: 08:30 in Warsaw is 07:30 in London
    assert not business(timezone="Europe/London").is_open(
        datetime(2026, 11, 23, 8, 30, tzinfo=WARSAW)
    )


def test_state_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        business().state(datetime(2026, 1, 1, 10, 0))


def test_parse_days_and_ranges() -> None:
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("sat, sun") == [5, 6]
    assert parse_days("sat-mon") == [5, 6, 0]
    assert parse_ranges(["13:00-17:00", "08:00-12:00"]) == [(480, 720), (780, 1020)]
    assert parse_ranges("00:00-24:00") == [(0, 1440)]
    assert parse_ranges("closed") == []
    for bad in ("8-20", "20:00-08:00", "08:00-24:30", "25:00-26:00"):
        with pytest.raises(ValueError):
            parse_ranges(bad)
    with pytest.raises(ValueError, match="bad day 'monday'"):
        parse_days("monday")


def test_unknown_zone_and_calendar() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        business(timezone="Europe/Warsw")
    with pytest.raises(ValueError, match="unknown holiday calendar"):
        business(holidays=("narnia",))


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_server_clock_starts_at_a_moment_and_runs_on() -> None:
    mono = FakeMonotonic()
    clock = ServerClock(parse_clock("2026-11-23T10:00"), "Europe/Warsaw", monotonic=mono)
    assert clock.now() == datetime(2026, 11, 23, 10, 0, tzinfo=WARSAW)
    mono.t += 90
    assert clock.now() == datetime(2026, 11, 23, 10, 1, 30, tzinfo=WARSAW)
    assert clock.now().utcoffset() == timedelta(hours=1)
    assert clock.fixed


def test_server_clock_crosses_a_dst_switch() -> None:
    mono = FakeMonotonic()
    clock = ServerClock(datetime(2026, 3, 29, 1, 30), "Europe/Warsaw", monotonic=mono)
    mono.t += 3600
    now = clock.now()
    assert (now.hour, now.minute, now.utcoffset()) == (3, 30, timedelta(hours=2))


def test_server_clock_without_start_follows_the_system() -> None:
    clock = ServerClock()
    assert not clock.fixed
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5
    assert clock.now().tzinfo == WARSAW


def test_clock_argument() -> None:
    assert clock_arg("2026-11-23T10:00+00:00") == datetime(2026, 11, 23, 10, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="expected an ISO date-time"):
        clock_arg("next monday")
