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
from acd.strategies import (
    ALIASES,
    STRATEGIES,
    Strategy,
    canonical_strategy,
    get_strategy,
    register,
)


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


# Asterisk app_queue and FreeSWITCH mod_callcenter names with the same choice as ours
SAME_AS = {
    "ringall": "ring-all", "leastrecent": "longest-idle-agent", "fewestcalls": "fewest-calls",
    "rrmemory": "round-robin", "rrordered": "round-robin", "top-down": "linear",
    "agent-with-least-talk-time": "least-talk-time", "agent-with-fewest-calls": "fewest-calls",
    "skills": "skills-based",
}


@pytest.mark.parametrize(("alias", "ours"), sorted(SAME_AS.items()))
def test_alias_names_our_strategy(alias: str, ours: str) -> None:
    assert canonical_strategy(alias) == ours
    assert canonical_strategy(alias.upper()) == ours  # Asterisk compares without case
    assert get_strategy(alias) is STRATEGIES[ours]


def test_every_alias_is_tested_and_names_shared_with_asterisk_or_freeswitch_are_ours() -> None:
    assert ALIASES == SAME_AS
    for name in ("random", "linear", "ring-all", "longest-idle-agent", "round-robin"):
        assert canonical_strategy(name) == name


@pytest.mark.parametrize(("name", "why"), [("wrandom", "weighted by penalty"),
                                           ("ring-progressively", "one more agent"),
                                           ("sequentially-by-agent-order", "tier-then-position"),
                                           ("nope", "")])
def test_names_without_an_equivalent_are_refused_with_the_accepted_ones(name: str,
                                                                        why: str) -> None:
    with pytest.raises(ValueError) as info:
        canonical_strategy(name)
    message = str(info.value)
    assert f"unknown strategy {name!r}" in message and why in message
    assert all(n in message for n in [*STRATEGIES, *ALIASES])


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
