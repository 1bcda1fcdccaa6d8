"""Each routing strategy picks the agent its name promises."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.records import AgentRecord, CallRecord, QueueRecord
from acd.strategies import STRATEGIES, Strategy, get_strategy, register


def setup(strategy: str, n: int = 3, seed: int = 1) -> AcdEngine:
    agents = [AgentConfig(id=f"a{i + 1}", queues=(Membership(queue="q"),), logged_in=True,
                          registered=True) for i in range(n)]
    return AcdEngine(queues=[QueueConfig(name="q", strategy=strategy)], agents=agents,
                     rng=random.Random(seed))


def serve(e: AcdEngine, call: str, now: float, talk: float) -> list[str]:
    """Offer one call; whoever rings answers at once and talks ``talk`` seconds."""
    agents = [a.agent for a in e.handle(E.CallArrived(call, "q"), now)
              if isinstance(a, A.RingAgent)]
    if agents:
        e.handle(E.RingAnswered(agents[0], call), now)
        e.handle(E.CallEnded(call), now + talk)
    return agents


def test_registry_has_every_strategy_of_the_issue() -> None:
    assert set(STRATEGIES) == {"longest-idle-agent", "round-robin", "fewest-calls",
                               "least-talk-time", "ring-all", "linear", "random",
                               "skills-based"}
    with pytest.raises(ValueError, match="known"):
        get_strategy("nope")


def test_longest_idle_agent() -> None:
    e = setup("longest-idle-agent")
    assert serve(e, "c1", 0, 10) == ["a1"]  # all idle since 0: member order breaks the tie
    assert serve(e, "c2", 1, 100) == ["a2"]
    assert serve(e, "c3", 2, 1) == ["a3"]
    # a1 free since 10, a3 since 3, a2 busy until 101: a3 has idled longest
    assert serve(e, "c4", 20, 1) == ["a3"]


def test_round_robin_remembers_where_it_stopped() -> None:
    e = setup("round-robin")
    picks = [serve(e, f"c{i}", i * 10.0, 1)[0] for i in range(5)]
    assert picks == ["a1", "a2", "a3", "a1", "a2"]
    e.handle(E.AgentPaused("a3"), 100)
    assert serve(e, "d", 101, 1) == ["a1"]  # a3 skipped, wraps around


def test_fewest_calls() -> None:
    e = setup("fewest-calls")
    serve(e, "c1", 0, 1)  # a1
    serve(e, "c2", 2, 1)  # a2
    e.handle(E.CallArrived("c3", "q"), 4)  # a3 rings and stays on the call
    e.handle(E.RingAnswered("a3", "c3"), 4)
    e.handle(E.CallEnded("c3"), 5)
    serve(e, "c4", 6, 1)  # a1 (longest idle among 1-call agents)
    assert serve(e, "c5", 8, 1) == ["a2"]


def test_least_talk_time() -> None:
    e = setup("least-talk-time")
    serve(e, "c1", 0, 300)  # a1 talks 300
    serve(e, "c2", 1, 5)  # a2 talks 5
    serve(e, "c3", 2, 50)  # a3 talks 50
    assert serve(e, "c4", 400, 1) == ["a2"]


def test_ring_all() -> None:
    e = setup("ring-all")
    assert sorted(serve(e, "c1", 0, 1)) == ["a1", "a2", "a3"]


def test_linear_is_top_down() -> None:
    e = setup("linear")
    assert [serve(e, f"c{i}", i * 10.0, 1)[0] for i in range(3)] == ["a1", "a1", "a1"]
    e.handle(E.CallArrived("x", "q"), 50)
    assert serve(e, "y", 51, 1) == ["a2"]  # a1 is ringing for x


def test_random_is_seeded_and_spreads() -> None:
    def picks(seed: int) -> list[str]:
        e = setup("random", seed=seed)
        return [serve(e, f"c{i}", i * 10.0, 1)[0] for i in range(300)]

    assert picks(5) == picks(5)
    assert picks(5) != picks(6)
    counts = Counter(picks(5))
    assert set(counts) == {"a1", "a2", "a3"} and min(counts.values()) > 70


def test_skills_based_prefers_the_best_match() -> None:
    agents = [
        AgentConfig(id="low", skills={"en": 2}, queues=(Membership(queue="q"),),
                    logged_in=True, registered=True),
        AgentConfig(id="high", skills={"en": 8}, queues=(Membership(queue="q"),),
                    logged_in=True, registered=True),
        AgentConfig(id="none", queues=(Membership(queue="q"),), logged_in=True,
                    registered=True),
    ]
    e = AcdEngine(queues=[QueueConfig(name="q", strategy="skills-based")], agents=agents)
    out = e.handle(E.CallArrived("c1", "q", skills={"en": 1}), 0)
    assert [a.agent for a in out if isinstance(a, A.RingAgent)] == ["high"]
    out = e.handle(E.CallArrived("c2", "q", skills={"en": 1}), 1)
    assert [a.agent for a in out if isinstance(a, A.RingAgent)] == ["low"]
    out = e.handle(E.CallArrived("c3", "q", skills={"en": 1}), 2)
    assert [a.agent for a in out if isinstance(a, A.RingAgent)] == []  # "none" lacks en


def test_a_strategy_plugs_in_by_the_registry() -> None:
    @register
    class LastMember(Strategy):
        name = "test-last-member"

        def select(self, candidates: list[AgentRecord], call: CallRecord,  # type: ignore[override]
                   queue: QueueRecord, rng: random.Random) -> list[AgentRecord]:
            return [candidates[-1]]

    try:
        assert serve(setup("test-last-member"), "c1", 0, 1) == ["a3"]
    finally:
        del STRATEGIES["test-last-member"]
