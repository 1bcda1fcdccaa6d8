"""Today's figures: the local day's bounds and the queue log folded into the engine's totals.

The engine counts from its start or its last ``reset_stats``. To show figures of the server's
local day, the live side resets it at local midnight (:class:`DayWatch` says when) and, after
a restart, adds what the queue log already holds for today (:func:`fold`, then
``AcdEngine.add_stats``). The fold counts exactly what the engine counts for the same log
entries, so a restart does not change a figure.

Local times are aware datetimes (``ivr.clock.ServerClock.now()``); differences between them go
through UTC, so a day of 23 or 25 hours (a DST switch) is measured correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any


def _midnight(day: date, like: datetime) -> datetime:
    """The first moment of ``day`` in ``like``'s zone (round-tripped through UTC, so a zone
    whose clocks skip midnight gives the first existing instant)."""
    local = datetime.combine(day, time(), tzinfo=like.tzinfo)
    return local.astimezone(UTC).astimezone(like.tzinfo) if like.tzinfo is not None else local


def day_start(now: datetime) -> datetime:
    """Local midnight that began ``now``'s day (aware in, aware out)."""
    return _midnight(now.date(), now)


def next_day_start(now: datetime) -> datetime:
    """Local midnight that ends ``now``'s day."""
    return _midnight(now.date() + timedelta(days=1), now)


def today_since(now: datetime) -> float:
    """Seconds elapsed today at ``now`` (real seconds, also across a DST switch)."""
    return now.timestamp() - day_start(now).timestamp()


class DayWatch:
    """Notices the local day changing. ``roll(now)`` is True once per new day."""

    def __init__(self, now: datetime) -> None:
        self.day = now.date()

    def roll(self, now: datetime) -> bool:
        """True if ``now`` is on a later day than the one watched so far (and watch it)."""
        if now.date() > self.day:
            self.day = now.date()
            return True
        return False

    @staticmethod
    def seconds_left(now: datetime) -> float:
        """Real seconds from ``now`` to the next local midnight."""
        return next_day_start(now).timestamp() - now.timestamp()


@dataclass(slots=True)
class QueueTotals:
    """The engine's counters of one queue (``acd.records.QueueRecord`` extends this)."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    timed_out: int = 0
    exited_empty: int = 0
    callbacks: int = 0
    wait_answered: float = 0.0
    completed: int = 0
    talk_sum: float = 0.0
    wrap_sum: float = 0.0
    wrap_count: int = 0


QUEUE_COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(QueueTotals))


@dataclass(slots=True)
class AgentTotals:
    calls: int = 0
    talk_time: float = 0.0


@dataclass(slots=True)
class DayTotals:
    queues: dict[str, QueueTotals] = field(default_factory=dict)
    agents: dict[str, AgentTotals] = field(default_factory=dict)


def fold(
    queue_log: Iterable[Mapping[str, Any]],
    agent_states: Iterable[Mapping[str, Any]] = (),
    *,
    sl_target: Mapping[str, float] | None = None,
    default_sl: float = 20.0,
) -> DayTotals:
    """Queue log rows (``ts, queue, event, agent, wait, talk, detail``) and agent state rows
    (``ts, agent, new``), each in time order, into the totals the engine would have counted.

    A call that joined a queue nobody staffed has no ``enter`` row, only ``exit_empty`` with
    detail ``join_empty``: it is offered all the same. A wrap-up period (agent state rows) counts
    for the queue of the agent's last completed or transferred call before it.
    """
    sl_target = sl_target or {}
    out = DayTotals()
    log = sorted(queue_log, key=lambda r: r["ts"])
    states = sorted(agent_states, key=lambda r: r["ts"])
    last_queue: dict[str, str] = {}  # agent -> queue of its last finished call
    wrap_from: dict[str, tuple[float, str]] = {}  # agent -> (start, queue) of an open wrap-up
    i = 0
    for row in log:
        ts = row["ts"]
        while i < len(states) and states[i]["ts"] < ts:  # a wrap-up follows its complete
            _state(states[i], out, last_queue, wrap_from)
            i += 1
        _entry(row, out, sl_target, default_sl, last_queue)
    for row in states[i:]:
        _state(row, out, last_queue, wrap_from)
    return out


def _entry(row: Mapping[str, Any], out: DayTotals, sl_target: Mapping[str, float],
           default_sl: float, last_queue: dict[str, str]) -> None:
    name = row["queue"]
    q = out.queues.setdefault(name, QueueTotals())
    event = row["event"]
    wait = row.get("wait") or 0.0
    agent = row.get("agent")
    if event == "enter":
        q.offered += 1
    elif event == "connect":
        q.answered += 1
        q.wait_answered += wait
        if wait <= sl_target.get(name, default_sl):
            q.answered_in_sl += 1
    elif event in ("complete", "transfer", "attendedtransfer"):
        talk = row.get("talk") or 0.0
        q.completed += 1
        q.talk_sum += talk
        if agent:
            a = out.agents.setdefault(agent, AgentTotals())
            a.calls += 1
            a.talk_time += talk
            last_queue[agent] = name
    elif event == "abandon":
        q.abandoned += 1
    elif event == "timeout":
        q.timed_out += 1
    elif event == "exit_empty":
        q.exited_empty += 1
        if row.get("detail") == "join_empty":
            q.offered += 1
    elif event == "callback":
        q.callbacks += 1


def _state(row: Mapping[str, Any], out: DayTotals, last_queue: dict[str, str],
           wrap_from: dict[str, tuple[float, str]]) -> None:
    agent = row["agent"]
    open_wrap = wrap_from.pop(agent, None)
    if open_wrap is not None:
        start, name = open_wrap
        q = out.queues.setdefault(name, QueueTotals())
        q.wrap_sum += row["ts"] - start
        q.wrap_count += 1
    if row["new"] == "wrap_up" and agent in last_queue:
        wrap_from[agent] = (row["ts"], last_queue[agent])
