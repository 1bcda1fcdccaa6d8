"""ACD engine: queues, exits, announcements, races, watchdog, statistics."""

from __future__ import annotations

import random
from typing import Any

import pytest

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, InvalidSetting, Membership, QueueConfig
from acd.engine import AcdEngine, AcdError
from acd.states import AgentState


def engine(n: int = 2, *, queues: list[QueueConfig] | None = None, member_of: tuple[str, ...] =
           ("sales",), registered: bool = True, **kw: Any) -> AcdEngine:
    queues = queues or [QueueConfig(name="sales")]
    agents = [AgentConfig(id=f"a{i + 1}", queues=tuple(Membership(queue=q) for q in member_of),
                          logged_in=True, registered=registered) for i in range(n)]
    return AcdEngine(queues=queues, agents=agents, rng=random.Random(1), **kw)


def of(actions: list[A.Action], cls: type) -> list[Any]:
    return [a for a in actions if isinstance(a, cls)]


def rung(actions: list[A.Action]) -> list[tuple[str, str]]:
    return [(a.agent, a.call) for a in of(actions, A.RingAgent)]


def log(actions: list[A.Action], verb: A.QueueEvent) -> list[A.QueueLogEntry]:
    return [a for a in of(actions, A.QueueLogEntry) if a.event is verb]


def test_call_rings_an_agent_and_connects() -> None:
    e = engine(1)
    out = e.handle(E.CallArrived("c1", "sales", caller="+48600"), 0.0)
    assert rung(out) == [("a1", "c1")]
    assert log(out, A.QueueEvent.ENTER)[0].position == 1
    out = e.handle(E.RingAnswered("a1", "c1"), 3.0)
    (bridge,) = of(out, A.Bridge)
    assert (bridge.agent, bridge.call, bridge.caller) == ("a1", "c1", "+48600")
    assert log(out, A.QueueEvent.CONNECT)[0].wait == 3.0
    assert e.agent_state("a1") is AgentState.ON_CALL
    out = e.handle(E.CallEnded("c1", E.HungUpBy.AGENT), 63.0)
    (done,) = log(out, A.QueueEvent.COMPLETE)
    assert (done.talk, done.hung_up_by, done.agent) == (60.0, "agent", "a1")
    assert e.agent_state("a1") is AgentState.AVAILABLE


def test_priority_goes_ahead_of_fifo_and_positions_are_announced() -> None:
    e = engine(0)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.CallArrived("c2", "sales"), 1.0)
    out = e.handle(E.CallArrived("vip", "sales", priority=5), 2.0)
    assert e.waiting("sales") == ["vip", "c1", "c2"]
    (ann,) = of(out, A.Announce)
    assert ann.position == 1
    assert ann.estimated_wait is None  # no handle times yet: no made-up estimate
    assert of(out, A.PlayHoldMusic)


def test_estimated_wait_from_recent_handle_times_and_staffed_agents() -> None:
    e = engine(2)
    for i, agent in enumerate(("a1", "a2")):
        e.handle(E.CallArrived(f"c{i}", "sales"), 0.0)
        e.handle(E.RingAnswered(agent, f"c{i}"), 0.0)
    e.handle(E.CallArrived("c2", "sales"), 1.0)  # waits: both busy
    e.handle(E.CallEnded("c0"), 100.0)  # a1 takes c2; handle time 100 s recorded
    e.handle(E.RingAnswered("a1", "c2"), 100.0)
    out = e.handle(E.CallArrived("c3", "sales"), 101.0)
    (ann,) = of(out, A.Announce)
    assert ann.position == 1
    assert ann.estimated_wait == pytest.approx(1 * 100.0 / 2)


def test_periodic_announcements_skip_while_ringing_and_stop_when_connected() -> None:
    e = engine(0, queues=[QueueConfig(name="sales", announce_every=30)])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    assert e.next_deadline() == 30.0
    out = e.handle(E.Tick(), 30.0)
    assert [a.position for a in of(out, A.Announce)] == [1]
    assert e.next_deadline() == 60.0


def test_caller_hangs_up_while_ringing_cancels_the_ring_at_once() -> None:
    e = engine(1)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    out = e.handle(E.CallerHungUp("c1"), 4.0)
    assert of(out, A.CancelRing) == [A.CancelRing("a1", "c1", "caller_hung_up")]
    (ab,) = log(out, A.QueueEvent.ABANDON)
    assert (ab.position, ab.wait) == (1, 4.0)
    assert e.agent_state("a1") is AgentState.AVAILABLE
    # the late answer crossing the CANCEL gets the agent's leg dropped
    out = e.handle(E.RingAnswered("a1", "c1"), 4.1)
    assert of(out, A.DropAgentLeg)
    assert e.stats("sales", 5.0).abandoned == 1


def test_abandon_while_waiting_is_logged_with_position_and_wait() -> None:
    e = engine(0)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.CallArrived("c2", "sales"), 1.0)
    out = e.handle(E.CallerHungUp("c2"), 11.0)
    (ab,) = log(out, A.QueueEvent.ABANDON)
    assert (ab.position, ab.wait) == (2, 10.0)


def test_two_queues_never_ring_one_agent_for_two_calls() -> None:
    e = engine(1, queues=[QueueConfig(name="sales"), QueueConfig(name="support")],
               member_of=("sales", "support"), registered=False)
    e.handle(E.CallArrived("s1", "sales"), 0.0)
    e.handle(E.CallArrived("t1", "support"), 0.0)
    out = e.handle(E.AgentRegistered("a1"), 1.0)
    assert len(rung(out)) == 1
    out = e.handle(E.RingFailed("a1", rung(out)[0][1], E.RingFailure.BUSY), 2.0)
    assert len(rung(out)) == 1  # the other call; still one at a time


def test_higher_weight_queue_is_served_first() -> None:
    e = engine(1, queues=[QueueConfig(name="sales"), QueueConfig(name="support", weight=5)],
               member_of=("sales", "support"), registered=False)
    e.handle(E.CallArrived("s1", "sales"), 0.0)
    e.handle(E.CallArrived("t1", "support"), 1.0)
    assert rung(e.handle(E.AgentRegistered("a1"), 2.0)) == [("a1", "t1")]


def test_unregistered_and_unreachable_agents_are_skipped() -> None:
    e = engine(3)
    e.handle(E.AgentUnregistered("a1"), 0.0)
    e.handle(E.AgentReachability("a2", False), 0.0)
    assert rung(e.handle(E.CallArrived("c1", "sales"), 1.0)) == [("a3", "c1")]
    # unreachable while ringing: the ring is cancelled and the call goes to someone else
    e.handle(E.AgentReachability("a2", True), 2.0)
    out = e.handle(E.AgentReachability("a3", False), 3.0)
    assert of(out, A.CancelRing)[0].agent == "a3"
    assert rung(out) == [("a2", "c1")]
    out = e.handle(E.RingFailed("a2", "c1", E.RingFailure.UNREACHABLE), 4.0)
    assert rung(out) == []  # a2 now counts as unreachable too


def test_device_in_use_is_skipped_unless_ring_in_use() -> None:
    e = engine(2)
    e.handle(E.AgentDeviceInUse("a1", True), 0.0)
    assert rung(e.handle(E.CallArrived("c1", "sales"), 1.0)) == [("a2", "c1")]
    e2 = engine(2, queues=[QueueConfig(name="sales", ring_in_use=True)])
    e2.handle(E.AgentDeviceInUse("a1", True), 0.0)
    assert rung(e2.handle(E.CallArrived("c1", "sales"), 1.0)) == [("a1", "c1")]


def test_a_waiting_call_rings_an_agent_the_moment_its_phone_is_free() -> None:
    e = engine(1)
    out = e.handle(E.AgentDeviceInUse("a1", True), 0.0)
    assert [(x.agent, x.in_use) for x in of(out, A.AgentInUse)] == [("a1", True)]
    assert rung(e.handle(E.CallArrived("c1", "sales"), 1.0)) == []  # waits: a1 is on a call
    assert of(e.handle(E.AgentDeviceInUse("a1", True), 2.0), A.AgentInUse) == []  # no change
    assert rung(e.handle(E.Tick(), 30.0)) == []
    out = e.handle(E.AgentDeviceInUse("a1", False), 40.0)
    assert [(x.time, x.in_use) for x in of(out, A.AgentInUse)] == [(40.0, False)]
    assert rung(out) == [("a1", "c1")]  # at once: no wrap-up after a call the ACD did not place
    assert [x.new for x in of(out, A.AgentStateChanged)] == [AgentState.RINGING]


def test_in_use_outlasting_a_queue_call_holds_offers_past_wrap_up() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", wrapup=5)])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 1.0)
    e.handle(E.AgentDeviceInUse("a1", True), 2.0)  # e.g. a consultation from the call
    e.handle(E.CallEnded("c1", E.HungUpBy.AGENT), 3.0)
    e.handle(E.CallArrived("c2", "sales"), 4.0)
    assert rung(e.handle(E.Tick(), 8.0)) == []  # wrap-up over, the phone still busy
    assert (e.agent_stats("a1", 8.0).state, e.agent_stats("a1", 8.0).in_use) == (
        AgentState.AVAILABLE, True)
    assert rung(e.handle(E.AgentDeviceInUse("a1", False), 9.0)) == [("a1", "c2")]


def test_missed_ring_skips_the_agent_for_that_call_then_retries() -> None:
    e = engine(2, queues=[QueueConfig(name="sales", retry=5)])
    e.handle(E.RingAnswered("a2", "x"), 0.0)  # stale: dropped, a2 stays available
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    out = e.handle(E.RingFailed("a1", "c1"), 15.0)
    assert log(out, A.QueueEvent.RING_NO_ANSWER)[0].agent == "a1"
    assert rung(out) == [("a2", "c1")]
    out = e.handle(E.RingFailed("a2", "c1"), 30.0)
    assert rung(out) == []  # both missed: wait `retry` seconds
    assert e.next_deadline() == 35.0
    assert rung(e.handle(E.Tick(), 35.0)) == [("a1", "c1")]


def test_auto_pause_after_n_misses_in_a_row() -> None:
    e = engine(1, auto_pause_after=2)
    for i in range(2):
        e.handle(E.CallArrived(f"c{i}", "sales"), 100.0 * i)
        out = e.handle(E.RingFailed("a1", f"c{i}", E.RingFailure.NO_ANSWER), 100.0 * i + 15)
        e.handle(E.CallerHungUp(f"c{i}"), 100.0 * i + 16)
    changes = of(out, A.AgentStateChanged)
    assert changes[-1].new is AgentState.PAUSED and changes[-1].reason == "auto"
    assert e.agent_stats("a1", 300.0).pause_reason == "auto"
    # busy does not count; an answer resets the count
    e.handle(E.AgentUnpaused("a1"), 300.0)
    e.handle(E.CallArrived("d", "sales"), 301.0)
    e.handle(E.RingFailed("a1", "d", E.RingFailure.BUSY), 302.0)
    assert e.agent_stats("a1", 302.0).missed_in_row == 0


def test_ring_all_first_answer_wins_others_cancelled() -> None:
    e = engine(3, queues=[QueueConfig(name="sales", strategy="ring-all")])
    assert len(rung(e.handle(E.CallArrived("c1", "sales"), 0.0))) == 3
    out = e.handle(E.RingAnswered("a2", "c1"), 2.0)
    assert sorted(c.agent for c in of(out, A.CancelRing)) == ["a1", "a3"]
    assert of(out, A.Bridge)[0].agent == "a2"
    assert [e.agent_state(a) for a in ("a1", "a2", "a3")] == [
        AgentState.AVAILABLE, AgentState.ON_CALL, AgentState.AVAILABLE]


def test_wrap_up_is_respected_and_can_end_early() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", wrapup=30)])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 0.0)
    e.handle(E.CallEnded("c1"), 60.0)
    assert e.agent_state("a1") is AgentState.WRAP_UP
    assert rung(e.handle(E.CallArrived("c2", "sales"), 61.0)) == []
    assert e.next_deadline() == 90.0
    assert rung(e.handle(E.Tick(), 90.0)) == [("a1", "c2")]
    e.handle(E.RingAnswered("a1", "c2"), 91.0)
    e.handle(E.CallEnded("c2"), 100.0)
    e.handle(E.CallArrived("c3", "sales"), 101.0)
    assert rung(e.handle(E.WrapUpEnded("a1"), 105.0)) == [("a1", "c3")]
    assert e.stats("sales", 106.0).aht == pytest.approx((60 + 9) / 2 + (30 + 5) / 2)


def test_pause_and_logout_during_a_call_take_effect_after_it() -> None:
    e = engine(1)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 0.0)
    e.handle(E.AgentPaused("a1", "lunch"), 5.0)
    assert e.agent_state("a1") is AgentState.ON_CALL
    e.handle(E.CallEnded("c1"), 10.0)
    assert e.agent_state("a1") is AgentState.PAUSED
    assert e.agent_stats("a1", 10.0).pause_reason == "lunch"
    out = e.handle(E.AgentPaused("a1", "x"), 11.0)
    assert not of(out, A.Ignored)
    assert of(e.handle(E.AgentLoggedIn("a1"), 12.0), A.Ignored)


def test_pause_while_ringing_puts_the_call_back() -> None:
    e = engine(2)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    out = e.handle(E.AgentPaused("a1", "break"), 1.0)
    assert of(out, A.CancelRing)[0].agent == "a1"
    assert rung(out) == [("a2", "c1")]


def test_max_wait_times_out_to_a_destination_or_overflows() -> None:
    e = engine(0, queues=[QueueConfig(name="sales", max_wait=60, timeout_destination="vm")])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    out = e.handle(E.Tick(), 60.0)
    assert of(out, A.ExitQueue) == [A.ExitQueue("c1", "sales", A.ExitReason.TIMEOUT, "vm")]
    assert log(out, A.QueueEvent.TIMEOUT)[0].wait == 60.0

    e = engine(1, queues=[QueueConfig(name="sales", max_wait=60, overflow="support"),
                          QueueConfig(name="support")], member_of=("support",))
    e.handle(E.AgentPaused("a1"), 0.0)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    out = e.handle(E.Tick(), 60.0)
    assert of(out, A.CallMoved)[0].to_queue == "support"
    assert e.waiting("support") == ["c1"]
    assert rung(e.handle(E.AgentUnpaused("a1"), 61.0)) == [("a1", "c1")]


def test_join_empty_and_leave_when_empty() -> None:
    q = QueueConfig(name="sales", join_empty=False, leave_when_empty=True,
                    empty_destination="closed")
    e = engine(1, queues=[q], registered=False)
    out = e.handle(E.CallArrived("c1", "sales"), 0.0)
    assert of(out, A.ExitQueue)[0].reason is A.ExitReason.JOIN_EMPTY
    e.handle(E.AgentRegistered("a1"), 1.0)
    e.handle(E.CallArrived("c2", "sales"), 2.0)
    e.handle(E.RingAnswered("a1", "c2"), 2.0)
    e.handle(E.CallArrived("c3", "sales"), 3.0)  # a1 busy but staffed: joins
    assert e.waiting("sales") == ["c3"]
    out = e.handle(E.AgentUnregistered("a1"), 4.0)
    assert of(out, A.ExitQueue) == [A.ExitQueue("c3", "sales", A.ExitReason.LEAVE_EMPTY,
                                                "closed")]


def test_callback_keeps_the_place_and_rings_the_agent_when_its_turn_comes() -> None:
    e = engine(1)
    e.handle(E.CallArrived("c0", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c0"), 0.0)
    e.handle(E.CallArrived("c1", "sales", caller="+48601"), 1.0)
    e.handle(E.CallArrived("c2", "sales"), 2.0)
    out = e.handle(E.KeyPressed("c1", "1"), 3.0)
    assert of(out, A.CallbackRequested) == [A.CallbackRequested("c1", "sales", "+48601", 1,
                                                                1.0)]
    assert e.handle(E.CallerHungUp("c1"), 4.0) == []  # expected, keeps its place
    assert e.waiting("sales") == ["c1", "c2"]
    out = e.handle(E.CallEnded("c0"), 50.0)
    (ring,) = of(out, A.RingAgent)
    assert (ring.call, ring.callback, ring.caller) == ("c1", True, "+48601")
    out = e.handle(E.RingAnswered("a1", "c1"), 52.0)
    assert of(out, A.Bridge)[0].callback
    assert of(e.handle(E.KeyPressed("c2", "9"), 53.0), A.Ignored)


def test_a_callback_request_is_offered_at_the_place_of_its_entry_time() -> None:
    e = engine(1)
    e.handle(E.CallArrived("c0", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c0"), 0.0)
    e.handle(E.CallArrived("c1", "sales"), 10.0)
    e.handle(E.CallArrived("c2", "sales"), 20.0)
    e.handle(E.CallArrived("vip", "sales", priority=5), 21.0)
    out = e.handle(E.CallArrived("cb", "sales", caller="+48602", callback=True, entered=15.0),
                   30.0)
    assert not of(out, A.Announce) and not of(out, A.PlayHoldMusic)  # nobody on the line
    assert e.waiting("sales") == ["vip", "c1", "cb", "c2"]
    assert e.stats("sales", 30.0).callbacks == 1
    assert log(out, A.QueueEvent.ENTER)[0].position == 3  # counted in positions
    out = e.handle(E.KeyPressed("c2", "1"), 31.0)  # behind the callback, so counted
    assert of(out, A.CallbackRequested)[0].position == 4
    e.handle(E.CallerHungUp("vip"), 32.0)
    e.handle(E.CallerHungUp("c1"), 32.0)
    out = e.handle(E.CallEnded("c0"), 40.0)
    assert rung(out) == [("a1", "cb")] and of(out, A.RingAgent)[0].callback
    out = e.handle(E.RingAnswered("a1", "cb"), 41.0)
    assert log(out, A.QueueEvent.CONNECT)[0].wait == 26.0  # from its entry time


def test_a_callback_request_joins_an_empty_queue_and_never_times_out() -> None:
    q = QueueConfig(name="sales", join_empty=False, max_wait=60)
    e = engine(1, queues=[q], registered=False)
    e.handle(E.CallArrived("cb", "sales", callback=True), 0.0)
    assert not of(e.handle(E.Tick(), 1000.0), A.ExitQueue)
    assert e.waiting("sales") == ["cb"]
    assert rung(e.handle(E.AgentRegistered("a1"), 1001.0)) == [("a1", "cb")]
    out = e.handle(E.CallbackCancelled("cb"), 1002.0)
    assert of(out, A.CancelRing)[0].call == "cb" and e.waiting("sales") == []
    assert e.agent_state("a1") is AgentState.AVAILABLE
    assert of(e.handle(E.CallbackCancelled("cb"), 1003.0), A.Ignored)


def test_whisper_is_played_before_bridging() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", whisper="queue-sales")])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    assert of(e.handle(E.RingAnswered("a1", "c1"), 1.0), A.Bridge)[0].whisper == "queue-sales"


def test_watchdog_frees_an_agent_stuck_ringing_and_a_call_stuck_connected() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", ring_timeout=15)], watchdog_grace=5,
               max_call=3600)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    assert e.next_deadline() == 20.0
    out = e.handle(E.Tick(), 20.0)
    (wd,) = of(out, A.WatchdogFired)
    assert (wd.what, wd.stuck_for) == ("ringing", 20.0)
    assert of(out, A.CancelRing)[0].reason == "watchdog"
    e.handle(E.Tick(), 25.0)  # retry
    e.handle(E.RingAnswered("a1", "c1"), 26.0)
    out = e.handle(E.Tick(), 26.0 + 3600)
    assert of(out, A.WatchdogFired)[0].what == "on_call"
    assert e.agent_state("a1") is AgentState.AVAILABLE


def test_skills_and_tiers_and_penalties() -> None:
    agents = [
        AgentConfig(id="de", skills={"german": 5}, queues=(Membership(queue="q"),),
                    logged_in=True, registered=True),
        AgentConfig(id="t2", skills={"german": 9}, queues=(Membership(queue="q", tier=2),),
                    logged_in=True, registered=True),
        AgentConfig(id="pen", queues=(Membership(queue="q", penalty=1),), logged_in=True,
                    registered=True),
    ]
    q = QueueConfig(name="q", strategy="skills-based", tier_wait=30)
    e = AcdEngine(queues=[q], agents=agents)
    e.handle(E.AgentPaused("de"), 0.0)
    # german needed: "de" is paused, "t2" only after 30 s, "pen" lacks the skill
    assert rung(e.handle(E.CallArrived("c1", "q", skills={"german": 3}), 0.0)) == []
    assert rung(e.handle(E.Tick(), 30.0)) == [("t2", "c1")]
    # penalty: "pen" only when no lower-penalty agent is free
    e.handle(E.AgentUnpaused("de"), 31.0)
    assert rung(e.handle(E.CallArrived("c2", "q"), 32.0)) == [("de", "c2")]
    assert rung(e.handle(E.CallArrived("c3", "q"), 33.0)) == [("pen", "c3")]


def test_statistics() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", sl_seconds=20)])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 5.0)
    e.handle(E.CallArrived("c2", "sales"), 6.0)
    e.handle(E.CallArrived("c3", "sales"), 7.0)
    e.handle(E.CallerHungUp("c3"), 17.0)
    e.handle(E.CallEnded("c1"), 65.0)
    e.handle(E.RingAnswered("a1", "c2"), 66.0)
    s = e.stats("sales", 70.0)
    assert (s.offered, s.answered, s.abandoned, s.waiting) == (3, 2, 1, 0)
    assert s.answered_within_target == 1
    assert s.service_level == pytest.approx(1 / 3)
    assert s.asa == pytest.approx((5 + 60) / 2)
    assert s.aht == pytest.approx(60.0)
    assert s.agents[0].occupancy == pytest.approx((60 + 4) / 70)
    e.reset_stats(70.0)
    assert e.stats("sales", 70.0).offered == 0


def test_transfer_is_logged_and_goes_to_wrap_up() -> None:
    e = engine(1, queues=[QueueConfig(name="sales", wrapup=10)])
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 0.0)
    out = e.handle(E.CallTransferred("c1", "2001"), 30.0)
    assert log(out, A.QueueEvent.TRANSFER)[0].detail == "2001"
    assert e.agent_state("a1") is AgentState.WRAP_UP
    e.handle(E.CallArrived("c2", "sales"), 50.0)
    e.handle(E.RingAnswered("a1", "c2"), 50.0)
    out = e.handle(E.CallTransferred("c2", "user:1003", attended=True), 60.0)
    assert log(out, A.QueueEvent.ATTENDED_TRANSFER)[0].detail == "user:1003"
    assert not log(out, A.QueueEvent.TRANSFER)


def test_misuse_raises_and_races_are_ignored() -> None:
    e = engine(1)
    with pytest.raises(AcdError):
        e.handle(E.CallArrived("c1", "nope"), 0.0)
    with pytest.raises(AcdError):
        e.handle(E.AgentPaused("zz"), 0.0)
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    with pytest.raises(AcdError):
        e.handle(E.CallArrived("c1", "sales"), 0.0)
    assert of(e.handle(E.CallerHungUp("gone"), 1.0), A.Ignored)
    assert of(e.handle(E.RingFailed("a1", "other"), 1.0), A.Ignored)
    with pytest.raises(ValueError):
        E.KeyPressed("c1", "x")
    with pytest.raises(InvalidSetting):
        AcdEngine(queues=[QueueConfig(name="q", overflow="missing")], agents=[])
    with pytest.raises(ValueError):
        AcdEngine(queues=[QueueConfig(name="q", strategy="missing")], agents=[])
    with pytest.raises(InvalidSetting):
        QueueConfig(name="q", ring_timeout=0)


def test_forty_calls_four_agents_longest_idle_differ_by_at_most_one() -> None:
    e = engine(4)
    now = 0.0
    for i in range(40):
        for ring in rung(e.handle(E.CallArrived(f"c{i}", "sales"), now)):
            e.handle(E.RingAnswered(*ring), now + 2)
        now += 10.0
        for ring in rung(e.handle(E.CallEnded(f"c{i}"), now)):
            e.handle(E.RingAnswered(*ring), now)
    calls = [e.agent_stats(f"a{i}", now).calls for i in range(1, 5)]
    assert calls == [10, 10, 10, 10]


def test_member_added_at_run_time_takes_the_waiting_call() -> None:
    e = engine(1, queues=[QueueConfig(name="sales"), QueueConfig(name="support")])
    e.handle(E.CallArrived("c1", "support"), 0.0)  # nobody in support: it waits
    assert e.members("support") == []
    out = e.handle(E.MemberAdded("a1", "support", penalty=2), 1.0)
    assert rung(out) == [("a1", "c1")]
    assert e.members("support") == ["a1"]
    assert of(e.handle(E.MemberAdded("a1", "support"), 2.0), A.Ignored)
    with pytest.raises(AcdError):
        e.handle(E.MemberAdded("a1", "nowhere"), 2.0)
    with pytest.raises(AcdError):
        e.handle(E.MemberAdded("nobody", "support"), 2.0)


def test_member_removed_finishes_its_call_and_gets_no_new_ones() -> None:
    e = engine(1, member_of=("sales",))
    e.handle(E.CallArrived("c1", "sales"), 0.0)
    e.handle(E.RingAnswered("a1", "c1"), 1.0)
    out = e.handle(E.MemberRemoved("a1", "sales"), 2.0)
    assert not of(out, A.CancelRing) and not of(out, A.Ignored)
    assert e.members("sales") == [] and e.agent_state("a1") is AgentState.ON_CALL
    out = e.handle(E.CallArrived("c2", "sales"), 3.0)
    assert rung(out) == []
    out = e.handle(E.CallEnded("c1", E.HungUpBy.AGENT), 10.0)
    assert log(out, A.QueueEvent.COMPLETE)[0].agent == "a1"
    assert e.agent_state("a1") is AgentState.AVAILABLE and rung(out) == []
    assert e.waiting("sales") == ["c2"]
    assert of(e.handle(E.MemberRemoved("a1", "sales"), 11.0), A.Ignored)


def test_member_removed_while_ringing_puts_the_call_back_to_the_others() -> None:
    e = engine(2)
    out = e.handle(E.CallArrived("c1", "sales"), 0.0)
    (first, _), = rung(out)
    other = "a2" if first == "a1" else "a1"
    out = e.handle(E.MemberRemoved(first, "sales"), 1.0)
    assert [(c.agent, c.call) for c in of(out, A.CancelRing)] == [(first, "c1")]
    assert rung(out) == [(other, "c1")]
    assert e.agent_state(first) is AgentState.AVAILABLE
