"""Callback requests: which are due, in which order, and the retry schedule."""

from __future__ import annotations

from acd.callbacks import Next, Outcome, Pending, State, after_attempt, due, sip_outcome


def test_due_requests_come_by_entry_time_once_their_time_and_hours_come() -> None:
    rows = [Pending(1, "sales", entered=50.0, next_at=0.0),
            Pending(2, "sales", entered=10.0, next_at=0.0),
            Pending(3, "sales", entered=5.0, next_at=200.0),  # booked for later
            Pending(4, "support", entered=1.0, next_at=0.0),  # its queue is closed
            Pending(5, "sales", entered=20.0, next_at=0.0)]  # already in the queue
    got = due(rows, 100.0, lambda q: q == "sales", queued={5})
    assert [p.id for p in got] == [2, 1]
    assert [p.id for p in due(rows, 200.0, lambda q: True, queued={5})] == [4, 3, 2, 1]


def test_retries_then_failed_answered_is_done_interrupted_is_given_back() -> None:
    kw = {"retries": 2, "retry_delay": 600.0, "now": 1000.0}
    assert after_attempt(Outcome.ANSWERED, 1, **kw) == Next(State.DONE, 1)
    assert after_attempt(Outcome.BUSY, 1, **kw) == Next(State.OPEN, 1, 1600.0)
    assert after_attempt(Outcome.NO_ANSWER, 2, **kw) == Next(State.OPEN, 2, 1600.0)
    assert after_attempt(Outcome.FAILED, 3, **kw) == Next(State.FAILED, 3)
    assert after_attempt(Outcome.INTERRUPTED, 3, **kw) == Next(State.OPEN, 2, 1000.0)
    assert after_attempt(Outcome.BUSY, 1, retries=0, retry_delay=1, now=0) == Next(
        State.FAILED, 1)


def test_sip_outcome() -> None:
    assert sip_outcome(200, True) is Outcome.ANSWERED
    assert sip_outcome(486, False) is Outcome.BUSY
    assert sip_outcome(480, False) is Outcome.NO_ANSWER
    assert sip_outcome(0, False) is Outcome.NO_ANSWER
    assert sip_outcome(503, False) is Outcome.FAILED
