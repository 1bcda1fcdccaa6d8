"""Outbound compliance rules, pure: abandon rate, 72-hour rule, ring time, calling window
and retries (the do-not-call list lives with the campaigns, in ``campaigns.py``).

Times are seconds (``now``); the abandon ledger buckets them by hour and by day, so its memory
is bounded whatever the volume. An *abandoned* call is one answered by a person that found no
agent within 2 seconds (FTC TSR 16 CFR 310.4(b)(4), Ofcom's persistent misuse policy).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

HOUR = 3600.0
DAY = 86400.0
#: unanswered calls ring at least this long before the dialer gives up
MIN_RING_SECONDS = 15.0
#: a number abandoned once is not dialled again by the predictive mode for this long
REDIAL_BLOCK_SECONDS = 72 * HOUR


class _Buckets:
    """Counts of (answered, abandoned) in fixed-width time buckets over a rolling window."""

    def __init__(self, width: float, count: int) -> None:
        self.width = width
        self.count = count
        self._q: deque[list[int]] = deque()  # [bucket index, answered, abandoned]

    def add(self, now: float, abandoned: bool) -> None:
        idx = int(now // self.width)
        if not self._q or self._q[-1][0] != idx:
            self._q.append([idx, 0, 0])
            self._prune(idx)
        self._q[-1][1] += 1
        self._q[-1][2] += int(abandoned)

    def _prune(self, idx: int) -> None:
        while self._q and self._q[0][0] <= idx - self.count:
            self._q.popleft()

    def totals(self, now: float) -> tuple[int, int]:
        first = int(now // self.width) - self.count + 1
        answered = abandoned = 0
        for idx, a, b in self._q:
            if idx >= first:
                answered += a
                abandoned += b
        return answered, abandoned


class AbandonLedger:
    """One campaign's abandon rate over the last 24 hours (hourly buckets) and 30 days (daily).

    ``record(now, abandoned)`` once for each call answered by a person.
    """

    def __init__(self) -> None:
        self._hours = _Buckets(HOUR, 24)
        self._days = _Buckets(DAY, 30)

    def record(self, now: float, *, abandoned: bool) -> None:
        self._hours.add(now, abandoned)
        self._days.add(now, abandoned)

    def counts_24h(self, now: float) -> tuple[int, int]:
        """(answered by a person, abandoned) in the last 24 hours."""
        return self._hours.totals(now)

    def counts_30d(self, now: float) -> tuple[int, int]:
        return self._days.totals(now)

    def rate_24h(self, now: float) -> float:
        answered, abandoned = self.counts_24h(now)
        return abandoned / answered if answered else 0.0

    def rate_30d(self, now: float) -> float:
        answered, abandoned = self.counts_30d(now)
        return abandoned / answered if answered else 0.0

    def within(self, now: float, limit: float) -> bool:
        """Both windows at or under ``limit``."""
        return self.rate_24h(now) <= limit and self.rate_30d(now) <= limit


class RedialGuard:
    """The 72-hour rule: a number abandoned once is not redialled by predictive mode."""

    def __init__(self, block: float = REDIAL_BLOCK_SECONDS) -> None:
        self.block = block
        self._abandoned: dict[str, float] = {}

    def record_abandon(self, number: str, now: float) -> None:
        self._abandoned[number] = now
        if len(self._abandoned) > 1024:
            self.prune(now)

    def prune(self, now: float) -> None:
        self._abandoned = {n: t for n, t in self._abandoned.items() if now - t < self.block}

    def may_dial(self, number: str, now: float, *, predictive: bool = True) -> bool:
        """False if predictive mode would redial an abandoned number within 72 h.

        Preview and progressive calls always have an agent waiting, so they are allowed.
        """
        if not predictive:
            return True
        t = self._abandoned.get(number)
        return t is None or now - t >= self.block


def ring_timeout(configured: float) -> float:
    """The no-answer timeout actually used: never under 15 seconds."""
    return max(configured, MIN_RING_SECONDS)


def may_hang_up_unanswered(ring_elapsed: float) -> bool:
    """Whether an unanswered call may be torn down after ringing this long."""
    return ring_elapsed >= MIN_RING_SECONDS


TimeRange = tuple[dt.time, dt.time]


def _default_hours() -> dict[int, tuple[TimeRange, ...]]:
    weekday = ((dt.time(8), dt.time(21)),)
    return {0: weekday, 1: weekday, 2: weekday, 3: weekday, 4: weekday,
            5: ((dt.time(10), dt.time(18)),), 6: ()}


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """When contacts may be called, in their own local time.

    ``hours`` maps a weekday (Monday = 0) to ranges ``[start, end)``; ``holidays`` are local
    dates on which nobody is called.
    """

    hours: Mapping[int, tuple[TimeRange, ...]] = field(default_factory=_default_hours)
    holidays: frozenset[dt.date] = frozenset()

    def may_call(self, contact_tz: str, now_utc: dt.datetime) -> bool:
        """Whether a contact in ``contact_tz`` (IANA name) may be called at ``now_utc``."""
        if now_utc.tzinfo is None:
            raise ValueError("now_utc must be timezone-aware")
        local = now_utc.astimezone(ZoneInfo(contact_tz))
        if local.date() in self.holidays:
            return False
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in self.hours.get(local.weekday(), ()))


class Outcome(enum.Enum):
    """How a dial attempt ended, for the retry rules."""

    BUSY = "busy"
    NO_ANSWER = "no-answer"
    MACHINE = "machine"
    ABANDONED = "abandoned"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RetryRule:
    """Retry at most ``max_retries`` times after this outcome, ``delay`` seconds later."""

    max_retries: int
    delay: float


def _default_rules() -> dict[Outcome, RetryRule]:
    return {
        Outcome.BUSY: RetryRule(3, 15 * 60.0),
        Outcome.NO_ANSWER: RetryRule(3, 2 * HOUR),
        Outcome.MACHINE: RetryRule(2, 4 * HOUR),
        Outcome.ABANDONED: RetryRule(1, REDIAL_BLOCK_SECONDS),
        Outcome.FAILED: RetryRule(1, HOUR),
    }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries per outcome. An abandoned contact never comes back before 72 hours."""

    rules: Mapping[Outcome, RetryRule] = field(default_factory=_default_rules)

    def next_attempt(self, outcome: Outcome, retries_so_far: int, now: float) -> float | None:
        """When to try again after ``outcome`` (``retries_so_far`` earlier retries for that
        outcome), or None if the contact is final."""
        rule = self.rules.get(outcome)
        if rule is None or retries_so_far >= rule.max_retries:
            return None
        delay = rule.delay
        if outcome is Outcome.ABANDONED:
            delay = max(delay, REDIAL_BLOCK_SECONDS)
        return now + delay


BUSY_STATUSES = {486, 600, 603}
NO_ANSWER_STATUSES = {480, 487}


def failed_outcome(status: int, rang: float) -> str:
    """The attempt outcome of a trunk dial that was not answered: busy, no-answer (a ring
    timeout only counts when the call really rang its 15 s) or failed."""
    if status in BUSY_STATUSES:
        return "busy"
    if status in NO_ANSWER_STATUSES or (status == 408 and rang >= 14.5):
        return "no-answer"
    return "failed"
