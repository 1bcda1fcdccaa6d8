"""Opening hours: weekly time ranges, Polish public holidays and an admin list of closed days.

Times are wall-clock times in the schedule's zone (Europe/Warsaw by default): the instant from
the server clock is converted to that zone first, so "08:00" means 08:00 in winter and in
summer, and the DST switch days need no special case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def polish_holidays(year: int) -> Mapping[date, str]:
    """Public holidays in Poland (days off work by the Act of 18 January 1951, as amended).

    24 December (Wigilia) is a day off from 2025 on.
    """
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1): "Nowy Rok",
        date(year, 1, 6): "Święto Trzech Króli",
        easter: "Wielkanoc",
        easter + timedelta(days=1): "Poniedziałek Wielkanocny",
        date(year, 5, 1): "Święto Pracy",
        date(year, 5, 3): "Święto Konstytucji 3 Maja",
        easter + timedelta(days=49): "Zielone Świątki",
        easter + timedelta(days=60): "Boże Ciało",
        date(year, 8, 15): "Wniebowzięcie NMP",
        date(year, 11, 1): "Wszystkich Świętych",
        date(year, 11, 11): "Narodowe Święto Niepodległości",
        date(year, 12, 25): "Boże Narodzenie (pierwszy dzień)",
        date(year, 12, 26): "Boże Narodzenie (drugi dzień)",
    }
    if year >= 2025:
        days[date(year, 12, 24)] = "Wigilia Bożego Narodzenia"
    return dict(sorted(days.items()))


HOLIDAY_CALENDARS = {"poland": polish_holidays}


def parse_days(spec: str) -> list[int]:
    """``"mon-fri"``, ``"sat"``, ``"sat,sun"`` -> weekday numbers (Monday = 0).

    Raises ValueError naming what was expected.
    """
    out: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(
                f"bad day {spec!r}: expected day names {', '.join(DAY_NAMES)}, "
                "ranges like mon-fri, or lists like sat,sun"
            )
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return out


def parse_ranges(value: str | Iterable[str]) -> list[tuple[int, int]]:
    """``"08:00-20:00"`` (or a list of them, or ``"closed"``) -> minute ranges [start, end).

    ``24:00`` is allowed as an end. Raises ValueError naming what was expected.
    """
    items = [value] if isinstance(value, str) else list(value)
    out: list[tuple[int, int]] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a time range such as \"08:00-20:00\", got {item!r}")
        if item.strip().lower() == "closed":
            continue
        m = _RANGE.match(item)
        if not m:
            raise ValueError(
                f'bad time range {item!r}: expected "HH:MM-HH:MM" such as "08:00-20:00", '
                'or "closed"'
            )
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
            raise ValueError(
                f"bad time range {item!r}: expected a start before the end, within 00:00-24:00"
            )
        out.append((start, end))
    return sorted(out)


class ScheduleState(StrEnum):
    """What a schedule says about one moment."""

    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


@dataclass(frozen=True)
class Schedule:
    """Weekly opening hours in a time zone, closed on holidays and on extra admin days."""

    #: weekday (Monday = 0) -> minute ranges [start, end) in local time
    week: Mapping[int, tuple[tuple[int, int], ...]]
    timezone: str = "Europe/Warsaw"
    #: built-in holiday calendars by name (``poland``)
    holidays: tuple[str, ...] = ("poland",)
    #: extra days closed all day (company events, bridge days)
    closed_days: frozenset[date] = field(default_factory=frozenset)
    #: days with their own hours instead of the weekly ones (empty tuple = closed)
    special_days: Mapping[date, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {self.timezone!r}: expected an IANA name such as "
                "Europe/Warsaw"
            ) from None
        for name in self.holidays:
            if name not in HOLIDAY_CALENDARS:
                raise ValueError(
                    f"unknown holiday calendar {name!r}: expected one of "
                    f"{', '.join(HOLIDAY_CALENDARS)}"
                )

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    def holiday(self, day: date) -> str | None:
        """The name of the holiday or closed day on ``day``, if any."""
        if day in self.closed_days:
            return "closed day"
        for name in self.holidays:
            found = HOLIDAY_CALENDARS[name](day.year).get(day)
            if found:
                return found
        return None

    def state(self, when: datetime) -> ScheduleState:
        """Open, closed, or a holiday at the aware instant ``when``."""
        if when.tzinfo is None:
            raise ValueError("Schedule.state needs an aware datetime")
        local = when.astimezone(self.zone)
        day = local.date()
        if day in self.special_days:
            ranges = self.special_days[day]
        elif self.holiday(day) is not None:
            return ScheduleState.HOLIDAY
        else:
            ranges = self.week.get(local.weekday(), ())
        minute = local.hour * 60 + local.minute + local.second / 60
        if any(start <= minute < end for start, end in ranges):
            return ScheduleState.OPEN
        return ScheduleState.CLOSED

    def is_open(self, when: datetime) -> bool:
        """True when ``when`` is within opening hours."""
        return self.state(when) is ScheduleState.OPEN
