"""The ACD engine reconfigured at run time (a config reload): queues and agents come and go,
settings and memberships change, and nothing waiting or in progress is lost."""

from __future__ import annotations

import random
from typing import Any

import pytest

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine, AcdError
from acd.states import AgentState


def engine(*agents: str, queues: tuple[str, ...] = ("sales",)) -> AcdEngine:
    return AcdEngine(
        queues=[QueueConfig(name=q) for q in queues],
        agents=[AgentConfig(id=a, queues=(Membership(queue="sales"),), logged_in=True,
                            registered=True) for a in agents],
        rng=random.Random(1))


def of(actions: list[A.Action], cls: type) -> list[Any]:
    return [a for a in actions if isinstance(a, cls)]


def rung(actions: list[A.Action]) -> list[tuple[str, str]]:
    return [(a.agent, a.call) for a in of(actions, A.RingAgent)]


def test_an_added_agent_takes_the_first_waiting_call_and_the_order_is_kept() -> None:
    e = engine()
    for i, t in enumerate((0.0, 1.0, 2.0)):
        e.handle(E.CallArrived(f"c{i}", "sales"), t)
    out = e.handle(E.AgentAdded(AgentConfig(id="new", queues=(Membership(queue="sales"),),
                                            logged_in=True, registered=True)), 3.0)
    assert rung(out) == [("new", "c0")]
    assert e.agent_ids == ["new"] and e.waiting("sales") == ["c0", "c1", "c2"]
    assert [(s.old, s.new) for s in of(out, A.AgentStateChanged)][0] == (
        AgentState.LOGGED_OUT, AgentState.AVAILABLE)
    assert of(e.handle(E.AgentAdded(AgentConfig(id="new")), 4.0), A.Ignored)


def test_a_removed_agent_finishes_its_call_then_is_logged_out_and_offered_nothing() -> None:
    e = engine("a1", "a2")
    out = e.handle(E.CallArrived("c1", "sales"), 0.0)
    (agent, _), = rung(out)
    e.handle(E.RingAnswered(agent, "c1"), 1.0)
    out = e.handle(E.AgentRemoved(agent), 2.0)
    assert not of(out, A.DropAgentLeg) and not of(out, A.CancelRing)
    assert e.agent_state(agent) is AgentState.ON_CALL and agent not in e.agent_ids
    assert agent not in e.members("sales")
    out = e.handle(E.CallEnded("c1", E.HungUpBy.CALLER), 30.0)
    assert e.agent_state(agent) is AgentState.LOGGED_OUT
    assert of(e.handle(E.AgentLoggedIn(agent), 31.0), A.Ignored)
    assert e.agent_state(agent) is AgentState.LOGGED_OUT
    other = "a2" if agent == "a1" else "a1"
    assert rung(e.handle(E.CallArrived("c2", "sales"), 32.0)) == [(other, "c2")]
    # back in the file: a member again
    e.handle(E.AgentAdded(AgentConfig(id=agent, queues=(Membership(queue="sales"),),
                                      logged_in=True)), 33.0)
    assert agent in e.agent_ids and e.agent_state(agent) is AgentState.AVAILABLE


def test_a_removed_ringing_agent_stops_ringing_and_the_call_goes_to_another() -> None:
    e = engine("a1", "a2")
    (agent, _), = rung(e.handle(E.CallArrived("c1", "sales"), 0.0))
    out = e.handle(E.AgentRemoved(agent), 1.0)
    assert [(c.agent, c.call) for c in of(out, A.CancelRing)] == [(agent, "c1")]
    assert rung(out) == [("a2" if agent == "a1" else "a1", "c1")]
    assert e.agent_state(agent) is AgentState.LOGGED_OUT


def test_strategy_and_settings_change_while_callers_keep_their_places() -> None:
    e = engine()
    for i in range(3):
        e.handle(E.CallArrived(f"c{i}", "sales"), float(i))
    e.handle(E.QueueConfigured(QueueConfig(name="sales", strategy="round-robin",
                                           ring_timeout=7.0)), 5.0)
    assert e.waiting("sales") == ["c0", "c1", "c2"]
    out = e.handle(E.AgentAdded(AgentConfig(id="x", queues=(Membership(queue="sales"),),
                                            logged_in=True, registered=True)), 6.0)
    (ring,) = of(out, A.RingAgent)
    assert (ring.call, ring.timeout) == ("c0", 7.0)


def test_a_new_queue_takes_calls_and_a_removed_one_serves_its_callers_first() -> None:
    e = engine("a1")
    e.handle(E.QueueConfigured(QueueConfig(name="vip")), 0.0)
    assert e.queue_names == ["sales", "vip"]
    e.handle(E.CallArrived("c1", "vip"), 1.0)
    e.handle(E.QueueRemoved("vip"), 2.0)
    assert e.queue_names == ["sales"] and e.waiting("vip") == ["c1"]
    out = e.handle(E.MemberAdded("a1", "vip"), 3.0)
    assert rung(out) == [("a1", "c1")]
    e.handle(E.RingAnswered("a1", "c1"), 4.0)
    e.handle(E.CallEnded("c1"), 9.0)
    assert "vip" not in e.queue_names and e.agent_state("a1") is AgentState.AVAILABLE
    with pytest.raises(AcdError, match="vip"):
        e.handle(E.CallArrived("c2", "vip"), 10.0)


def test_penalty_and_skills_change_who_is_offered() -> None:
    e = engine("a1", "a2")
    e.handle(E.MemberChanged("a1", "sales", penalty=5), 0.0)
    assert rung(e.handle(E.CallArrived("c1", "sales"), 1.0)) == [("a2", "c1")]
    e.handle(E.AgentSkills("a1", {"de": 50}), 2.0)
    e.handle(E.MemberChanged("a1", "sales", penalty=0), 2.0)
    out = e.handle(E.CallArrived("c2", "sales", skills={"de": 30}), 3.0)
    assert rung(out) == [("a1", "c2")]
