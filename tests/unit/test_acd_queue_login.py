"""Per-queue log-in and log-out (Asterisk's QueueAdd/QueueRemove) and the agent rows of the
queue log (addmember, removemember, pause with its reason, unpause)."""

from __future__ import annotations

import random

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.states import AgentState


def engine() -> AcdEngine:
    queues = [QueueConfig(name="sales"), QueueConfig(name="support")]
    agent = AgentConfig(id="a1", queues=(Membership(queue="sales"), Membership(queue="support")),
                        registered=True)
    return AcdEngine(queues=queues, agents=[agent], rng=random.Random(1))


def agent_log(actions: list[A.Action]) -> list[tuple[str, str, str]]:
    return [(a.event.value, a.queue, a.detail) for a in actions
            if isinstance(a, A.QueueLogEntry) and a.call == "NONE"]


def rung(actions: list[A.Action]) -> list[str]:
    return [a.call for a in actions if isinstance(a, A.RingAgent)]


def test_log_in_to_one_queue_only_takes_its_calls() -> None:
    e = engine()
    out = e.handle(E.AgentLoggedIn("a1", "support"), 0.0)
    assert agent_log(out) == [("addmember", "support", "")]
    assert e.logged_in_queues("a1") == ["support"]
    assert rung(e.handle(E.CallArrived("s1", "sales"), 1.0)) == []
    assert rung(e.handle(E.CallArrived("h1", "support"), 2.0)) == ["h1"]
    e.handle(E.RingFailed("a1", "h1", E.RingFailure.BUSY), 3.0)
    out = e.handle(E.AgentLoggedIn("a1", "sales"), 4.0)  # joins the other queue: its call rings
    assert agent_log(out) == [("addmember", "sales", "")]
    assert rung(out) == ["s1"]
    assert e.handle(E.AgentLoggedIn("a1", "sales"), 5.0)[-1].reason.startswith("agent is")


def test_log_out_of_one_queue_keeps_the_other_and_the_last_logs_out() -> None:
    e = engine()
    out = e.handle(E.AgentLoggedIn("a1"), 0.0)
    assert agent_log(out) == [("addmember", "sales", ""), ("addmember", "support", "")]
    e.handle(E.CallArrived("s1", "sales"), 1.0)
    out = e.handle(E.AgentLoggedOut("a1", "sales"), 2.0)  # the ringing sales call goes back
    assert [a.call for a in out if isinstance(a, A.CancelRing)] == ["s1"]
    assert agent_log(out) == [("removemember", "sales", "")]
    assert e.agent_state("a1") is AgentState.AVAILABLE and e.waiting("sales") == ["s1"]
    assert isinstance(e.handle(E.AgentLoggedOut("a1", "sales"), 3.0)[-1], A.Ignored)
    out = e.handle(E.AgentLoggedOut("a1", "support"), 4.0)
    assert e.agent_state("a1") is AgentState.LOGGED_OUT
    assert agent_log(out) == [("removemember", "support", "")]
    out = e.handle(E.AgentLoggedIn("a1"), 5.0)  # all at once again
    assert e.logged_in_queues("a1") == ["sales", "support"] and rung(out) == ["s1"]
    assert isinstance(e.handle(E.AgentLoggedIn("a1", "billing"), 6.0)[-1], A.Ignored)


def test_pause_and_unpause_are_logged_per_logged_in_queue_with_the_reason() -> None:
    e = engine()
    e.handle(E.AgentLoggedIn("a1", "support"), 0.0)
    out = e.handle(E.AgentPaused("a1", "lunch"), 1.0)
    assert agent_log(out) == [("pause", "support", "lunch")]
    assert e.agent_stats("a1", 1.0).pause_reason == "lunch"
    assert agent_log(e.handle(E.AgentUnpaused("a1"), 2.0)) == [("unpause", "support", "")]
