"""What a transfer's target names, and the targets refused before anything changes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from callcenter.calls.call import Call, Leg
from callcenter.calls.transfer import Target, Transfers
from callcenter.config.models import Trunk
from callcenter.sip.errors import Forbidden, NotFound


def transfers() -> Transfers:
    services: Any = SimpleNamespace(b2bua=None)
    queues: Any = SimpleNamespace(engine=SimpleNamespace(queue_names=["sales"]))
    return Transfers(services, queues=queues, users={"1001", "1002", "1003"},
                     lines=lambda n: (lambda leg: None) if n == "0800" else None)  # type: ignore[arg-type,return-value]


def legs() -> tuple[Leg, Leg]:
    call = Call(caller="1002", called="1001", source="user:1002")
    return (Leg(call, "inbound", ("127.0.0.1", 1), "udp", "1002"),
            Leg(call, "outbound", ("127.0.0.1", 2), "udp", "1001"))


def test_a_user_a_queue_a_line() -> None:
    caller, agent = legs()
    t = transfers()
    assert t.target("1003", caller, agent) == Target("user", "1003")
    assert t.target("sales", caller, agent) == Target("queue", "sales")
    assert str(t.target("0800", caller, agent)) == "line:0800"


@pytest.mark.parametrize("to", ["9999", "", "support"])
def test_an_unknown_target_is_404(to: str) -> None:
    caller, agent = legs()
    with pytest.raises(NotFound):
        transfers().target(to, caller, agent)


@pytest.mark.parametrize("to", ["1001", "1002"])
def test_a_transfer_to_a_party_of_the_call_is_a_loop(to: str) -> None:
    caller, agent = legs()
    with pytest.raises(Forbidden):
        transfers().target(to, caller, agent)


def test_an_outside_number_by_the_transferors_outbound_rules() -> None:
    trunk: Any = SimpleNamespace(name="pstn")
    asked: list[tuple[str, str | None]] = []

    def outside(number: str, user: str | None) -> tuple[Any, str] | None:
        asked.append((number, user))
        if number.startswith("070"):
            raise Forbidden("premium rate")
        return (trunk, "0800123456" if number == "0221234567" else "") if number[0] == "0" \
            else None

    t = transfers()
    t.outside = outside
    caller, agent = legs()
    target = t.target("0221234567", caller, agent)
    assert (target.kind, target.name, target.trunk, target.caller_id) == (
        "number", "0221234567", trunk, "0800123456")
    assert asked == [("0221234567", "1001")]  # the rules of the transferring user
    assert t.target("0227654321", caller, agent).caller_id == "1002"  # the caller's number
    with pytest.raises(Forbidden):
        t.target("0700123456", caller, agent)
    with pytest.raises(NotFound):
        t.target("5555", caller, agent)
    customer = Leg(caller.call, "inbound", ("127.0.0.1", 1), "udp", "0221234567")
    with pytest.raises(Forbidden):
        t.target("0221234567", customer, agent)  # back to the caller's own number


def test_a_transfer_out_rings_the_number_with_its_trunks_failover() -> None:
    trunks = [Trunk(name="pstn", addresses=["10.0.0.1"], failover=["backup"]),
              Trunk(name="backup", addresses=["10.0.0.2"])]
    dialled: dict[str, Any] = {}

    async def dial_unless(ended: object, call: object, **kwargs: Any) -> None:
        dialled.update(kwargs)

    t = transfers()
    t.services = SimpleNamespace(trunks=lambda: trunks)  # type: ignore[assignment]
    t.b2bua = SimpleNamespace(dial_unless=dial_unless)  # type: ignore[assignment]
    caller, _ = legs()
    target = Target("number", "0221234567", trunk=trunks[0], caller_id="0800123456")
    assert asyncio.run(t._ring(caller, target)) == 487  # the fake dial: the caller left
    assert [f["trunk"] for f in dialled["failover"]] == ["backup"], dialled
