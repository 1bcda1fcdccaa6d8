"""Parallel forking (``B2BUA.dial_fork``) against the fake stack of test_b2bua_core: every
contact of a user rings at once, the first 2xx wins, the other branches are CANCELled (or
BYEd when they answer too late) and release their channels."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.calls.call import Call, LegState
from callcenter.sip.message import Request, Response
from callcenter.sip.registrar import Binding
from tests.unit.test_b2bua_core import make_b2bua, ok_for, sdp_answer

DESK = ("127.0.0.1", 5072)
SOFT = ("127.0.0.1", 5074)
PHONES = [
    Binding("1001", "sip:1001@127.0.0.1:5072", 1e9, DESK, "udp", "c1", 1),
    Binding("1001", "sip:1001@127.0.0.1:5074", 1e9, SOFT, "udp", "c2", 1),
]


def final(invite: Request, status: int, *, to_tag: str = "ph1") -> Response:
    resp = ok_for(invite, to_tag=to_tag)
    resp.status, resp.reason = status, "Whatever"
    if status == 200:
        resp.body = sdp_answer(40000)
    return resp


async def settle(rounds: int = 8) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class Fork:
    """One ``dial_fork`` of 1001's desk phone and softphone, and what it did."""

    def __init__(self, bindings: list[Binding] = PHONES, **kwargs: Any) -> None:
        self.b2bua, self.stack, self.media, self.ended = make_b2bua()
        self.call = Call(caller="caller", called="1001", source="trunk:pstn")
        self.rang = 0
        self.task = asyncio.ensure_future(self.b2bua.dial_fork(
            self.call, bindings, party="1001", from_user="caller", on_ringing=self.ringing,
            **kwargs,
        ))

    def ringing(self) -> None:
        self.rang += 1

    def sent(self, method: str) -> list[tuple[int, Request, asyncio.Future[Response]]]:
        return [(i, r, f) for i, (r, f) in enumerate(self.stack.requests) if r.method == method]

    def answer(self, index: int, status: int, to_tag: str = "ph1") -> None:
        """The phone of INVITE ``index`` sends its final response."""
        _, invite, fut = self.sent("INVITE")[index]
        fut.set_result(final(invite, status, to_tag=to_tag))

    def finish_cancels(self) -> None:
        """Every phone CANCELled answers the CANCEL 200 and its INVITE 487."""
        for _, cancel, fut in self.sent("CANCEL"):
            if not fut.done():
                fut.set_result(final(cancel, 200))
                _, invite, invite_fut = next(
                    x for x in self.sent("INVITE") if x[1].top_via.branch == cancel.top_via.branch)
                if not invite_fut.done():
                    invite_fut.set_result(final(invite, 487))

    async def done(self) -> None:
        await asyncio.gather(*self.b2bua._tasks)


def test_every_contact_rings_and_the_first_answer_wins() -> None:
    async def run() -> None:
        f = Fork()
        await settle()
        invites = f.sent("INVITE")
        assert [r.uri for _, r, _ in invites] == [b.contact for b in PHONES]
        assert len({r.call_id for _, r, _ in invites}) == 2  # two dialogs, not one
        f.stack.ring(invites[0][0])
        f.stack.ring(invites[1][0])
        assert f.rang == 1  # the caller hears one 180, not one per phone
        f.answer(1, 200)  # the softphone picks up
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.state is LegState.ANSWERED and leg.peer == SOFT
        assert f.call.legs == [leg]
        await settle()
        assert [r.uri for _, r, _ in f.sent("CANCEL")] == [PHONES[0].contact]
        f.finish_cancels()
        await f.done()
        desk_channel, soft_channel = f.media.channels
        assert desk_channel.closed and not soft_channel.closed
        assert list(f.b2bua.live_legs.values()) == [leg]
        assert list(f.b2bua.dialogs.values()) == [leg]
        assert not f.ended  # the loser ending is not the call ending
        assert f.stack.methods().count("BYE") == 0

    asyncio.run(run())


def test_a_2xx_crossing_the_cancel_is_acked_and_byed() -> None:
    async def run() -> None:
        f = Fork()
        await settle()
        f.stack.ring(0)
        f.stack.ring(1)
        f.answer(0, 200, to_tag="desk")
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.peer == DESK
        await settle()
        (_, cancel, cancel_fut), = f.sent("CANCEL")
        f.answer(1, 200, to_tag="soft")  # the softphone answered as the CANCEL went out
        cancel_fut.set_result(final(cancel, 200))
        await settle()
        await f.done()
        byes = f.sent("BYE")
        assert len(byes) == 1 and byes[0][1].to_tag == "soft"
        assert sorted(a.to_tag or "" for a in f.stack.acks) == ["desk", "soft"]
        assert f.media.channels[1].closed and not f.media.channels[0].closed
        assert f.call.legs == [leg] and list(f.b2bua.dialogs.values()) == [leg]

    asyncio.run(run())


def test_two_answers_at_once_the_first_contact_wins_the_other_gets_a_bye() -> None:
    async def run() -> None:
        f = Fork()
        await settle()
        f.answer(1, 200, to_tag="soft")
        f.answer(0, 200, to_tag="desk")
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.peer == DESK  # the binding order (highest q first) breaks the tie
        await settle()
        bye = f.sent("BYE")
        assert not f.sent("CANCEL") and len(bye) == 1 and bye[0][1].to_tag == "soft"
        bye[0][2].set_result(final(bye[0][1], 200))
        await f.done()
        assert f.media.channels[1].closed and f.call.legs == [leg]

    asyncio.run(run())


def test_all_busy_is_busy() -> None:
    async def run() -> None:
        f = Fork()
        await settle()
        f.answer(0, 486)
        f.answer(1, 486)
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.state is LegState.ENDED and leg.sip_status == 486
        assert f.call.legs == [leg] and f.ended == [f.call]
        assert all(ch.closed for ch in f.media.channels) and not f.b2bua.live_legs

    asyncio.run(run())


def test_one_busy_one_ringing_out_is_no_answer() -> None:
    async def run() -> None:
        f = Fork(timeout=0.05)
        await settle()
        f.answer(0, 486)  # the desk phone is on another call
        f.stack.ring(1)  # the softphone rings until the timeout
        for _ in range(500):  # bounded: the ring timeout's CANCEL, however loaded the box
            if f.sent("CANCEL"):
                break
            await asyncio.sleep(0.01)
        f.finish_cancels()
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.state is LegState.ENDED and leg.sip_status == 408 and leg.peer == SOFT
        assert f.call.legs == [leg] and f.ended == [f.call] and f.rang == 1
        assert all(ch.closed for ch in f.media.channels) and not f.b2bua.live_legs

    asyncio.run(run())


def test_giving_up_cancels_every_branch() -> None:
    """The caller hangs up while both phones ring: each gets a CANCEL, nothing is left."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        call = Call(caller="caller", called="1001", source="trunk:pstn")
        gone = asyncio.Event()
        task = asyncio.ensure_future(b2bua.dial_fork_unless(
            gone, call, PHONES, party="1001", from_user="caller"))
        await settle()
        stack.ring(0)
        stack.ring(1)
        gone.set()
        await settle()
        assert stack.methods() == ["INVITE", "INVITE", "CANCEL", "CANCEL"]
        for (cancel, fut), (invite, invite_fut) in zip(
                stack.requests[2:], stack.requests[:2], strict=True):
            fut.set_result(final(cancel, 200))
            invite_fut.set_result(final(invite, 487))
        assert await asyncio.wait_for(task, 1) is None
        assert all(x.state is LegState.ENDED for x in call.legs)
        assert all(ch.closed for ch in media.channels) and not b2bua.live_legs
        assert ended == [call]

    asyncio.run(run())


def test_a_branch_that_cannot_be_sent_does_not_stop_the_others() -> None:
    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        send = stack.send_request

        def refuse_desk(req: Request, dest: Any, transport: str, **kw: Any) -> Any:
            if dest == DESK:
                raise ValueError("unparsable contact")
            return send(req, dest, transport, **kw)

        stack.send_request = refuse_desk  # type: ignore[method-assign]
        call = Call(caller="caller", called="1001", source="trunk:pstn")
        task = asyncio.ensure_future(b2bua.dial_fork(
            call, PHONES, party="1001", from_user="caller"))
        await settle()
        (invite, fut), = stack.requests
        fut.set_result(final(invite, 200))
        leg = await asyncio.wait_for(task, 1)
        assert leg.state is LegState.ANSWERED and leg.peer == SOFT
        await asyncio.gather(*b2bua._tasks)
        assert call.legs == [leg] and media.channels[0].closed

    asyncio.run(run())


def test_one_contact_is_a_plain_dial() -> None:
    async def run() -> None:
        f = Fork(PHONES[:1])
        await settle()
        assert f.stack.methods() == ["INVITE"]
        f.stack.ring(0)
        f.answer(0, 200)
        leg = await asyncio.wait_for(f.task, 1)
        assert leg.state is LegState.ANSWERED and f.call.legs == [leg] and f.rang == 1
        assert not f.b2bua._tasks

    asyncio.run(run())



def test_cancelled_just_after_a_branch_answered_that_branch_gets_a_bye() -> None:
    """The queue cancels the ring as the phone's 2xx was already handled: no live leg left
    behind, and the phone is not left talking to nobody."""

    async def run() -> None:
        f = Fork()
        await settle()
        f.stack.ring(0)
        f.stack.ring(1)
        desk_dial = next(
            t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "B2BUA._dial_leg"
            and t.get_coro().cr_frame.f_locals["leg"].peer == DESK)  # type: ignore[union-attr]
        # runs after asyncio.wait's own callback: the fork is woken, not yet resumed
        desk_dial.add_done_callback(lambda _: f.task.cancel())
        f.answer(0, 200, to_tag="desk")
        await settle()
        assert [r.uri for _, r, _ in f.sent("CANCEL")] == [PHONES[1].contact]
        f.finish_cancels()  # the softphone's branch ends: the fork's CancelledError goes on
        try:
            await asyncio.wait_for(f.task, 1)
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("dial_fork swallowed its cancellation")
        await settle()
        (_, bye, fut), = f.sent("BYE")
        assert bye.to_tag == "desk"
        fut.set_result(final(bye, 200))
        await f.done()
        assert all(x.state is LegState.ENDED for x in f.call.legs)
        assert all(ch.closed for ch in f.media.channels) and not f.b2bua.live_legs
        assert not f.b2bua.dialogs and f.ended == [f.call]

    asyncio.run(run())
