"""The IVR's transfer to a ``number:`` asks the dialplan's outbound rules (as ``ivr``) first."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from callcenter.calls.call import LegState
from callcenter.calls.ivr_call import LiveCall
from ivr.dialplan import Dialplan, OutboundRule


def live(plan: Dialplan, trunks: dict[str, Any], caller: str = "48221") -> LiveCall:
    leg: Any = SimpleNamespace(state=LegState.ANSWERED,
                               call=SimpleNamespace(id="c1", caller=caller, called="0800"))
    return LiveCall(Any, leg, queues=None, trunks=trunks.get,  # type: ignore[arg-type]
                    route_out=lambda number: plan.route_out(number, ["ivr"]))


def test_refused_unrouted_and_trunkless_numbers_are_never_dialled() -> None:
    plan = Dialplan(outbound=[
        OutboundRule(pattern="^070", deny=True, reason="premium-rate"),
        OutboundRule(pattern="^0[1-9]", allow=["agent"], trunk="pstn"),
        OutboundRule(pattern="^1", trunk="gone"),
    ])
    call = live(plan, {})
    outcomes = [asyncio.run(call.transfer_to_number(n)) for n in
                ("0700123456", "0221234567", "112", "999")]
    assert outcomes == ["refused", "refused", "refused", "no_route"]


def test_an_anonymous_callers_number_is_empty_in_the_ivr() -> None:
    assert live(Dialplan(), {}, caller="anonymous").caller == ""
    assert live(Dialplan(), {}).caller == "48221"
