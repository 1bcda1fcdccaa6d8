"""Attended transfer in memory: the parties of one user's two calls are joined (REFER with
Replaces, RFC 5589 §7), the joined party moves into the transferee's call record, and the
transferor's legs are released; Replaces values parsed per RFC 3891."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from callcenter.calls.call import Call, Leg, LegState
from callcenter.calls.transfer import Transfers
from callcenter.events.bus import CallTransferred
from callcenter.sip.dialog import parse_replaces
from callcenter.sip.errors import BadRequest, CallDoesNotExist, Forbidden


class Channel:
    closed = False

    def __init__(self) -> None:
        self.peer: Channel | None = None
        self.playing = True  # hold music, until stopped

    def play(self, *args: Any, **kwargs: Any) -> None:
        self.playing = True

    def stop_playing(self) -> None:
        self.playing = False


class Media:
    def bridge(self, a: Channel, b: Channel) -> None:
        self.unbridge(a)
        self.unbridge(b)
        a.peer, b.peer = b, a

    def unbridge(self, ch: Channel) -> None:
        if ch.peer is not None:
            ch.peer.peer = None
        ch.peer = None


class B2BUA:
    def __init__(self, legs: list[Leg]) -> None:
        self.media = Media()
        self.legs = legs
        self.hung_up: list[Leg] = []

    def partner(self, leg: Leg) -> Leg | None:
        return next((x for x in self.legs if x.channel is leg.channel.peer), None)

    async def hangup(self, leg: Leg) -> None:
        self.hung_up.append(leg)
        leg.state = LegState.ENDED
        leg.ended.set()

    async def hangup_call(self, call: Call, cause: Any, side: str) -> None:
        for x in call.legs:
            await self.hangup(x)


def leg(call: Call, party: str) -> Leg:
    x = Leg(call, "inbound", ("127.0.0.1", 1), "udp", party, state=LegState.ANSWERED)
    x.channel = Channel()
    call.legs.append(x)
    return x


def setup() -> tuple[Transfers, B2BUA, list[Any], tuple[Leg, Leg, Leg, Leg]]:
    """1002 called 1001 (held, music); 1001 consults 1003 in a second call."""
    held = Call(caller="1002", called="1001", source="user:1002")
    consult = Call(caller="1001", called="1003", source="user:1001")
    held.started_at, consult.started_at = 100.0, 104.0
    caller, agent1 = leg(held, "1002"), leg(held, "1001")
    agent2, target = leg(consult, "1001"), leg(consult, "1003")
    b2bua = B2BUA([caller, agent1, agent2, target])
    b2bua.media.bridge(caller.channel, agent1.channel)
    b2bua.media.bridge(agent2.channel, target.channel)
    agent1.held_since = 10.0
    published: list[Any] = []
    pops: list[tuple[Any, ...]] = []  # the screen pops: (call id, agent, queue, number, why)
    services: Any = SimpleNamespace(b2bua=b2bua, now=lambda: 14.0, publish=published.append,
                                    pops=pops, offer=lambda *a: pops.append(a) or ("", ""))
    queues: Any = SimpleNamespace(engine=None, device_in_use=lambda *a: None)
    t = Transfers(services, queues=queues, users={"1001", "1002", "1003"}, lines=lambda n: None)
    return t, b2bua, published, (caller, agent1, agent2, target)


def test_attended_joins_the_two_partners_in_the_transferees_call() -> None:
    async def run() -> None:
        t, b2bua, published, (caller, agent1, agent2, target) = setup()
        held, consult = caller.call, target.call
        t.attended(agent1, agent2, by="refer")
        await asyncio.sleep(0)
        assert caller.channel.peer is target.channel and target.channel.peer is caller.channel
        assert not caller.channel.playing  # the hold music stopped
        assert agent1.released and agent2.released
        assert b2bua.hung_up == [agent2]  # agent1 is the REFER's sender: hung up after NOTIFY
        assert target.call is held and target in held.legs and target not in consult.legs
        assert held.hold_seconds == 4.0 and agent1.held_since is None
        assert held.transfers == consult.transfers == 1 and held.flow_owned
        (event,) = published
        assert isinstance(event, CallTransferred)
        assert (event.kind, event.target, event.transferor, event.transferee) == (
            "attended", "user:1003", "1001", "1002")
        # 1003's phone never rang for 1002 (1001 called it): the card pops as they are joined
        assert t.services.pops == [(held.id, "1003", "", "1002", {"kind": "transfer"})]
        # the target hangs up: the transferee is hung up too (one story)
        target.state = LegState.ENDED
        target.ended.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert caller in b2bua.hung_up
    asyncio.run(run())


def test_the_older_call_keeps_the_record_whichever_dialog_carried_the_refer() -> None:
    async def run() -> None:
        t, _, published, (caller, agent1, agent2, target) = setup()
        held, consult = caller.call, target.call
        t.attended(agent2, agent1, by="refer")  # the REFER came on the consultation's dialog
        assert caller.call is target.call is held and caller in held.legs
        assert published[0].call_id == held.id and published[0].transferee == "1003"
        assert consult.legs == [agent2]
        assert [pop[:2] for pop in t.services.pops] == [(held.id, "1003")]  # 1003 joined 1002
    asyncio.run(run())


def test_a_call_without_a_record_never_keeps_it() -> None:
    async def run() -> None:
        t, _, _, (caller, agent1, agent2, target) = setup()
        held, consult = caller.call, target.call
        held.started_at = None  # e.g. a campaign's or a queue agent's call
        t.attended(agent1, agent2, by="refer")
        assert caller.call is target.call is consult and caller in consult.legs
    asyncio.run(run())


def test_attended_refusals() -> None:
    async def run() -> None:
        t, _, published, (caller, agent1, agent2, target) = setup()
        with pytest.raises(CallDoesNotExist):
            t.attended(agent1, None, by="refer")  # Replaces named no live leg
        with pytest.raises(CallDoesNotExist):
            t.attended(agent1, agent1, by="refer")
        with pytest.raises(Forbidden):
            t.attended(agent1, target, by="refer")  # 1003's leg, not 1001's
        b2bua = t.b2bua
        b2bua.media.unbridge(agent2.channel)  # the consulted party has left
        with pytest.raises(CallDoesNotExist):
            t.attended(agent1, agent2, by="refer")
        assert caller.channel.peer is agent1.channel and not published
    asyncio.run(run())


def test_parse_replaces() -> None:
    assert parse_replaces("abc@h;to-tag=1;from-tag=2") == ("abc@h", "1", "2")
    assert parse_replaces(" abc@h ; from-tag=2 ;to-tag=1;early-only") == ("abc@h", "1", "2")
    for bad in ("abc@h;to-tag=1", ";to-tag=1;from-tag=2", "abc;to-tag=1;from-tag"):
        with pytest.raises(BadRequest):
            parse_replaces(bad)


def consulting(answer: int) -> tuple[Transfers, B2BUA, list[Any], Leg, Leg, Leg]:
    """1002 talks to 1001, who consults 1003 (``*2``); 1003 answers 200 or fails ``answer``."""
    call = Call(caller="1002", called="1001", source="user:1002")
    caller, agent = leg(call, "1002"), leg(call, "1001")
    target = Leg(call, "outbound", ("127.0.0.1", 2), "udp", "1003")
    target.channel = Channel()
    b2bua = B2BUA([caller, agent, target])
    b2bua.media.bridge(caller.channel, agent.channel)

    async def dial_fork_unless(gone: Any, call_: Call, bindings: Any, **kw: Any) -> Leg:
        target.state = LegState.ANSWERED if answer == 200 else LegState.ENDED
        target.sip_status = answer
        return target

    b2bua.dial_fork_unless = dial_fork_unless  # type: ignore[attr-defined]
    published: list[Any] = []
    pops: list[tuple[Any, ...]] = []  # the screen pops: (call id, agent, queue, number, why)
    services: Any = SimpleNamespace(
        b2bua=b2bua, now=lambda: 0.0, publish=published.append, pops=pops,
        offer=lambda *a: pops.append(a) or ("", ""), prompts=SimpleNamespace(get=lambda *a: None),
        music=lambda queue: "hold_music",
        registrar=SimpleNamespace(contacts=lambda *a, **k: ["phone"]))
    queues: Any = SimpleNamespace(engine=None, device_in_use=lambda *a: None)
    t = Transfers(services, queues=queues, users={"1001", "1002", "1003"}, lines=lambda n: None)
    return t, b2bua, published, caller, agent, target


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.mark.parametrize("how", ["#", "hangup", "*", "target leaves", "caller leaves"])
def test_a_consultation_by_keys(how: str) -> None:
    async def run() -> None:
        t, b2bua, published, caller, agent, target = consulting(200)
        for key in "*21003#":
            t.on_key(agent, key)
        await settle()
        assert agent.channel.peer is target.channel and caller.channel.peer is None
        assert caller.channel.playing  # the hold music
        assert t.services.pops == [(caller.call.id, "1003", "", "1002", {"kind": "transfer"})]
        if how in ("#", "*"):
            t.on_key(agent, how)
        else:
            gone = {"hangup": agent, "target leaves": target, "caller leaves": caller}[how]
            gone.state = LegState.ENDED
            gone.ended.set()
        await settle()
        if how in ("#", "hangup"):  # completed: the caller talks to the target
            assert caller.channel.peer is target.channel and agent.state is LegState.ENDED
            assert [(e.kind, e.by) for e in published] == [("attended", "dtmf")]
        elif how == "caller leaves":  # the agent and the target talk on
            assert agent.channel.peer is target.channel and not published
        else:  # back to the caller; the target hung up
            assert caller.channel.peer is agent.channel and not caller.channel.playing
            assert target.state is LegState.ENDED and not agent.released and not published
    asyncio.run(run())


def test_a_busy_target_brings_the_caller_back() -> None:
    async def run() -> None:
        t, _, published, caller, agent, target = consulting(486)
        for key in "*21003#":
            t.on_key(agent, key)
        await settle()
        assert caller.channel.peer is agent.channel and not agent.released and not published
        t.on_key(agent, "#")  # no consultation any more: an ordinary key
        await settle()
        assert caller.channel.peer is agent.channel
    asyncio.run(run())
