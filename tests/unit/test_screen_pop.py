"""``flows.screen_pop``: the one way every ring of an agent's phone for a customer makes the
card (queue, transfer, callback, campaign, preview)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcenter.calls.call import Call
from callcenter.calls.flows import screen_pop


class Pops:
    def __init__(self, name: str = "Anna Nowak") -> None:
        self.name, self.seen = name, list[tuple[Any, ...]]()

    def __call__(self, call_id: str, agent: str, queue: str, number: str,
                 why: Mapping[str, Any]) -> tuple[str, str]:
        self.seen.append((call_id, agent, queue, number, dict(why)))
        return self.name, f"http://desk/call/{call_id}"


def test_the_customer_is_who_called_us_or_whom_we_called() -> None:
    pops = Pops()
    inbound = Call(caller="+48221234567", called="800", source="trunk:pstn")
    campaign = Call(caller="+48220000000", called="+48601000001", source="campaign:renewals",
                    direction="outbound")
    assert screen_pop(pops, inbound, "1003", "transfer") == (
        "Anna Nowak", f"http://desk/call/{inbound.id}")
    screen_pop(pops, campaign, "1001", "preview", campaign="renewals", fields={"plan": "gold"})
    assert pops.seen == [
        (inbound.id, "1003", "", "+48221234567", {"kind": "transfer"}),
        (campaign.id, "1001", "", "+48601000001",
         {"kind": "preview", "campaign": "renewals", "fields": {"plan": "gold"}})]


def test_a_booked_callback_pops_by_its_number() -> None:
    pops = Pops()
    screen_pop(pops, None, "1001", "callback", queue="sales", number="+48221234567",
               callback_id=7)
    assert pops.seen == [("", "1001", "sales", "+48221234567",
                          {"kind": "callback", "callback_id": 7})]


def test_a_failed_or_absent_pop_never_stops_the_ring() -> None:
    def broken(*_: Any) -> tuple[str, str]:
        raise RuntimeError("database is locked")

    call = Call(caller="1002", called="1001", source="user:1002")
    assert screen_pop(broken, call, "1003", "transfer") == ("", "")
    assert screen_pop(None, call, "1003", "transfer") == ("", "")


def test_a_predictive_campaign_ring_pops_the_contacts_fields() -> None:
    """The dialer queues an answered contact with its name and fields: the queue's ring of
    an agent pops them with the campaign, as a preview's ring does."""
    import asyncio
    from types import SimpleNamespace

    from acd import actions as act
    from callcenter.calls.call import Leg, LegState
    from callcenter.calls.queues import QueueRunner, _Entry
    from callcenter.config import Config, Queue, User

    pops, rang = Pops(), list[dict[str, Any]]()

    async def dial_fork(call: Call, bindings: Any, **kw: Any) -> Leg:
        rang.append(kw)  # the ring is over before it is done: hung up, as a cancelled one
        return Leg(call=call, direction="outbound", peer=("127.0.0.1", 5060), transport="udp",
                   party="1001", state=LegState.ENDED, sip_status=486)

    async def hangup(leg: Leg) -> None:
        pass

    async def run() -> None:
        cfg = Config(users=[User(user="1001", password="x", role="agent")],
                     queues=[Queue(name="sales", members=["1001"])])
        phones = SimpleNamespace(contacts=lambda *a, **k: [SimpleNamespace(contact="sip:1001@x")])
        runner = QueueRunner(cfg=cfg, b2bua=SimpleNamespace(dial_fork=dial_fork, hangup=hangup),  # type: ignore[arg-type]
                             registrar=phones, prompts=None, now=lambda: 0.0)  # type: ignore[arg-type]
        runner.on_offer, runner._feed = pops, lambda e: None  # type: ignore[method-assign]
        customer = Call(caller="+48220000000", called="+48601000001",
                        source="campaign:renewals", direction="outbound")
        leg = Leg(call=customer, direction="outbound", peer=("127.0.0.1", 5070),
                  transport="udp", party="+48601000001", state=LegState.ANSWERED)
        entry = _Entry(id="c1", leg=leg, queue="sales", language="pl", caller="+48220000000",
                       outcome=asyncio.get_running_loop().create_future(),
                       about={"contact": "Jan Kowalski", "fields": {"plan": "gold"}},
                       call_id=customer.id, customer=customer.customer, source=customer.source)
        await runner._ring(entry, act.RingAgent(agent="1001", call="c1", queue="sales",
                                                timeout=10))

    asyncio.run(run())
    assert [p[1:] for p in pops.seen] == [
        ("1001", "sales", "+48601000001", {"kind": "campaign", "campaign": "renewals",
                                           "contact": "Jan Kowalski", "fields": {"plan": "gold"}})]
    assert rang[0]["from_display"] == "Anna Nowak (sales)"
