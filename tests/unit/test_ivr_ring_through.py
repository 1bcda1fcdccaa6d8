"""A ring-through line's caller (``LiveCall`` with ``answer``): answered once, by the first
step that needs the line; refused with the failed transfer's status when the flow hangs up
before that."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from callcenter.calls.call import HangupCause, LegState
from callcenter.calls.ivr_call import LiveCall
from ivr.engine import CallerHungUp


class FakeB2BUA:
    def __init__(self) -> None:
        self.rejected: list[int] = []

    def reject(self, leg: Any, error: Any) -> None:
        self.rejected.append(error.status)
        leg.state = LegState.ENDED

    async def hangup_call(self, call: Any, cause: HangupCause, side: str) -> None:
        if call.hangup_cause is None:
            call.hangup_cause = cause


def ringing(confirm: bool = True) -> tuple[LiveCall, list[Any], FakeB2BUA]:
    leg: Any = SimpleNamespace(state=LegState.RINGING, dtmf=asyncio.Queue(), call=SimpleNamespace(
        id="c1", caller="48221", called="0800", hangup_cause=None, hangup_side=None))
    answered: list[Any] = []

    async def answer(x: Any) -> bool:
        answered.append(x)
        x.state = LegState.ANSWERED
        return confirm

    b2bua = FakeB2BUA()
    services: Any = SimpleNamespace(b2bua=b2bua)
    return LiveCall(services, leg, queues=None, answer=answer), answered, b2bua


def test_the_first_step_that_needs_the_line_answers_it_once() -> None:
    call, answered, _ = ringing()
    assert asyncio.run(call.get_digit(0)) is None
    assert asyncio.run(call.get_digit(0)) is None
    assert len(answered) == 1 and call.leg.state is LegState.ANSWERED


def test_a_caller_that_never_confirms_the_answer_has_gone() -> None:
    call, answered, _ = ringing(confirm=False)
    with pytest.raises(CallerHungUp):
        asyncio.run(call.get_digit(0))
    assert len(answered) == 1


def test_hanging_up_unanswered_after_a_busy_transfer_passes_the_busy_on() -> None:
    call, answered, b2bua = ringing()
    assert call._failed("busy") == "busy"
    asyncio.run(call.hangup())
    assert b2bua.rejected == [486] and not answered
    assert call.leg.call.hangup_cause is HangupCause.BUSY


def test_hanging_up_unanswered_without_a_transfer_is_480_and_a_normal_end() -> None:
    call, answered, b2bua = ringing()
    asyncio.run(call.hangup())
    assert b2bua.rejected == [480] and not answered
    assert call.leg.call.hangup_cause is HangupCause.NORMAL
