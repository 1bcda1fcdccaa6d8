"""Which calls make an agent's phone "in use" for the ACD (``QueueRunner.leg_changed``).

Every leg to or from an agent's phone counts (a direct call either way, a consultation, a
transfer to the agent, a dial-out), except a queue offer's leg while the engine follows it;
trunk legs and other users' legs (a supervisor's) never count. The engine skips an agent in
use and offers the waiting call the moment the phone is free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from acd import actions as act
from acd import events as ev
from callcenter.calls.call import Call, Leg, LegState
from callcenter.calls.queues import QueueRunner, _Entry
from callcenter.config import Config, Queue, User
from callcenter.events.bus import AgentStateChanged, AgentStatus, Event
from callcenter.events.service import Events

AGENTS = ("1001", "1002")


class _NoPhones:
    def contacts(self, *args: object, **kw: object) -> list[object]:
        return []


Check = Callable[[QueueRunner, list[tuple[str, str]]], Coroutine[Any, Any, None]]


def run(check: Check) -> None:
    """``check`` with a live QueueRunner (no SIP: actions are recorded, not carried out) whose
    agents 1001 and 1002 (queue ``sales``, no wrap-up) are registered."""
    cfg = Config(users=[User(user=u, password="x", role="agent") for u in (*AGENTS, "2001")],
                 queues=[Queue(name="sales", members=list(AGENTS), wrapup=0)])

    async def go() -> None:
        runner = QueueRunner(cfg=cfg, b2bua=None, registrar=_NoPhones(),  # type: ignore[arg-type]
                             prompts=None, now=lambda: 100.0)  # type: ignore[arg-type]
        runner.engine = runner._build()
        for agent in AGENTS:
            runner._since[agent] = 0.0
        rings: list[tuple[str, str]] = []
        runner.listeners.append(
            lambda a: rings.append((a.agent, a.call)) if isinstance(a, act.RingAgent) else None)
        runner._carry_out = lambda a: None  # type: ignore[method-assign] # no phones here
        for agent in AGENTS:
            runner._feed(ev.AgentRegistered(agent))
        try:
            await check(runner, rings)
        finally:
            if runner._timer is not None:
                runner._timer.cancel()

    asyncio.run(go())


def leg(runner: QueueRunner, call: Call, party: str, direction: str, trunk: str = "") -> Leg:
    x = Leg(call, direction, ("127.0.0.1", 5060), "udp", party, trunk=trunk)
    call.legs.append(x)
    runner.leg_changed("added", x)
    return x


def end(runner: QueueRunner, x: Leg) -> None:
    x.state = LegState.ENDED
    runner.leg_changed("ended", x)


def in_use(runner: QueueRunner) -> dict[str, bool]:
    """The agents' ``in_use`` in GET /api/agents (1001, 1002; 2001 is the supervisor)."""
    return {a["id"]: a["in_use"] for a in runner.agent_stats() if a["id"] in AGENTS}


def test_a_direct_call_keeps_both_agents_from_queue_calls_until_it_ends() -> None:
    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        direct = Call(caller="1001", called="1002", source="user:1001", direction="internal")
        caller, callee = leg(runner, direct, "1001", "inbound"), leg(runner, direct, "1002",
                                                                     "outbound")
        assert in_use(runner) == {"1001": True, "1002": True}
        runner._feed(ev.CallArrived(call="c1", queue="sales"))
        assert rings == []  # both phones busy: the caller waits
        end(runner, callee)
        assert rings == [("1002", "c1")]  # at once, no wrap-up after a direct call
        assert in_use(runner) == {"1001": True, "1002": False}
        end(runner, caller)
        assert in_use(runner) == {"1001": False, "1002": False}
    run(check)


def test_trunk_legs_and_other_users_never_count() -> None:
    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        inbound = Call(caller="1001", called="0800", source="trunk:pstn")
        leg(runner, inbound, "1001", "inbound", trunk="pstn")  # a caller ID that looks like one
        supervisor = Call(caller="supervisor", called="2001", source="api:supervisor")
        leg(runner, supervisor, "2001", "outbound")  # listening to 1001: 2001's phone only
        assert in_use(runner) == {"1001": False, "1002": False}
        assert runner.in_use("2001")
    run(check)


def test_a_queue_offer_is_not_in_use_until_a_transfer_takes_the_call() -> None:
    """The engine follows its own offer (ringing, on call); once a consultation takes the
    call the agent leg still talks (to the target) and counts, past the queue call's end."""
    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        runner._feed(ev.CallArrived(call="c1", queue="sales"))
        agent = rings[0][0]
        offer = Call(caller="+48221234567", called=agent, source="queue:sales")
        runner._offers.add(offer)  # as _ring does
        agent_leg = leg(runner, offer, agent, "outbound")
        assert not in_use(runner)[agent]
        runner._feed(ev.RingAnswered(agent=agent, call="c1"))
        entry = _Entry(id="c1", leg=None, queue="sales", language="pl", caller="+48221234567",
                       outcome=asyncio.get_running_loop().create_future())
        entry.agent_legs[agent] = agent_leg
        runner._transferred(entry, act.Bridge(agent, "c1", "sales"), "user:1003", True)
        assert in_use(runner)[agent]
        runner._feed(ev.CallArrived(call="c2", queue="sales"))
        other = next(a for a in AGENTS if a != agent)
        assert rings[1:] == [(other, "c2")]  # not the consulting agent
        end(runner, agent_leg)
        assert not in_use(runner)[agent]
    run(check)


def test_a_preview_claim_and_its_legs_add_up() -> None:
    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        runner.device_in_use("1001", True)  # reserved before its leg exists
        preview = Call(caller="0800", called="+48221234567", source="campaign:p")
        phone = leg(runner, preview, "1001", "outbound")
        runner.device_in_use("1001", False)
        assert in_use(runner)["1001"]  # the leg still talks
        end(runner, phone)
        assert not in_use(runner)["1001"]
    run(check)


def test_in_use_changes_reach_the_desk_as_agent_status_not_as_a_state_change() -> None:
    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        events = Events()
        events.attach_acd(runner)
        seen: list[Event] = []
        events.subscribe(seen.append)
        direct = Call(caller="1001", called="2001", source="user:1001", direction="internal")
        phone = leg(runner, direct, "1001", "inbound")
        end(runner, phone)
        statuses = [(e.agent, e.status["in_use"]) for e in seen if isinstance(e, AgentStatus)]
        assert statuses == [("1001", True), ("1001", False)]
        assert not [e for e in seen if isinstance(e, AgentStateChanged)]
    run(check)


def test_the_call_on_an_agents_phone_is_in_the_agents_list() -> None:
    """GET /api/agents' ``phone_call``: the non-queue call at the agent, for the supervisor."""
    def phone(runner: QueueRunner) -> dict[str, Any]:
        return {a["id"]: a["phone_call"] for a in runner.agent_stats() if a["id"] in AGENTS}

    async def check(runner: QueueRunner, rings: list[tuple[str, str]]) -> None:
        assert phone(runner) == {"1001": None, "1002": None}
        direct = Call(caller="1001", called="1002", source="user:1001", direction="internal")
        leg(runner, direct, "1001", "inbound").state = LegState.ANSWERED
        callee = leg(runner, direct, "1002", "outbound")
        about = {"call_id": direct.id, "kind": "direct", "seconds": 0.0}
        assert phone(runner) == {
            "1001": {**about, "outgoing": True, "other": "1002", "answered": True},
            "1002": {**about, "outgoing": False, "other": "1001", "answered": False}}
        end(runner, callee)
        out = Call(caller="1002", called="+48601000000", source="user:1002", direction="outbound")
        leg(runner, out, "1002", "inbound")
        leg(runner, out, "+48601000000", "outbound", trunk="pstn")
        assert phone(runner)["1002"] == {"call_id": out.id, "kind": "dial_out", "outgoing": True,
                                         "other": "+48601000000", "answered": False,
                                         "seconds": 0.0}
        moved = Call(caller="+48221234567", called="100", source="trunk:pstn", transfers=1)
        leg(runner, moved, "+48221234567", "inbound", trunk="pstn")
        leg(runner, moved, "1001", "outbound")
        assert phone(runner)["1001"] == {"call_id": moved.id, "kind": "transfer",  # the latest
                                         "outgoing": False, "other": "+48221234567",
                                         "answered": False, "seconds": 0.0}
        preview = Call(caller="0800", called="+48221234500", source="campaign:p",
                       direction="outbound")
        leg(runner, preview, "1001", "outbound")
        assert phone(runner)["1001"]["kind"] == "preview"
        assert phone(runner)["1001"]["other"] == "+48221234500"
        offer = Call(caller="+48221234567", called="1002", source="queue:sales")
        runner._offers.add(offer)  # a queue offer is the list's ``call``, not this
        end(runner, next(x for x in out.legs if x.party == "1002"))
        leg(runner, offer, "1002", "outbound")
        assert phone(runner)["1002"] is None
    run(check)
