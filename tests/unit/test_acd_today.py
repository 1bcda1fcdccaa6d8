"""Today's ACD figures: local day bounds, the queue log folded back into the engine's totals,
the reset at local midnight and the load from the store after a restart (injected clocks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.today import DayWatch, day_start, fold, next_day_start, today_since
from callcenter.report.today import TodayFigures
from callcenter.store.db import Store
from ivr.clock import ServerClock

WAW = ZoneInfo("Europe/Warsaw")
QUEUES = [QueueConfig(name="sales", ring_timeout=60.0, wrapup=5.0, sl_seconds=20.0, max_wait=100.0,
                      overflow="support"),
          QueueConfig(name="support", join_empty=False)]


def new_engine() -> AcdEngine:
    agents = [AgentConfig(id=f"a{i}", queues=(Membership(queue="sales"),), logged_in=True,
                          registered=True) for i in (1, 2)]
    agents.append(AgentConfig(id="s1", queues=(Membership(queue="support"),)))
    return AcdEngine(queues=QUEUES, agents=agents, rng=random.Random(3))


# ---------------------------------------------------------------------- day bounds


def test_day_bounds_in_local_time() -> None:
    now = datetime(2026, 11, 23, 23, 15, tzinfo=WAW)
    assert day_start(now) == datetime(2026, 11, 23, tzinfo=WAW)
    assert next_day_start(now) == datetime(2026, 11, 24, tzinfo=WAW)
    assert today_since(now) == 23.25 * 3600
    assert DayWatch.seconds_left(now) == 45 * 60


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 29), 23), ((2026, 10, 25), 25)])
def test_a_dst_day_has_its_real_length(day: tuple[int, int, int], hours: int) -> None:
    evening = datetime(*day, 22, 0, tzinfo=WAW)
    assert today_since(evening) == (hours - 2) * 3600
    assert DayWatch.seconds_left(evening) == 2 * 3600


def test_day_watch_rolls_once_per_new_day() -> None:
    watch = DayWatch(datetime(2026, 11, 23, 23, 59, 59, tzinfo=WAW))
    assert not watch.roll(datetime(2026, 11, 23, 23, 59, 59, 900000, tzinfo=WAW))
    assert watch.roll(datetime(2026, 11, 24, 0, 0, 0, 10, tzinfo=WAW))
    assert not watch.roll(datetime(2026, 11, 24, 0, 0, 1, tzinfo=WAW))
    assert watch.roll(datetime(2026, 11, 26, 9, 0, tzinfo=WAW))  # the server slept two days


# ---------------------------------------------------------------------- the fold


def drive(e: AcdEngine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A day's mix: answered in and out of SL, a transfer, an abandon, a timeout with overflow,
    a join-empty exit and a callback request; returns the queue log and agent state rows."""
    script: list[tuple[float, E.Event]] = [
        (0, E.CallArrived("c1", "sales")), (2, E.RingAnswered("a1", "c1")),
        (1, E.CallArrived("c2", "sales")), (30, E.RingAnswered("a2", "c2")),
        (40, E.CallEnded("c1", E.HungUpBy.CALLER)),
        (45, E.WrapUpEnded("a1")),
        (50, E.CallArrived("c3", "sales")), (53, E.RingAnswered("a1", "c3")),
        (60, E.CallTransferred("c2", "2001")),
        (70, E.CallArrived("c4", "sales")), (71, E.RingAnswered("a2", "c4")),
        (80, E.CallArrived("c5", "sales")), (81, E.KeyPressed("c5", "1")),
        (90, E.CallArrived("c6", "sales")), (95, E.CallerHungUp("c6")),
        (100, E.CallArrived("c7", "sales")),
        (200, E.Tick()),  # c7 times out -> support, nobody staffed there: overflow entry
        (210, E.CallArrived("c8", "support")),  # join_empty: false
        (300, E.CallEnded("c3", E.HungUpBy.AGENT)), (400, E.CallEnded("c4", E.HungUpBy.AGENT)),
        (500, E.Tick()),
    ]
    log: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    for t, event in sorted(script, key=lambda x: x[0]):
        for a in e.handle(event, t):
            if isinstance(a, A.QueueLogEntry):
                log.append({"ts": a.time, "queue": a.queue, "event": a.event.value,
                            "agent": a.agent, "wait": a.wait, "talk": a.talk,
                            "detail": a.detail})
            elif isinstance(a, A.AgentStateChanged):
                states.append({"ts": a.time, "agent": a.agent, "new": a.new.value})
    return log, states


def figures(e: AcdEngine, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in e.queue_names:
        s = e.stats(name, now, agents=False)
        out[name] = (s.offered, s.answered, s.answered_within_target, s.abandoned, s.timed_out,
                     s.exited_empty, s.callbacks, s.service_level, s.asa, s.aht)
    for agent in e.agent_ids:
        a = e.agent_stats(agent, now)
        out[agent] = (a.calls, a.talk_time)
    return out


def test_the_fold_gives_back_what_the_engine_counted() -> None:
    live = new_engine()
    log, states = drive(live)
    expected = figures(live, 500.0)
    assert expected["sales"][:7] == (7, 4, 3, 1, 1, 0, 1)  # the day's mix as planned
    assert expected["support"][:6] == (2, 0, 0, 0, 0, 1)
    assert expected["a1"][0] == 2 and expected["a2"][0] == 2

    restarted = new_engine()
    restarted.add_stats(fold(log, states, sl_target={"sales": 20.0, "support": 20.0}))
    got = figures(restarted, 500.0)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_reset_then_new_calls_count_from_zero() -> None:
    e = new_engine()
    drive(e)
    e.reset_stats(500.0)
    assert figures(e, 500.0)["sales"] == (0, 0, 0, 0, 0, 0, 0, None, None, None)
    e.handle(E.CallArrived("n1", "sales"), 510.0)
    assert e.stats("sales", 510.0).offered == 1


# ---------------------------------------------------------------------- the live side


class Mono:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeRunner:
    engine: AcdEngine
    mono: Mono

    def now(self) -> float:
        return self.mono.t


def test_load_after_restart_and_reset_at_local_midnight(tmp_path: Path) -> None:
    """The store holds yesterday's and today's rows; the restarted server counts today's only
    and starts again from zero at the clock's midnight (the clock runs apart from unix time)."""
    mono = Mono()
    clock = ServerClock(datetime(2026, 11, 23, 23, 0), monotonic=mono)  # 23:00 in Warsaw
    wall0 = 1_000_000.0  # unix time "now"; local midnight was 23 h before it
    store = Store(tmp_path / "cc.db")
    midnight = wall0 - 23 * 3600
    rows = [(midnight - 60, "enter", None, None), (midnight - 50, "abandon", None, 10.0),
            (midnight + 60, "enter", None, None), (midnight + 65, "connect", "a1", 5.0),
            (midnight + 70, "enter", None, None), (midnight + 100, "connect", "a2", 30.0),
            (midnight + 200, "complete", "a1", 5.0)]
    for ts, event, agent, wait in rows:
        store.log_queue(ts=ts, queue="sales", call_id=f"x{ts}", event=event, agent=agent,
                        wait=wait, talk=135.0 if event == "complete" else None)
    e = new_engine()
    today = TodayFigures(runner=FakeRunner(e, mono), con=store.db.conn,  # type: ignore[arg-type]
                         clock=clock, sl_seconds={"sales": 20.0},
                         wall=lambda: wall0 + mono.t)
    assert today.window() == pytest.approx((midnight, wall0))
    today.load()
    s = e.stats("sales", 0.0)
    assert (s.offered, s.answered, s.answered_within_target, s.abandoned) == (2, 2, 1, 0)
    assert e.agent_stats("a1", 0.0).calls == 1

    mono.t = 3599.0  # 23:59:59
    assert not today.roll()
    assert e.stats("sales", mono.t).offered == 2
    mono.t = 3600.5  # 00:00:00.5 the next day
    assert today.roll()
    s = e.stats("sales", mono.t)
    assert (s.offered, s.answered, e.agent_stats("a1", mono.t).calls) == (0, 0, 0)
    assert not today.roll()
    store.close()
