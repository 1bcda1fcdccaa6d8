"""Per-queue auto-pause: each queue's own ``auto_pause_after``, misses counted per queue."""

from __future__ import annotations

import random

import pytest

from acd import actions as A
from acd import events as E
from acd.config import ENGINE_DEFAULT, AgentConfig, InvalidSetting, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.states import AgentState


def engine(*queues: QueueConfig, default: int | None = 3) -> AcdEngine:
    agent = AgentConfig(id="a1", queues=tuple(Membership(queue=q.name) for q in queues),
                        logged_in=True, registered=True)
    return AcdEngine(queues=list(queues), agents=[agent], rng=random.Random(0),
                     auto_pause_after=default)


class Clock:
    """Injected time: each miss is a fresh call a little later."""

    def __init__(self) -> None:
        self.now = 0.0
        self.n = 0

    def miss(self, e: AcdEngine, queue: str, reason: E.RingFailure = E.RingFailure.NO_ANSWER,
             ) -> list[A.Action]:
        self.n += 1
        call = f"c{self.n}"
        self.now += 10.0
        e.handle(E.CallArrived(call, queue), self.now)
        out = e.handle(E.RingFailed("a1", call, reason), self.now + 5.0)
        e.handle(E.CallerHungUp(call), self.now + 6.0)
        return out

    def answer(self, e: AcdEngine, queue: str) -> None:
        self.n += 1
        call = f"c{self.n}"
        self.now += 10.0
        e.handle(E.CallArrived(call, queue), self.now)
        e.handle(E.RingAnswered("a1", call), self.now + 1.0)
        e.handle(E.CallEnded(call, E.HungUpBy.CALLER), self.now + 2.0)


def paused(e: AcdEngine) -> bool:
    return e.agent_state("a1") is AgentState.PAUSED


def test_each_queue_pauses_after_its_own_count() -> None:
    e = engine(QueueConfig(name="strict", auto_pause_after=1),
               QueueConfig(name="lax", auto_pause_after=3))
    clock = Clock()
    clock.miss(e, "lax")
    clock.miss(e, "lax")
    assert not paused(e)
    assert e.agent_stats("a1", clock.now).missed_in_row == 2
    out = clock.miss(e, "strict")  # one miss of the strict queue's rings is enough
    assert paused(e)
    change = [a for a in out if isinstance(a, A.AgentStateChanged)][-1]
    assert (change.new, change.reason) == (AgentState.PAUSED, "auto")
    assert e.agent_stats("a1", clock.now).missed_in_row == 0


def test_misses_of_one_queue_do_not_count_for_another() -> None:
    e = engine(QueueConfig(name="q1", auto_pause_after=2),
               QueueConfig(name="q2", auto_pause_after=2))
    clock = Clock()
    clock.miss(e, "q1")
    clock.miss(e, "q2")
    assert not paused(e)  # one of each: neither queue reached its two
    clock.miss(e, "q2")
    assert paused(e)


def test_null_never_pauses_and_engine_default_applies_otherwise() -> None:
    e = engine(QueueConfig(name="never", auto_pause_after=None), QueueConfig(name="dflt"),
               default=2)
    assert (e.auto_pause_after("never"), e.auto_pause_after("dflt")) == (None, 2)
    clock = Clock()
    for _ in range(5):
        clock.miss(e, "never")
    assert not paused(e)
    assert e.agent_stats("a1", clock.now).missed_in_row == 5
    clock.miss(e, "dflt")
    assert not paused(e)
    clock.miss(e, "dflt")
    assert paused(e)


def test_an_answer_or_an_unpause_starts_the_counts_afresh() -> None:
    e = engine(QueueConfig(name="q1", auto_pause_after=2),
               QueueConfig(name="q2", auto_pause_after=3))
    clock = Clock()
    clock.miss(e, "q1")
    clock.answer(e, "q2")  # the agent is there after all
    clock.miss(e, "q1")
    assert not paused(e)
    clock.miss(e, "q1")
    assert paused(e)
    e.handle(E.AgentUnpaused("a1"), clock.now + 10)
    clock.now += 10
    clock.miss(e, "q1")
    assert not paused(e)


def test_busy_is_not_a_miss() -> None:
    e = engine(QueueConfig(name="q1", auto_pause_after=1))
    clock = Clock()
    clock.miss(e, "q1", E.RingFailure.BUSY)
    assert not paused(e)
    clock.miss(e, "q1", E.RingFailure.REJECTED)
    assert paused(e)


def test_set_auto_pause_after_changes_a_queue_at_run_time() -> None:
    e = engine(QueueConfig(name="q1"), default=None)
    clock = Clock()
    clock.miss(e, "q1")
    assert not paused(e)
    e.set_auto_pause_after("q1", 2)
    clock.miss(e, "q1")  # the miss before the change still counts
    assert paused(e)
    with pytest.raises(InvalidSetting):
        e.set_auto_pause_after("q1", 0)


def test_config_rejects_a_zero_threshold() -> None:
    with pytest.raises(InvalidSetting, match="auto_pause_after"):
        QueueConfig(name="q", auto_pause_after=0)
    assert QueueConfig(name="q").auto_pause_after is ENGINE_DEFAULT
