"""B2BUA signalling against a fake stack: CANCEL, a 2xx crossing our CANCEL, re-INVITE glare."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from callcenter.app import Application
from callcenter.calls import flows
from callcenter.calls.b2bua import B2BUA
from callcenter.calls.call import Call, HangupCause, Leg, LegState
from callcenter.calls.flows import trunk_target
from callcenter.config.models import Trunk
from callcenter.sip.auth import DigestAuthenticator
from callcenter.sip.dialog import DialogState, new_branch
from callcenter.sip.events import RequestReceived, TxKey
from callcenter.sip.message import Request, Response, parse_message
from callcenter.sip.stack import RequestTimeout, ServerRequest, SipStack, answer_failure
from callcenter.sip.transaction import TransactionLayer, client_key
from callcenter.sip.useragent import Timers

CALLER = ("127.0.0.1", 5071)
PHONE = ("127.0.0.1", 5072)


class FakeChannel:
    def __init__(self, port: int) -> None:
        self.port = port
        self.closed = False
        self.on_dtmf: Any = None
        self.srtp_key = bytes(range(30))
        self.configured: list[dict[str, Any]] = []
        self.listeners: list[Any] = []

    def add_listener(self, callback: Any) -> None:
        self.listeners.append(callback)

    def configure(self, **kwargs: Any) -> None:
        self.configured.append(kwargs)

    def close(self) -> None:
        self.closed = True


class FakeMedia:
    def __init__(self) -> None:
        self.channels: list[FakeChannel] = []
        self.bridges: list[tuple[FakeChannel, FakeChannel, bool]] = []

    def bridge(self, a: FakeChannel, b: FakeChannel, *, notify: bool = True) -> None:
        self.bridges.append((a, b, notify))

    def open_channel(self, **kwargs: Any) -> FakeChannel:
        self.channels.append(FakeChannel(20000 + 2 * len(self.channels)))
        return self.channels[-1]


class FakeStack:
    """What the B2BUA uses of SipStack; client requests resolve when the test says so."""

    user_agent = ""
    advertised = "127.0.0.1"
    port = 5060

    def __init__(self) -> None:
        self.layer = TransactionLayer(t1=0.5)
        self.requests: list[tuple[Request, asyncio.Future[Response]]] = []
        self.on_provisional: list[Any] = []
        self.on_retransmitted_2xx: list[Any] = []
        self.acks: list[Request] = []

    def answering(self, key: object, status: int) -> None:
        """A response goes out (the real stack times its handlers)."""

    invite_key = staticmethod(SipStack.invite_key)
    server_request = SipStack.server_request
    has_transaction = SipStack.has_transaction

    def now(self) -> float:
        return 0.0

    def flush(self) -> None:
        pass

    def via(self, transport: str, branch: str | None = None) -> str:
        return f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch or new_branch()};rport"

    def contact(self, user: str = "callcenter", transport: str = "udp") -> str:
        return "<sip:callcenter@127.0.0.1:5060>"

    def send_request(
        self, req: Request, dest: Any, transport: str, **kwargs: Any
    ) -> tuple[TxKey, asyncio.Future[Response]]:
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.requests.append((req, fut))
        self.on_provisional.append(kwargs.get("on_provisional"))
        self.on_retransmitted_2xx.append(kwargs.get("on_retransmitted_2xx"))
        return client_key(req.top_via.branch or "", req.method), fut

    def send_ack(self, ack: Request, dest: Any, transport: str) -> None:
        self.acks.append(ack)

    def ring(self, index: int = 0) -> None:
        """The phone answers request ``index`` (an INVITE) with a 180."""
        ringing = ok_for(self.requests[index][0])
        ringing.status, ringing.reason = 180, "Ringing"
        self.on_provisional[index](ringing)

    def methods(self) -> list[str]:
        return [req.method for req, _ in self.requests]

    def wire_statuses(self) -> list[int]:
        """Final statuses sent since the last call (the layer's own 100 Trying left out)."""
        statuses = [int(data.split(b" ", 2)[1]) for data, _, _ in self.layer.datagrams_to_send()]
        return [status for status in statuses if status != 100]


def make_b2bua(timers: Timers | None = None) -> tuple[B2BUA, FakeStack, FakeMedia, list[Call]]:
    stack, media, ended = FakeStack(), FakeMedia(), []
    b2bua = B2BUA(
        stack=stack, media=media, media_address="127.0.0.1",  # type: ignore[arg-type]
        codecs=("PCMU",), on_call_end=ended.append, timers=timers,
    )
    return b2bua, stack, media, ended


def request(method: str, *, branch: str = "z9hG4bKinv1", cseq: int = 1, to_tag: str = "") -> Request:
    to = "<sip:0800@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    raw = (
        f"{method} sip:0800@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=f1\r\n"
        f"To: {to}\r\n"
        "Call-ID: b2bua-1@test\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:caller@127.0.0.1:5071>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def server_request(stack: FakeStack, req: Request) -> ServerRequest:
    stack.layer.receive(req, CALLER, "udp", 0.0)
    event = stack.layer.next_event()
    assert isinstance(event, RequestReceived)
    return ServerRequest(stack, req, CALLER, "udp", event.key)  # type: ignore[arg-type]


async def dispatch(handler: Callable[[ServerRequest], Any], sreq: ServerRequest) -> None:
    """Run a request handler as SipStack does: what it raises is answered by the boundary."""
    try:
        result = handler(sreq)
        if asyncio.iscoroutine(result):
            await result
    except Exception as exc:  # noqa: BLE001 - the stack's boundary takes anything
        answer_failure(sreq, exc)


def inbound_leg(b2bua: B2BUA, stack: FakeStack, media: FakeMedia) -> Leg:
    call = Call(caller="caller", called="0800", source="trunk:pstn")
    leg = b2bua.new_inbound(call, server_request(stack, request("INVITE")), "caller")
    leg.channel = media.open_channel()
    leg.local_sdp = b2bua._offer(leg)
    stack.layer.datagrams_to_send()  # the 100 Trying
    return leg


def test_cancel_of_a_ringing_invite_gets_200_and_the_invite_487() -> None:
    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        b2bua.on_cancel(server_request(stack, request("CANCEL")))
        await asyncio.sleep(0)
        assert sorted(stack.wire_statuses()) == [200, 487]
        assert leg.state is LegState.ENDED and ended == [leg.call]
        assert media.channels[0].closed
        assert not b2bua.pending_invites and not b2bua.calls

    asyncio.run(run())


def test_cancel_after_the_200_gets_200_and_changes_nothing() -> None:
    """RFC 3261 §9.2: the INVITE was answered; the CANCEL is answered 200 and has no effect."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        b2bua.answer(leg)
        assert stack.wire_statuses() == [200]
        b2bua.on_cancel(server_request(stack, request("CANCEL")))
        await asyncio.sleep(0)
        assert stack.wire_statuses() == [200]  # the CANCEL's 200, no 487, no BYE
        assert stack.requests == []
        assert leg.state is LegState.ANSWERED and not ended
        assert not media.channels[0].closed

    asyncio.run(run())


def test_cancel_matching_nothing_gets_481() -> None:
    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        cancel = request("CANCEL", branch="z9hG4bKnone")
        await dispatch(b2bua.on_cancel, server_request(stack, cancel))
        assert stack.wire_statuses() == [481]

    asyncio.run(run())


def test_cancel_before_the_invite_handler_ran_ends_the_call() -> None:
    """Review finding 3: the CANCEL arrives before the INVITE's handler task made a leg.
    It gets 200, the INVITE 487, and the leg the handler then makes is ended at once."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        invite = server_request(stack, request("INVITE", branch="z9hG4bKearly", cseq=5))
        stack.layer.datagrams_to_send()  # the 100 Trying
        b2bua.on_cancel(server_request(stack, request("CANCEL", branch="z9hG4bKearly", cseq=5)))
        assert sorted(stack.wire_statuses()) == [200, 487]
        call = Call(caller="caller", called="0800", source="trunk:pstn")
        leg = b2bua.new_inbound(call, invite, "caller")  # the handler task runs only now
        assert leg.state is LegState.ENDED and invite.answered
        assert call.hangup_cause == "cancelled" and ended == [call]
        assert not b2bua.pending_invites and not b2bua.calls and not b2bua._early_cancels
        b2bua.reject(leg, 404)  # whatever the handler would still do: nothing goes out
        assert stack.wire_statuses() == [] and not media.channels

    asyncio.run(run())


def test_leg_ended_elsewhere_leaves_no_pending_invite() -> None:
    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        b2bua._end_leg(leg)
        assert not b2bua.pending_invites and not b2bua.calls and ended == [leg.call]

    asyncio.run(run())


def ok_for(invite: Request, *, to_tag: str = "ph1") -> Response:
    raw = (
        "SIP/2.0 200 OK\r\n"
        f"Via: {invite.headers.get('Via')}\r\n"
        f"From: {invite.headers.get('From')}\r\n"
        f"To: {invite.headers.get('To')};tag={to_tag}\r\n"
        f"Call-ID: {invite.call_id}\r\n"
        f"CSeq: {invite.cseq[0]} INVITE\r\n"
        "Contact: <sip:1001@127.0.0.1:5072>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Response)
    return msg


def test_a_2xx_crossing_our_cancel_is_acked_and_byed_not_revived() -> None:
    """The agent answers as the call is hung up: one ACK and one BYE, and the leg stays ended."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        call = Call(caller="caller", called="1001", source="trunk:pstn")
        dial = asyncio.ensure_future(b2bua.dial(
            call, target_uri="sip:1001@127.0.0.1:5072", dest=PHONE, transport="udp",
            party="1001", from_user="caller",
        ))
        await asyncio.sleep(0)
        (invite, invite_fut), = stack.requests
        leg = call.legs[0]
        stack.ring()
        hangup = asyncio.ensure_future(b2bua.hangup(leg))  # sends the CANCEL
        await asyncio.sleep(0)
        assert stack.methods() == ["INVITE", "CANCEL"]
        invite_fut.set_result(ok_for(invite))  # the 200 crossed the CANCEL
        stack.requests[1][1].set_result(ok_for(stack.requests[1][0]))
        result = await asyncio.wait_for(dial, 1)
        await asyncio.wait_for(hangup, 1)
        assert result is leg and leg.state is LegState.ENDED
        assert getattr(leg, "sip_status", None) == 487
        assert not b2bua.dialogs
        assert [a.method for a in stack.acks] == ["ACK"]
        assert stack.methods() == ["INVITE", "CANCEL", "BYE"]
        assert media.channels[0].closed

    asyncio.run(run())


def test_reinvite_while_ours_is_pending_gets_491() -> None:
    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        b2bua.answer(leg)
        stack.layer.datagrams_to_send()
        refresh = asyncio.ensure_future(b2bua.refresh(leg))
        await asyncio.sleep(0)
        assert stack.methods() == ["INVITE"]
        tag = b2bua.local_tag(leg)
        theirs = request("INVITE", branch="z9hG4bKre2", cseq=2, to_tag=tag)
        await dispatch(b2bua.on_in_dialog, server_request(stack, theirs))
        assert stack.wire_statuses() == [491]
        ours = stack.requests[0][0]
        stack.requests[0][1].set_result(ok_for(ours, to_tag="f1"))
        assert await asyncio.wait_for(refresh, 1)
        # Our re-INVITE is done: the next one from them is accepted again.
        again = request("INVITE", branch="z9hG4bKre3", cseq=3, to_tag=tag)
        await b2bua.on_in_dialog(server_request(stack, again))
        assert stack.wire_statuses() == [200]

    asyncio.run(run())


def test_fail_call_answers_500_and_closes_everything() -> None:
    """A flow raised: the unanswered caller gets a 500, the ringing agent a CANCEL."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        call = leg.call
        dial = asyncio.ensure_future(b2bua.dial(
            call, target_uri="sip:1001@127.0.0.1:5072", dest=PHONE, transport="udp",
            party="1001", from_user="caller",
        ))
        await asyncio.sleep(0)
        stack.ring()
        failing = asyncio.ensure_future(b2bua.fail_call(call))
        for _ in range(5):  # hangup_call gathers one task per leg
            await asyncio.sleep(0)
        assert stack.wire_statuses() == [500]
        assert stack.methods() == ["INVITE", "CANCEL"]
        stack.requests[1][1].set_result(ok_for(stack.requests[1][0]))
        invite = stack.requests[0][0]
        terminated = ok_for(invite)
        terminated.status, terminated.reason = 487, "Request Terminated"
        stack.requests[0][1].set_result(terminated)
        await asyncio.wait_for(failing, 1)
        await asyncio.wait_for(dial, 1)
        assert all(x.state is LegState.ENDED for x in call.legs)
        assert all(ch.closed for ch in media.channels)
        assert ended == [call] and not b2bua.calls and not b2bua.pending_invites

    asyncio.run(run())


def dial_one(b2bua: B2BUA) -> tuple[Call, asyncio.Future[Leg]]:
    call = Call(caller="caller", called="1001", source="trunk:pstn")
    dial = asyncio.ensure_future(b2bua.dial(
        call, target_uri="sip:1001@127.0.0.1:5072", dest=PHONE, transport="udp",
        party="1001", from_user="caller",
    ))
    return call, dial


def test_no_cancel_before_a_provisional_response() -> None:
    """RFC 3261 §9.1: hung up before the phone sent anything, the CANCEL waits for its 1xx."""

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        hangup = asyncio.ensure_future(b2bua.hangup(call.legs[0]))
        for _ in range(3):
            await asyncio.sleep(0)
        assert stack.methods() == ["INVITE"]
        stack.ring()  # 100 Trying or 180: now the CANCEL may go
        for _ in range(3):
            await asyncio.sleep(0)
        assert stack.methods() == ["INVITE", "CANCEL"]
        stack.requests[1][1].set_result(ok_for(stack.requests[1][0]))
        terminated = ok_for(stack.requests[0][0])
        terminated.status, terminated.reason = 487, "Request Terminated"
        stack.requests[0][1].set_result(terminated)
        await asyncio.wait_for(hangup, 1)
        assert (await asyncio.wait_for(dial, 1)).state is LegState.ENDED

    asyncio.run(run())


def test_final_answer_before_any_1xx_needs_no_cancel() -> None:
    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        hangup = asyncio.ensure_future(b2bua.hangup(call.legs[0]))
        await asyncio.sleep(0)
        busy = ok_for(stack.requests[0][0])
        busy.status, busy.reason = 486, "Busy Here"
        stack.requests[0][1].set_result(busy)
        await asyncio.wait_for(hangup, 1)
        leg = await asyncio.wait_for(dial, 1)
        assert stack.methods() == ["INVITE"]  # nothing left to cancel
        assert leg.state is LegState.ENDED and media.channels[0].closed

    asyncio.run(run())


def test_hangup_after_cancel_is_held_by_the_b2bua() -> None:
    """The hang-up started by a CANCEL is referenced until done (not only weakly by asyncio)."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        leg = inbound_leg(b2bua, stack, media)
        b2bua.on_cancel(server_request(stack, request("CANCEL")))
        assert len(b2bua._tasks) == 1
        await asyncio.gather(*b2bua._tasks)
        assert not b2bua._tasks and ended == [leg.call]

    asyncio.run(run())


class FakeApp:
    """What ``flows.transfer_to_user`` uses of its ``CallServices``."""

    def __init__(self, b2bua: B2BUA) -> None:
        from callcenter.sip.registrar import Binding

        self.b2bua = b2bua
        self.binding = Binding("1001", "sip:1001@127.0.0.1:5072", 1e9, PHONE, "udp", "c", 1)
        self.prompts = self
        self.music = lambda queue: "hold_music"
        self.bridged: list[Any] = []

    def contacts(self, user: str, now: float, *, reachable_only: bool = False) -> list[Any]:
        return [self.binding]

    def offer(self, *_: Any) -> tuple[str, str]:  # the screen pop
        return "", ""

    @property
    def registrar(self) -> FakeApp:
        return self

    def now(self) -> float:
        return 0.0

    def get(self, *args: Any) -> list[bytes]:
        return []

    def answered(self, call: Call, agent: Leg | None) -> None:
        pass


def test_transfer_leaves_no_pending_wait_task() -> None:
    from callcenter.calls import flows

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        media.bridge = lambda a, b: None  # type: ignore[attr-defined]
        media.unbridge = lambda a: None  # type: ignore[attr-defined]
        leg = inbound_leg(b2bua, stack, media)
        leg.channel.play = lambda *a, **k: None
        leg.channel.stop_playing = lambda: None
        b2bua.answer(leg)
        transfer = asyncio.ensure_future(flows.transfer_to_user(FakeApp(b2bua), leg, "1001"))
        for _ in range(5):
            await asyncio.sleep(0)
        invite = stack.requests[0][0]
        sdp_answer = b2bua._offer(leg).serialize().encode()
        ok = ok_for(invite)
        ok.body = sdp_answer
        stack.requests[0][1].set_result(ok)
        for _ in range(5):
            await asyncio.sleep(0)
        agent = leg.call.legs[1]
        assert agent.state is LegState.ANSWERED
        b2bua._end_leg(agent)  # the agent hangs up first; the caller stays
        assert await asyncio.wait_for(transfer, 1) == "answered"
        await asyncio.sleep(0)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in others if not t.done()]

    asyncio.run(run())


def test_dial_failing_to_send_closes_the_channel() -> None:
    """Review finding 8: an INVITE that cannot be built or sent must not leak its RTP ports."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("unparsable contact")

        stack.send_request = refuse  # type: ignore[method-assign]
        call, dial = dial_one(b2bua)
        try:
            await asyncio.wait_for(dial, 1)
        except ValueError:
            pass
        else:
            raise AssertionError("dial() swallowed the error")
        (leg,) = call.legs
        assert leg.state is LegState.ENDED and media.channels[0].closed
        assert ended == [call]

    asyncio.run(run())


def sdp_answer(port: int, direction: str = "sendrecv", version: int = 1) -> bytes:
    return (
        f"v=0\r\no=caller 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    ).encode()


def test_answer_in_the_ack_of_a_reinvite_without_sdp_reaches_the_channel() -> None:
    """Review finding 2: a re-INVITE without SDP gets our offer in the 200; the ACK carries
    the answer (here: hold, new port) and it must be applied, not only for the first offer."""

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call = Call(caller="caller", called="0800", source="trunk:pstn")
        leg = b2bua.new_inbound(call, server_request(stack, request("INVITE")), "caller")
        b2bua.accept_offer(leg)  # no SDP in the INVITE: our offer goes in the 200
        stack.layer.datagrams_to_send()
        configured: list[dict[str, Any]] = []
        leg.channel.configure = lambda **kw: configured.append(kw)
        b2bua.answer(leg)
        tag = b2bua.local_tag(leg)
        ack = request("ACK", branch="z9hG4bKack1", to_tag=tag)
        ack.body = sdp_answer(40000)
        await b2bua.on_in_dialog(server_request(stack, ack))
        assert leg.media is not None and leg.media.remote == ("127.0.0.1", 40000)
        reinvite = request("INVITE", branch="z9hG4bKre1", cseq=2, to_tag=tag)
        await b2bua.on_in_dialog(server_request(stack, reinvite))
        assert stack.wire_statuses() == [200, 200]  # the first 200 and the re-INVITE's
        ack = request("ACK", branch="z9hG4bKack2", cseq=2, to_tag=tag)
        ack.body = sdp_answer(40002, "sendonly", version=2)
        await b2bua.on_in_dialog(server_request(stack, ack))
        assert leg.media.remote == ("127.0.0.1", 40002)
        assert leg.media.direction == "recvonly"  # they hold: we only receive
        assert configured[-1]["remote"] == ("127.0.0.1", 40002)
        assert leg.state is LegState.ANSWERED

    asyncio.run(run())


def test_a_retransmitted_2xx_after_our_cancel_is_acked_again() -> None:
    """Review finding 4: the 200 that crossed our CANCEL comes again (our ACK was lost):
    it is ACKed again, from the dialog ``cancel()`` built for its ACK and BYE."""

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        (invite, invite_fut), = stack.requests
        stack.ring()
        hangup = asyncio.ensure_future(b2bua.hangup(call.legs[0]))
        await asyncio.sleep(0)
        invite_fut.set_result(ok_for(invite))
        stack.requests[1][1].set_result(ok_for(stack.requests[1][0]))
        await asyncio.wait_for(dial, 1)
        await asyncio.wait_for(hangup, 1)
        assert len(stack.acks) == 1
        stack.on_retransmitted_2xx[0](ok_for(invite))
        assert len(stack.acks) == 2
        first, again = stack.acks
        assert again.headers.get("CSeq") == first.headers.get("CSeq") == "1 ACK"
        assert again.headers.get("To") == first.headers.get("To")
        assert stack.methods() == ["INVITE", "CANCEL", "BYE"]  # no second BYE
        assert not b2bua.dialogs

    asyncio.run(run())


def test_in_dialog_requests_follow_the_route_set() -> None:
    """Review finding 1: behind a Record-Routing proxy the ACK and BYE go to the proxy;
    without a route set they keep going to where the signalling came from."""

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        dests: list[tuple[str, Any]] = []
        send_request, send_ack = stack.send_request, stack.send_ack

        def record_request(req: Request, dest: Any, transport: str, **kw: Any) -> Any:
            dests.append((req.method, dest))
            return send_request(req, dest, transport, **kw)

        def record_ack(ack: Request, dest: Any, transport: str) -> None:
            dests.append(("ACK", dest))
            send_ack(ack, dest, transport)

        stack.send_request = record_request  # type: ignore[method-assign]
        stack.send_ack = record_ack  # type: ignore[method-assign]
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        invite = stack.requests[0][0]
        ok = ok_for(invite)
        ok.headers.add("Record-Route", "<sip:192.0.2.7:5070;lr>")
        ok.body = sdp_answer(40000)
        stack.requests[0][1].set_result(ok)
        leg = await asyncio.wait_for(dial, 1)
        hangup = asyncio.ensure_future(b2bua.hangup(leg))
        await asyncio.sleep(0)
        stack.requests[1][1].set_result(ok_for(stack.requests[1][0]))
        await asyncio.wait_for(hangup, 1)
        proxy = ("192.0.2.7", 5070)
        assert dests == [("INVITE", PHONE), ("ACK", proxy), ("BYE", proxy)]
        assert stack.requests[1][0].headers.get("Route") == "<sip:192.0.2.7:5070;lr>"

    asyncio.run(run())


#: T1 1 ms and T4 10 ms: every wait of the B2BUA is over in well under a second
FAST = Timers(t1=0.001, t4=0.01)


def test_the_waits_follow_t1_and_t4() -> None:
    """RFC 3261 defaults give the waits the B2BUA always had; a smaller T1/T4 scales them."""
    default = Timers()
    assert (default.transaction, default.ack, default.cancel, default.crossing_2xx) == (
        32.0, 34.0, 10.0, 5.0)
    assert default.bye == 42.0  # a guard behind Timer F (32 s)
    assert (FAST.transaction, FAST.cancel, FAST.crossing_2xx) == (0.064, 0.02, 0.01)


def test_a_silent_phone_is_cancelled_and_given_up_on_the_timers() -> None:
    """No 1xx within Timer B, no answer to the CANCEL within 2·T4, no 2xx within T4: the
    leg ends on its own (32 + 10 + 5 s with RFC 3261 timers)."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua(FAST)
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        await asyncio.wait_for(b2bua.hangup(call.legs[0]), 5)
        assert stack.methods() == ["INVITE", "CANCEL"]
        assert call.legs[0].state is LegState.ENDED and media.channels[0].closed
        dial.cancel()

    asyncio.run(run())


def test_unanswered_bye_and_refresh_end_on_the_timers() -> None:
    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua(FAST)
        call, dial = dial_one(b2bua)
        await asyncio.sleep(0)
        ok = ok_for(stack.requests[0][0])
        ok.body = sdp_answer(40000)
        stack.requests[0][1].set_result(ok)
        leg = await asyncio.wait_for(dial, 1)
        assert leg.dialog is not None and leg.dialog.state is DialogState.CONFIRMED
        assert not await asyncio.wait_for(b2bua.refresh(leg), 5)  # Timer B: the peer is gone
        await asyncio.wait_for(b2bua.hangup(leg), 5)  # the BYE's guard
        assert stack.methods() == ["INVITE", "INVITE", "BYE"]
        assert leg.dialog.state is DialogState.TERMINATED

    asyncio.run(run())


def challenge_for(invite: Request, carrier: DigestAuthenticator, status: int = 407) -> Response:
    """The carrier's 407 (or 401) to ``invite``, with its digest challenges."""
    header = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    resp = ok_for(invite, to_tag="carrier1")
    resp.status, resp.reason = status, "Authentication Required"
    resp.headers.remove("Contact")
    for value in carrier.challenge(0.0):
        resp.headers.add(header, value)
    return resp


@pytest.mark.parametrize("status", [407, 401])
def test_a_trunk_challenge_is_answered_once_with_credentials(status: int) -> None:
    """The INVITE goes again with CSeq + 1, the same Call-ID, From and To, a new branch and
    credentials the carrier accepts; a second challenge ends the leg with its status."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        carrier = DigestAuthenticator("carrier.test", secret=b"k" * 16)
        call = Call(caller="0800123456", called="48600111222", source="dialer")
        dial = asyncio.ensure_future(b2bua.dial(
            call, target_uri="sip:+48600111222@127.0.0.1:5090", dest=PHONE, transport="udp",
            party="+48600111222", from_user="0800123456", auth=("acme", "s3cret"),
        ))
        await asyncio.sleep(0)
        (first, first_fut), = stack.requests
        first_fut.set_result(challenge_for(first, carrier, status))
        for _ in range(5):
            await asyncio.sleep(0)
        assert stack.methods() == ["INVITE", "INVITE"]
        second, second_fut = stack.requests[1]
        assert second.cseq == (first.cseq[0] + 1, "INVITE")
        assert second.call_id == first.call_id and second.uri == first.uri
        assert second.headers.get("From") == first.headers.get("From")
        assert second.headers.get("To") == first.headers.get("To")  # no tag: a new request
        assert second.top_via.branch != first.top_via.branch
        assert second.body == first.body
        name = "Proxy-Authorization" if status == 407 else "Authorization"
        result = carrier.verify(second.headers.get(name) or "", method="INVITE",
                                lookup_password={"acme": "s3cret"}.get, now=1.0)
        assert result.ok and result.username == "acme", result
        second_fut.set_result(challenge_for(second, carrier, status))  # refused again
        leg = await asyncio.wait_for(dial, 1)
        assert leg.state is LegState.ENDED and leg.sip_status == status
        assert stack.methods() == ["INVITE", "INVITE"]
        assert media.channels[0].closed

    asyncio.run(run())


def test_a_challenge_without_credentials_ends_the_leg() -> None:
    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call = Call(caller="0800123456", called="48600111222", source="dialer")
        dial = asyncio.ensure_future(b2bua.dial(
            call, target_uri="sip:+48600111222@127.0.0.1:5090", dest=PHONE, transport="udp",
            party="+48600111222", from_user="0800123456",
        ))
        await asyncio.sleep(0)
        (invite, fut), = stack.requests
        fut.set_result(challenge_for(invite, DigestAuthenticator("c", secret=b"k" * 16)))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.sip_status == 407 and stack.methods() == ["INVITE"]

    asyncio.run(run())


def answer(invite: Request, status: int) -> Response:
    resp = ok_for(invite)
    resp.status, resp.reason = status, "Answer"
    if status == 200:
        resp.body = sdp_answer(40000)
    return resp


TRUNKS = [
    Trunk(name="a", addresses=["10.0.0.1"], host="127.0.0.1", port=5091, failover=["b", "c"]),
    Trunk(name="b", addresses=["10.0.0.2"], host="127.0.0.2", port=5092,
          number_format="national"),
    Trunk(name="c", addresses=["10.0.0.3"], host="127.0.0.3", port=5093, country="US",
          number_format="international"),
]


@pytest.mark.parametrize(("number_format", "country", "user"), [
    ("e164", "PL", "+48221234567"), ("international", "PL", "0048221234567"),
    ("national", "PL", "221234567"), ("national", "US", "01148221234567"),
])
def test_a_trunk_gets_the_number_in_its_format(number_format: str, country: str,
                                                user: str) -> None:
    trunk = Trunk(name="t", addresses=["10.0.0.1"], number_format=number_format, country=country)
    target = trunk_target(trunk, "+48221234567", ())
    assert target["target_uri"] == f"sip:{user}@127.0.0.1:5080" and target["to_user"] == user
    assert target["party"] == "+48221234567" and "failover" not in target

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call = Call(caller="0800123456", called="+48221234567", source="dialer")
        dial = asyncio.ensure_future(b2bua.dial(call, **target, from_user="0800123456"))
        await asyncio.sleep(0)
        (invite, fut), = stack.requests
        assert str(invite.uri) == f"sip:{user}@127.0.0.1:5080"
        assert f"<sip:{user}@" in (invite.headers.get("To") or "")
        fut.set_result(answer(invite, 486))
        await asyncio.wait_for(dial, 1)

    asyncio.run(run())


@pytest.mark.parametrize("flow", ["dial_out", "transfer_to_number"])
def test_a_phones_call_out_and_a_transfer_out_carry_the_trunks_failover(flow: str) -> None:
    """The dialplan's outside calls fail over like the dialer's: the trunks come from the
    services (before, the failover list was empty and a 503 ended the call)."""
    dialled: dict[str, Any] = {}

    async def dial_unless(ended: object, call: object, **kwargs: Any) -> None:
        dialled.update(kwargs)

    services: Any = SimpleNamespace(b2bua=SimpleNamespace(dial_unless=dial_unless),
                                    trunks=lambda: TRUNKS)
    leg: Any = SimpleNamespace(ended=None, channel=None,
                               call=SimpleNamespace(called="0221234567", flow_owned=False))
    if flow == "dial_out":
        asyncio.run(flows.dial_out(services, leg, TRUNKS[0], caller_id="0800123456"))
    else:
        asyncio.run(flows.transfer_to_number(services, leg, TRUNKS[0], "0221234567",
                                             caller_id="0800123456"))
    assert dialled["trunk"] == "a" and [t["trunk"] for t in dialled["failover"]] == ["b", "c"]


def dial_with_failover(b2bua: B2BUA) -> tuple[Call, asyncio.Future[Leg]]:
    call = Call(caller="0800123456", called="+48221234567", source="dialer")
    target = trunk_target(TRUNKS[0], "+48221234567", TRUNKS)
    return call, asyncio.ensure_future(b2bua.dial(call, **target, from_user="0800123456"))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("failure", ["503", "timer-b"])
def test_a_failing_trunk_fails_over_to_the_next_in_order(failure: str) -> None:
    """A 503 (or a transport error, which reads as one) or no answer at all tries the next
    trunk, in its own number format; the call lives on and ends once, with the last leg."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        call, dial = dial_with_failover(b2bua)
        await settle()
        for i in (0, 1):
            invite, fut = stack.requests[i]
            if failure == "503":
                fut.set_result(answer(invite, 503))
            else:
                fut.set_exception(RequestTimeout("INVITE"))
            await settle()
        assert [str(req.uri) for req, _ in stack.requests] == [
            "sip:+48221234567@127.0.0.1:5091", "sip:221234567@127.0.0.2:5092",
            "sip:01148221234567@127.0.0.3:5093"]
        assert not ended and not call.done.is_set()
        invite, fut = stack.requests[2]
        fut.set_result(answer(invite, 200))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.state is LegState.ANSWERED and leg.peer == ("127.0.0.3", 5093)
        assert call.legs == [leg] and not ended
        assert [c.closed for c in media.channels] == [True, True, False]
        # the CDR names the trunk that carried the call and its Call-ID, not the first's
        carried = invite.call_id
        assert carried != stack.requests[0][0].call_id
        assert Application._carrier(call) == {
            "trunk": "c", "trunk_call_id": carried, "sip_call_id": carried}

    asyncio.run(run())


@pytest.mark.parametrize("status", [486, 404, 480, 408, 603])
def test_the_callees_answer_does_not_fail_over(status: int) -> None:
    """A 4xx or 6xx is the callee's answer (a 408 after a 1xx: it rang out): final."""

    async def run() -> None:
        b2bua, stack, media, ended = make_b2bua()
        call, dial = dial_with_failover(b2bua)
        await settle()
        stack.ring()
        (invite, fut), = stack.requests
        fut.set_result(answer(invite, status))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.state is LegState.ENDED and leg.sip_status == status
        assert stack.methods() == ["INVITE"] and call.legs == [leg]
        assert ended == [call] and media.channels[0].closed

    asyncio.run(run())


def test_the_last_trunks_failure_ends_the_call_once() -> None:
    async def run() -> None:
        b2bua, stack, _, ended = make_b2bua()
        call, dial = dial_with_failover(b2bua)
        for i in range(3):
            await settle()
            invite, fut = stack.requests[i]
            fut.set_result(answer(invite, 503))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.sip_status == 503 and len(stack.requests) == 3
        assert ended == [call] and call.legs == [leg] and not b2bua.live_legs

    asyncio.run(run())


def test_no_failover_once_the_call_is_hung_up() -> None:
    async def run() -> None:
        b2bua, stack, _, ended = make_b2bua()
        call, dial = dial_with_failover(b2bua)
        await settle()
        call.hangup_cause = HangupCause.CANCELLED  # hangup_call's first step, as the 503 came
        (invite, fut), = stack.requests
        fut.set_result(answer(invite, 503))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.sip_status == 503 and stack.methods() == ["INVITE"] and ended == [call]

    asyncio.run(run())


@pytest.mark.parametrize(("caller", "trunk", "from_", "privacy", "asserted"), [
    # a number goes out in the trunk's format, asserted only to a trusted trunk
    ("0221234567", {"number_format": "national"}, '<sip:221234567@127.0.0.1>', None, None),
    ("+48221234567", {"trusted": True}, "<sip:+48221234567@127.0.0.1>", None,
     "<sip:+48221234567@127.0.0.1>"),
    # an extension is no number: the trunk's caller_id stands in
    ("1001", {"caller_id": {"number": "0800123456", "name": "Acme"}},
     '"Acme" <sip:+48800123456@127.0.0.1>', None, None),
    ("1001", {}, "<sip:1001@127.0.0.1>", None, None),
    # anonymous: RFC 3323's From and Privacy: id, the trunk's number asserted for billing
    ("anonymous", {"caller_id": {"number": "+48800123456"}},
     '"Anonymous" <sip:anonymous@anonymous.invalid>', "id", "<sip:+48800123456@127.0.0.1>"),
])
def test_the_trunk_is_told_the_caller_by_its_rules(
        caller: str, trunk: dict[str, Any], from_: str, privacy: str | None,
        asserted: str | None) -> None:
    target = trunk_target(Trunk(name="t", addresses=["10.0.0.1"], **trunk), "+48221234567",
                          ())

    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        call = Call(caller=caller, called="+48221234567", source="user:1001")
        dial = asyncio.ensure_future(b2bua.dial(call, **target, from_user=caller))
        await asyncio.sleep(0)
        (invite, fut), = stack.requests
        assert (invite.headers.get("From") or "").startswith(from_ + ";tag=")
        assert invite.headers.get("Privacy") == privacy
        assert invite.headers.get("P-Asserted-Identity") == asserted
        fut.set_result(answer(invite, 486))
        await asyncio.wait_for(dial, 1)

    asyncio.run(run())


def test_a_full_trunk_fails_over_and_the_last_full_one_fails_without_an_invite() -> None:
    """``max_channels`` counts the trunk's legs not ended, both ways: over it a target reads
    as a 503 (next trunk) without an INVITE; the leg that carried the call names its trunk."""
    trunks = [TRUNKS[0].model_copy(update={"max_channels": 1, "failover": ["b"]}),
              TRUNKS[1].model_copy(update={"max_channels": 1})]

    async def run() -> None:
        b2bua, stack, _, ended = make_b2bua()
        busy = Call(caller="x", called="y", source="trunk:a")
        b2bua.live_legs[0] = Leg(busy, "inbound", ("10.0.0.1", 5060), "udp", "x", trunk="a")
        call = Call(caller="0800123456", called="+48221234567", source="dialer")
        dial = asyncio.ensure_future(b2bua.dial(
            call, **trunk_target(trunks[0], "+48221234567", trunks), from_user="0800123456"))
        await settle()
        (invite, fut), = stack.requests
        assert str(invite.uri) == "sip:221234567@127.0.0.2:5092"
        assert b2bua.trunk_full("b", 1) and not b2bua.trunk_full("b", 2)
        fut.set_result(answer(invite, 200))
        leg = await asyncio.wait_for(dial, 1)
        assert leg.state is LegState.ANSWERED and leg.trunk == "b" and call.legs == [leg]
        again = Call(caller="0800123456", called="+48221234568", source="dialer")
        failed = await asyncio.wait_for(b2bua.dial(
            again, **trunk_target(trunks[0], "+48221234568", trunks), from_user="1"), 1)
        assert failed.sip_status == 503 and len(stack.requests) == 1 and ended == [again]

    asyncio.run(run())


KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"  # 30 octets, RFC 4568's example


@pytest.mark.parametrize(("transport", "policy", "srtp"), [
    ("tls", "optional", True), ("udp", "optional", False), ("udp", "required", True),
    ("tls", "off", False)])
def test_srtp_per_leg_policy_and_transport(transport: str, policy: str, srtp: bool) -> None:
    """An AVP offer with a=crypto gets SRTP on a TLS leg (optional policy) or a required one;
    keys are never answered over clear-text signalling unless the policy requires SRTP."""
    b2bua, stack, media, _ = make_b2bua()
    b2bua.srtp_policy = lambda leg: policy
    invite = request("INVITE")
    invite.body = sdp_answer(40000).replace(
        b"a=sendrecv", f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\na=sendrecv".encode())
    sreq = server_request(stack, invite)
    sreq.transport = transport
    leg = b2bua.new_inbound(Call("caller", "0800", source="trunk:pstn"), sreq, "caller")
    b2bua.accept_offer(leg)
    assert leg.local_sdp is not None
    answer = leg.local_sdp.serialize()
    config = media.channels[0].configured[-1]
    if srtp:
        ours = base64.b64encode(bytes(range(30))).decode()
        assert f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{ours}" in answer
        assert config["srtp"] == ("AES_CM_128_HMAC_SHA1_32", base64.b64decode(KEY))
    else:
        assert "a=crypto" not in answer and config["srtp"] is None
    offer = b2bua._offer(leg).serialize()  # what we offer this leg when we call it
    assert ("a=crypto:1 AES_CM_128_HMAC_SHA1_80" in offer) is srtp
    assert ("RTP/SAVP" in offer) is (policy == "required")


def test_the_leg_of_a_channel_and_the_partner_come_from_an_index_until_the_leg_ends() -> None:
    async def run() -> None:
        b2bua, stack, _, _ = make_b2bua()
        legs = []
        for branch in ("z9hG4bKa", "z9hG4bKb"):
            invite = request("INVITE", branch=branch)
            invite.headers.set("Call-ID", f"{branch}@test")
            call = Call(caller="caller", called="0800", source="trunk:pstn")
            legs.append(b2bua.new_inbound(call, server_request(stack, invite), "caller"))
            b2bua.accept_offer(legs[-1])
        a, b = legs
        a.channel.peer, b.channel.peer = b.channel, a.channel  # type: ignore[union-attr]
        assert b2bua.leg_of(a.channel) is a and b2bua.leg_of(b.channel) is b
        assert b2bua.partner(a) is b and b2bua.partner(b) is a
        assert id(b.channel) in b2bua._by_channel
        b2bua._end_leg(b)
        assert b2bua.partner(a) is None and id(b.channel) not in b2bua._by_channel

    asyncio.run(run())


def test_an_answered_leg_is_refreshed_each_period_and_an_ended_one_never() -> None:
    """The session refresh is a timer per answered leg (no task until it is due): a
    re-INVITE each ``session_refresh``, none once the leg ended."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        b2bua.session_refresh = 0.05
        leg = inbound_leg(b2bua, stack, media)
        b2bua.answer(leg)
        assert leg.refresh_timer is not None and not b2bua._tasks
        for n in (1, 2):
            for _ in range(200):  # bounded: the refresh comes within a few periods
                if len(stack.requests) == n:
                    break
                await asyncio.sleep(0.01)
            req, fut = stack.requests[-1]
            assert req.method == "INVITE" and len(stack.requests) == n
            fut.set_result(ok_for(req, to_tag="f1"))
        for _ in range(200):
            if leg.refresh_timer is not None and not b2bua._tasks:
                break
            await asyncio.sleep(0.01)
        b2bua._end_leg(leg)
        assert leg.refresh_timer is None
        await asyncio.sleep(0.15)  # three periods: nothing more is sent
        assert len(stack.requests) == 2

    asyncio.run(run())


@pytest.mark.parametrize("ring_through", [True, False])
@pytest.mark.parametrize("early_sdp", [True, False])
def test_early_media_reaches_a_ring_through_caller_in_a_183_and_the_bridge(
        ring_through: bool, early_sdp: bool) -> None:
    """The callee's 18x with SDP (early media): a ring-through caller gets a 183 with our
    answer to its offer (To tag of the later 200) and the channels are bridged, quietly (no
    conversation yet); the 200's SDP is applied as usual. A 18x without SDP stays a 180; an
    answered caller (no ring-through) is not told and nothing is bridged."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        caller = inbound_leg(b2bua, stack, media)

        async def answer(leg: Leg) -> bool:
            return True

        ringing = flows._ringing(b2bua, caller, answer if ring_through else None)
        dial = asyncio.ensure_future(b2bua.dial(
            caller.call, target_uri="sip:1001@127.0.0.1:5072", dest=PHONE, transport="udp",
            party="1001", from_user="caller", **ringing))
        await asyncio.sleep(0)
        (invite, invite_fut), = stack.requests
        callee = caller.call.legs[1]
        progress = ok_for(invite)
        progress.status, progress.reason = 183, "Session Progress"
        progress.body = sdp_answer(40000) if early_sdp else b""
        stack.on_provisional[0](progress)
        sent = [parse_message(data) for data, _, _ in stack.layer.datagrams_to_send()]
        early = ring_through and early_sdp
        assert [r.status for r in sent if isinstance(r, Response)] == (
            [183] if early else [180] if ring_through else [])
        assert callee.state is LegState.RINGING
        if early:
            assert sent[0].body == caller.local_sdp.serialize().encode()  # type: ignore[union-attr]
            assert sent[0].to_tag == b2bua.local_tag(caller)
            assert media.bridges == [(caller.channel, callee.channel, False)]
            assert callee.channel.configured[-1]["remote"] == ("127.0.0.1", 40000)
        else:
            assert not media.bridges and not callee.channel.configured and callee.media is None
        answered = ok_for(invite)
        answered.body = sdp_answer(40002, version=2)  # the final answer may differ
        invite_fut.set_result(answered)
        assert await asyncio.wait_for(dial, 1) is callee and callee.state is LegState.ANSWERED
        assert callee.channel.configured[-1]["remote"] == ("127.0.0.1", 40002)
        b2bua.answer(caller)
        (ok,) = [parse_message(data) for data, _, _ in stack.layer.datagrams_to_send()]
        assert isinstance(ok, Response) and ok.status == 200
        assert ok.to_tag == b2bua.local_tag(caller)

    asyncio.run(run())


def test_a_callee_failing_after_early_media_ends_its_leg_and_channel() -> None:
    """Busy after the 183: the callee's channel closes (which ends the bridge); the caller's
    INVITE is left for the flow to answer (its busy, or a prompt)."""

    async def run() -> None:
        b2bua, stack, media, _ = make_b2bua()
        caller = inbound_leg(b2bua, stack, media)
        dial = asyncio.ensure_future(b2bua.dial(
            caller.call, target_uri="sip:1001@127.0.0.1:5072", dest=PHONE, transport="udp",
            party="1001", from_user="caller",
            on_early=lambda callee: b2bua.early_media(caller, callee)))
        await asyncio.sleep(0)
        (invite, invite_fut), = stack.requests
        progress = ok_for(invite)
        progress.status, progress.reason, progress.body = 183, "Session Progress", sdp_answer(4)
        stack.on_provisional[0](progress)
        assert stack.wire_statuses() == [183] and len(media.bridges) == 1
        busy = ok_for(invite)
        busy.status, busy.reason = 486, "Busy Here"
        invite_fut.set_result(busy)
        callee = await asyncio.wait_for(dial, 1)
        assert callee.state is LegState.ENDED and callee.sip_status == 486
        assert callee.channel.closed and not caller.channel.closed
        assert not caller.invite.answered and stack.wire_statuses() == []  # type: ignore[union-attr]

    asyncio.run(run())
