"""The live ACD's "today": figures of the server's local day, kept across a restart.

The engine counts from its start; ``GET /api/queues`` and the wallboard show its figures. This
keeps them to the local day of the server's clock (``ivr.clock.ServerClock``, so ``serve
--clock`` moves the day too):

- ``load()``, right after the runner started, adds what the store's ``queue_log`` (and the
  wrap-up periods of ``agent_states``) hold for today so far (``acd.today.fold``);
- ``run()`` resets the engine's statistics at each local midnight.

Store rows carry unix time; the start of today in that time is "now" minus the seconds since
the clock's local midnight, which also holds when ``--clock`` runs apart from real time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from acd.today import DayTotals, DayWatch, fold, today_since
from callcenter.report.stats import has_table

if TYPE_CHECKING:
    from acd import AcdEngine
    from ivr.clock import ServerClock

log = structlog.get_logger("acd")

MAX_SLEEP = 300.0  # re-read the clock at least this often (the system time may be changed)


def load_day(
    con: sqlite3.Connection, t0: float, t1: float, sl_seconds: Mapping[str, float]
) -> DayTotals:
    """Totals of the queue log rows (and agent wrap-ups) with ``t0 <= ts <= t1``."""
    queue_log: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    if has_table(con, "queue_log"):
        queue_log = [
            {"ts": ts, "queue": q, "event": e, "agent": a, "wait": w, "talk": t, "detail": d}
            for ts, q, e, a, w, t, d in con.execute(
                "SELECT ts, queue, event, agent, wait, talk, detail FROM queue_log "
                "WHERE ts >= ? AND ts <= ? ORDER BY ts, id", (t0, t1))
        ]
    if has_table(con, "agent_states"):
        states = [
            {"ts": ts, "agent": a, "new": new}
            for ts, a, new in con.execute(
                "SELECT ts, agent, new FROM agent_states WHERE ts >= ? AND ts <= ? "
                "ORDER BY ts, id", (t0, t1))
        ]
    return fold(queue_log, states, sl_target=sl_seconds)


class LiveAcd(Protocol):
    """What today's figures touch of the live ACD (the ``QueueRunner``, above this layer)."""

    engine: AcdEngine | None

    def now(self) -> float: ...


class TodayFigures:
    """See the module docstring. ``wall``: unix time (injectable for tests)."""

    def __init__(
        self, *, runner: LiveAcd, con: sqlite3.Connection, clock: ServerClock,
        sl_seconds: Mapping[str, float], wall: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.con = con
        self.clock = clock
        self.sl_seconds = dict(sl_seconds)
        self.wall = wall
        self.watch = DayWatch(clock.now())

    def window(self) -> tuple[float, float]:
        """Today so far in unix time: (local midnight, now)."""
        wall = self.wall()
        return wall - today_since(self.clock.now()), wall

    def load(self) -> DayTotals:
        """Add today's figures from the store to the (just started) engine."""
        engine = self.runner.engine
        assert engine is not None, "start the QueueRunner first"
        self.watch = DayWatch(self.clock.now())
        t0, t1 = self.window()
        totals = load_day(self.con, t0, t1, self.sl_seconds)
        engine.add_stats(totals)
        log.info("acd_today_loaded", day=self.watch.day.isoformat(),
                 offered={n: q.offered for n, q in totals.queues.items()})
        return totals

    def roll(self) -> bool:
        """Reset the engine's figures if the local day changed since the last call."""
        engine = self.runner.engine
        if engine is None or not self.watch.roll(self.clock.now()):
            return False
        engine.reset_stats(self.runner.now())
        log.info("acd_day_reset", day=self.watch.day.isoformat())
        return True

    async def run(self) -> None:
        """Reset at each local midnight (a task for the life of the server)."""
        while True:
            delay = DayWatch.seconds_left(self.clock.now())
            await asyncio.sleep(min(delay + 0.05, MAX_SLEEP))
            self.roll()
