"""The agent state table, and random event sequences against the engine's invariants."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from acd import actions as A
from acd import events as E
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.states import TRANSITIONS, AgentInput, AgentState, Effect, transition


def test_every_pair_is_either_in_the_table_or_refused() -> None:
    for state, inp in itertools.product(AgentState, AgentInput):
        tr = transition(state, inp)
        assert tr is TRANSITIONS.get((state, inp))
        if tr is not None and tr.effect is Effect.DEFER:
            assert tr.next is state  # deferring never moves the agent


def test_every_state_is_reachable_and_left() -> None:
    reached = {AgentState.LOGGED_OUT} | {tr.next for tr in TRANSITIONS.values()}
    left = {s for (s, _), tr in TRANSITIONS.items() if tr.next is not s}
    assert reached == set(AgentState) == left


def test_calls_are_only_offered_to_available_agents() -> None:
    assert [s for (s, i) in TRANSITIONS if i is AgentInput.RING] == [AgentState.AVAILABLE]


AGENTS = ("a1", "a2", "a3")
CALLS = tuple(f"c{i}" for i in range(5))

ops = st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from(CALLS), st.sampled_from(("q1", "q2")),
              st.integers(0, 2)),
    st.tuples(st.just("hangup"), st.sampled_from(CALLS)),
    st.tuples(st.just("end"), st.sampled_from(CALLS)),
    st.tuples(st.just("key"), st.sampled_from(CALLS)),
    st.tuples(st.sampled_from(("login", "logout", "pause", "unpause", "reg", "unreg",
                               "unreach", "reach", "wrapend", "inuse", "free")),
              st.sampled_from(AGENTS)),
    st.tuples(st.sampled_from(("answer", "fail")), st.sampled_from(AGENTS),
              st.sampled_from(CALLS), st.sampled_from(list(E.RingFailure))),
    st.tuples(st.just("tick"), st.floats(0.0, 40.0)),
)


def _event(op: tuple) -> E.Event:  # type: ignore[type-arg]
    kind = op[0]
    simple = {"login": E.AgentLoggedIn, "logout": E.AgentLoggedOut, "pause": E.AgentPaused,
              "unpause": E.AgentUnpaused, "reg": E.AgentRegistered,
              "unreg": E.AgentUnregistered, "wrapend": E.WrapUpEnded}
    if kind in simple:
        return simple[kind](op[1])  # type: ignore[no-any-return]
    return {
        "arrive": lambda: E.CallArrived(op[1], op[2], priority=op[3]),
        "hangup": lambda: E.CallerHungUp(op[1]),
        "end": lambda: E.CallEnded(op[1]),
        "key": lambda: E.KeyPressed(op[1], "1"),
        "unreach": lambda: E.AgentReachability(op[1], False),
        "reach": lambda: E.AgentReachability(op[1], True),
        "inuse": lambda: E.AgentDeviceInUse(op[1], True),
        "free": lambda: E.AgentDeviceInUse(op[1], False),
        "answer": lambda: E.RingAnswered(op[1], op[2]),
        "fail": lambda: E.RingFailed(op[1], op[2], op[3]),
        "tick": lambda: E.Tick(),
    }[kind]()


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=60), st.sampled_from(["longest-idle-agent", "ring-all",
                                                    "round-robin", "random"]))
def test_random_sequences_keep_the_engine_consistent(seq: list[tuple], strategy: str) -> None:  # type: ignore[type-arg]
    queues = [QueueConfig(name="q1", strategy=strategy, wrapup=5, max_wait=90,
                          announce_every=20, overflow="q2"),
              QueueConfig(name="q2", strategy=strategy, leave_when_empty=True)]
    agents = [AgentConfig(id="a1", queues=(Membership(queue="q1"), Membership(queue="q2")),
                          logged_in=True, registered=True),
              AgentConfig(id="a2", queues=(Membership(queue="q1"),), registered=True),
              AgentConfig(id="a3", queues=(Membership(queue="q2", tier=2),), logged_in=True)]
    e = AcdEngine(queues=queues, agents=agents, rng=random.Random(0), auto_pause_after=2)
    now = 0.0
    ringing: dict[str, str] = {}  # agent -> call, as the live side would see it
    live: set[str] = set()
    for op in seq:
        if op[0] == "tick":
            now += op[1]
        else:
            now += 1.0
        event = _event(op)
        if isinstance(event, E.CallArrived) and event.call in live:
            continue  # a call id is used once
        out = e.handle(event, now)
        for a in out:
            if isinstance(a, A.RingAgent):
                assert a.agent not in ringing, "an agent rung for two calls"
                ringing[a.agent] = a.call
            elif isinstance(a, A.CancelRing):
                assert ringing.pop(a.agent) == a.call
            elif isinstance(a, A.Bridge):
                assert ringing.pop(a.agent) == a.call
            elif isinstance(a, A.QueueLogEntry) and a.event is A.QueueEvent.RING_NO_ANSWER:
                if a.detail != "watchdog":  # the watchdog sent a CancelRing just before
                    assert a.agent is not None
                    assert ringing.pop(a.agent) == a.call
            elif isinstance(a, A.AgentStateChanged):
                assert a.old is not a.new or a.new is AgentState.PAUSED
                assert a.new is _state_after(a.old, a.reason)
        if isinstance(event, E.CallArrived):
            live.add(event.call)
        # invariants
        for agent in AGENTS:
            state = e.agent_state(agent)
            assert (state is AgentState.RINGING) == (agent in ringing)
        waiting = e.waiting("q1") + e.waiting("q2")
        assert len(waiting) == len(set(waiting))
        deadline = e.next_deadline()
        assert deadline is None or deadline > now  # due timers fired in handle()
        for q in ("q1", "q2"):
            s = e.stats(q, now)
            assert s.waiting == len(e.waiting(q))
            assert s.answered + s.abandoned + s.timed_out + s.exited_empty <= s.offered


def _state_after(old: AgentState, reason: str) -> AgentState:
    """Every reported change is a row of the table (reason names the input, or is free text
    for pauses and timers)."""
    by_value = {i.value: i for i in AgentInput}
    inp = by_value.get(reason)
    if inp is None:  # pause reason, "auto", "wrap_up_timer", "unregistered", ...
        aliases = {"wrap_up_timer": AgentInput.WRAP_UP_ENDED, "unregistered":
                   AgentInput.RING_CANCELLED, "unreachable": AgentInput.RING_CANCELLED}
        inp = aliases.get(reason, AgentInput.PAUSE)
    tr = transition(old, inp)
    assert tr is not None, (old, reason)
    return tr.next
