"""Callback requests worked by the server: which are due, and what an attempt's outcome does.

A request (``Pending``) waits until its time (``next_at``) while its queue is open; then it
enters the ACD queue as a call with its original entry time (``entered``), so an agent gets it
where the caller would have been answered had they stayed. One attempt rings the agent, then
dials the customer; :func:`after_attempt` says what follows. Times are unix seconds, passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass


class State(enum.StrEnum):
    OPEN = "open"  #: waiting for its time, its queue's hours or an agent
    DIALING = "dialing"  #: an attempt is under way
    DONE = "done"  #: the customer answered and was bridged
    FAILED = "failed"  #: not reached within the retries
    CANCELLED = "cancelled"


FINAL = frozenset({State.DONE, State.FAILED, State.CANCELLED})


class Outcome(enum.StrEnum):
    """How one attempt to reach the customer ended."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    #: the agent left before the customer answered, or the server stopped: not counted
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    queue: str
    entered: float  #: when the caller entered the queue (or booked): the request's place
    next_at: float  #: not before this time


@dataclass(frozen=True, slots=True)
class Next:
    """The request's state after an attempt; ``next_at`` for an ``open`` one."""

    state: State
    attempts: int
    next_at: float | None = None


def due(pending: Iterable[Pending], now: float, is_open: Callable[[str], bool],
        queued: Collection[int] = ()) -> list[Pending]:
    """The requests to queue now, by entry time: time come, queue open, not queued yet."""
    ready = [p for p in pending if p.next_at <= now and p.id not in queued and is_open(p.queue)]
    return sorted(ready, key=lambda p: (p.entered, p.id))


def after_attempt(outcome: Outcome, attempts: int, *, retries: int, retry_delay: float,
                  now: float) -> Next:
    """``attempts``: attempts counted so far, this one included. Answered is done; busy, no
    answer or failed retry after ``retry_delay`` until ``retries`` more tries were made; an
    interrupted attempt is given back and the request queued again at once."""
    if outcome is Outcome.ANSWERED:
        return Next(State.DONE, attempts)
    if outcome is Outcome.INTERRUPTED:
        return Next(State.OPEN, max(0, attempts - 1), now)
    if attempts > retries:
        return Next(State.FAILED, attempts)
    return Next(State.OPEN, attempts, now + retry_delay)


def sip_outcome(status: int, answered: bool) -> Outcome:
    """An attempt's outcome from the customer leg's final SIP status."""
    if answered:
        return Outcome.ANSWERED
    if status in (486, 600):
        return Outcome.BUSY
    if status in (0, 408, 480, 487):
        return Outcome.NO_ANSWER
    return Outcome.FAILED
