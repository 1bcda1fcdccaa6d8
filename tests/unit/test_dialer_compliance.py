"""Abandon-rate windows, 72-hour rule, ring time, calling window and retries."""

from __future__ import annotations

import datetime as dt

from callcenter.dialer.compliance import (
    DAY,
    HOUR,
    AbandonLedger,
    CallingWindow,
    Outcome,
    RedialGuard,
    RetryPolicy,
    may_hang_up_unanswered,
    ring_timeout,
)


def test_abandon_rate_rolls_over_24h_and_30d() -> None:
    ledger = AbandonLedger()
    for i in range(100):
        ledger.record(i * 10.0, abandoned=i < 5)
    assert ledger.rate_24h(1000.0) == 0.05
    assert not ledger.within(1000.0, 0.03)
    later = 2 * DAY
    for i in range(100):
        ledger.record(later + i, abandoned=False)
    assert ledger.rate_24h(later + 100) == 0.0  # the bad day has left the 24 h window
    assert ledger.rate_30d(later + 100) == 5 / 200
    assert ledger.counts_30d(31 * DAY + later) == (0, 0)


def test_ledger_memory_is_bounded() -> None:
    ledger = AbandonLedger()
    for i in range(5000):
        ledger.record(i * HOUR, abandoned=False)
    assert len(ledger._hours._q) <= 25 and len(ledger._days._q) <= 31


def test_72_hour_rule_for_predictive_only() -> None:
    guard = RedialGuard()
    guard.record_abandon("+48221234567", 0.0)
    assert not guard.may_dial("+48221234567", 71 * HOUR)
    assert guard.may_dial("+48221234567", 71 * HOUR, predictive=False)
    assert guard.may_dial("+48221234567", 72 * HOUR)
    assert guard.may_dial("+48600700800", 1.0)


def test_minimum_ring_time() -> None:
    assert ring_timeout(10.0) == 15.0 and ring_timeout(26.0) == 26.0
    assert not may_hang_up_unanswered(14.9) and may_hang_up_unanswered(15.0)


def test_calling_window_in_contact_time_zone() -> None:
    window = CallingWindow(holidays=frozenset({dt.date(2025, 11, 11)}))
    utc = dt.UTC
    # Monday 2025-11-10 07:30 UTC = 08:30 Warsaw, 07:30 London
    monday = dt.datetime(2025, 11, 10, 7, 30, tzinfo=utc)
    assert window.may_call("Europe/Warsaw", monday)
    assert not window.may_call("Europe/London", monday)
    assert not window.may_call("Europe/Warsaw", dt.datetime(2025, 11, 10, 20, 0, tzinfo=utc))
    assert not window.may_call("Europe/Warsaw", dt.datetime(2025, 11, 11, 12, 0, tzinfo=utc))
    assert not window.may_call("Europe/Warsaw", dt.datetime(2025, 11, 16, 12, 0, tzinfo=utc))
    assert window.may_call("Europe/Warsaw", dt.datetime(2025, 11, 15, 12, 0, tzinfo=utc))


def test_retries_per_outcome() -> None:
    policy = RetryPolicy()
    assert policy.next_attempt(Outcome.BUSY, 0, 0.0) == 15 * 60.0
    assert policy.next_attempt(Outcome.BUSY, 3, 0.0) is None
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, 100.0) == 100.0 + 2 * HOUR
    assert policy.next_attempt(Outcome.ABANDONED, 0, 0.0) == 72 * HOUR
    assert policy.next_attempt(Outcome.ABANDONED, 1, 0.0) is None


def test_failed_outcome_of_an_unanswered_dial() -> None:
    from callcenter.dialer.compliance import failed_outcome

    assert failed_outcome(486, 3.0) == "busy" and failed_outcome(603, 0.5) == "busy"
    assert failed_outcome(487, 15.0) == "no-answer" and failed_outcome(480, 2.0) == "no-answer"
    assert failed_outcome(408, 15.0) == "no-answer"  # rang its 15 s
    assert failed_outcome(408, 3.0) == "failed"  # a timeout before the phone could ring long
    assert failed_outcome(503, 0.1) == "failed"
