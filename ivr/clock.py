"""The server's local-time clock: real time, or started at a given moment and running on.

``callcenter serve --clock 2026-11-23T10:00`` makes a demo or a test inside or outside business
hours at will. Arithmetic is done in UTC so a clock started before a DST switch crosses it
correctly.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Europe/Warsaw"


def parse_clock(text: str, tz: str | ZoneInfo | None = DEFAULT_TZ) -> datetime:
    """ISO 8601 date-time -> aware datetime; a time without offset is local time in ``tz``
    (left naive with ``tz=None``: ``ServerClock`` then takes it in its own zone).

    Raises ValueError naming the expected form.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"bad clock {text!r}: expected an ISO date-time such as 2026-11-23T10:00 "
            "(local time) or 2026-11-23T10:00+01:00"
        ) from None
    if value.tzinfo is not None or tz is None:
        return value
    return value.replace(tzinfo=tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))


def clock_arg(text: str) -> datetime:
    """``argparse`` type for ``--clock``: local time in the server's zone (config ``timezone``)
    unless an offset is given."""
    try:
        return parse_clock(text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class ServerClock:
    """``now()`` is aware local time; with ``start`` it begins there and advances in real time."""

    def __init__(
        self,
        start: datetime | None = None,
        tz: str | ZoneInfo = DEFAULT_TZ,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=self.tz)
        self._start_utc = start.astimezone(UTC) if start is not None else None
        self._monotonic = monotonic
        self._t0 = monotonic()

    @property
    def fixed(self) -> bool:
        """True when started at a given moment (not following the system clock)."""
        return self._start_utc is not None

    def now(self) -> datetime:
        """The current aware local time in ``tz``."""
        if self._start_utc is None:
            return datetime.now(self.tz)
        elapsed = timedelta(seconds=self._monotonic() - self._t0)
        return (self._start_utc + elapsed).astimezone(self.tz)

    def __repr__(self) -> str:
        return f"ServerClock({self.now().isoformat()}, {self.tz.key})"
