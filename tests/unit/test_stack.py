"""The asyncio layer over the transaction layer: no sockets, the transports' send is captured."""

from __future__ import annotations

import asyncio
import io

import pytest

from callcenter.log import configure_logging
from callcenter.sip.events import AckTimeout, TransactionTimeout
from callcenter.sip.message import Request, Response, make_response, parse_message, serialize
from callcenter.sip.stack import RequestTimeout, ServerRequest, SipStack

PEER = ("127.0.0.1", 5072)
T1 = 0.01  # Timers M/L/H = 64*T1 = 0.64 s


def invite(branch: str = "z9hG4bKstack1", cseq: int = 1) -> Request:
    raw = (
        f"INVITE sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5072;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=f1\r\n"
        "To: <sip:1001@127.0.0.1>\r\n"
        f"Call-ID: stack-{branch}@test\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        "Contact: <sip:caller@127.0.0.1:5072>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def make_stack(handler: object = None, **callbacks: object) -> tuple[SipStack, list[bytes]]:
    configure_logging("info", "console", stream=io.StringIO())
    sent: list[bytes] = []
    stack = SipStack(
        host="127.0.0.1", port=5060, advertised="127.0.0.1", transports=["udp"],
        handler=handler or (lambda sreq: None),  # type: ignore[arg-type]
        on_ack_timeout=callbacks.get("on_ack_timeout") or (lambda e: None),  # type: ignore[arg-type]
        on_server_timeout=callbacks.get("on_server_timeout"),  # type: ignore[arg-type]
        t1=T1,
    )
    stack.loop = asyncio.get_running_loop()
    stack.transports.send = lambda data, dest, transport: sent.append(data)  # type: ignore[method-assign]
    return stack, sent


def test_answered_invite_is_forgotten_after_timer_m() -> None:
    """The 2xx of an INVITE is kept for its retransmissions, then dropped: no entry per call."""

    async def run() -> None:
        stack, _ = make_stack()
        req = invite()
        again: list[Response] = []
        key, fut = stack.send_request(req, PEER, "udp", on_retransmitted_2xx=again.append)
        ok = make_response(req, 200, to_tag="t1")
        stack._on_message(serialize(ok), PEER, "udp")
        assert (await fut).status == 200
        stack._on_message(serialize(ok), PEER, "udp")
        assert len(again) == 1  # retransmitted 2xx still reach the dialog
        await asyncio.sleep(64 * T1 + 0.2)
        assert key not in stack._pending and key not in stack._acking
        assert stack.layer.get(key) is None
        stack._on_message(serialize(ok), PEER, "udp")
        assert len(again) == 1
        await stack.close()

    asyncio.run(run())


def test_each_answered_invite_keeps_its_2xx_handler_until_its_own_timer_m() -> None:
    """Handlers go in the order their transactions end: the older one is dropped at its
    Timer M, the younger one still ACKs a retransmitted 2xx until its own."""

    async def run() -> None:
        stack, _ = make_stack()
        got: dict[str, list[Response]] = {"a": [], "b": []}
        oks = {}
        for name, branch in (("a", "z9hG4bKorder1"), ("b", "z9hG4bKorder2")):
            req = invite(branch)
            _, fut = stack.send_request(req, PEER, "udp", on_retransmitted_2xx=got[name].append)
            oks[name] = make_response(req, 200, to_tag="t" + name)
            stack._on_message(serialize(oks[name]), PEER, "udp")
            assert (await fut).status == 200
            if name == "a":
                await asyncio.sleep(56 * T1)  # b answered most of a Timer M later
        await asyncio.sleep(8 * T1 + 0.1)  # a's Timer M has fired (timers fire in order),
        # b's is 0.46 s away
        for name in ("a", "b"):
            stack._on_message(serialize(oks[name]), PEER, "udp")
        assert (len(got["a"]), len(got["b"])) == (0, 1)
        assert len(stack._acking) == 1
        await asyncio.sleep(56 * T1 + 0.2)
        assert not stack._acking
        await stack.close()

    asyncio.run(run())


def test_failed_invite_is_forgotten_at_once() -> None:
    async def run() -> None:
        stack, _ = make_stack()
        req = invite("z9hG4bKstack2")
        key, fut = stack.send_request(req, PEER, "udp")
        stack._on_message(serialize(make_response(req, 486, to_tag="t1")), PEER, "udp")
        assert (await fut).status == 486
        assert key not in stack._pending
        await stack.close()

    asyncio.run(run())


def test_a_raising_callback_does_not_stop_the_timer() -> None:
    """Timer H's callback raises: the other transactions' timers must stay armed."""

    async def run() -> None:
        fired = asyncio.Event()

        def boom(event: TransactionTimeout) -> None:
            fired.set()
            raise RuntimeError("bug in the core")

        answered: list[ServerRequest] = []
        stack, sent = make_stack(answered.append, on_server_timeout=boom)
        # A server INVITE rejected with 486 and never ACKed: Timer H fires at 64*T1.
        stack._on_message(serialize(invite("z9hG4bKstackH")), PEER, "udp")
        answered[0].respond(486, to_tag="x")
        await asyncio.sleep(64 * T1 / 2)
        # A client INVITE whose timers (A, then B at 64*T1) run past Timer H of the first.
        key, fut = stack.send_request(invite("z9hG4bKstackA", cseq=7), PEER, "udp")
        await asyncio.wait_for(fired.wait(), 10)
        # Timer B of the client INVITE still fires, 32*T1 after the failing callback: the
        # timer was re-armed and the transaction went on (no fixed point in time is assumed).
        with pytest.raises(RequestTimeout):
            await asyncio.wait_for(fut, 10)
        assert len(sent) > 2  # the INVITE and its Timer A retransmissions went out
        await stack.close()

    asyncio.run(run())


def test_a_raising_ack_timeout_callback_is_contained() -> None:
    async def run() -> None:
        fired = asyncio.Event()

        def boom(event: AckTimeout) -> None:
            fired.set()
            raise RuntimeError("bug in the core")

        answered: list[ServerRequest] = []
        stack, _ = make_stack(answered.append, on_ack_timeout=boom)
        stack._on_message(serialize(invite("z9hG4bKstackL")), PEER, "udp")
        answered[0].respond(200, to_tag="x")
        await asyncio.sleep(64 * T1 / 2)
        _, fut = stack.send_request(invite("z9hG4bKstackB", cseq=9), PEER, "udp")
        await asyncio.wait_for(fired.wait(), 10)  # Timer L: AckTimeout raises inside _on_timer
        with pytest.raises(RequestTimeout):  # the other transaction's Timer B still fires
            await asyncio.wait_for(fut, 10)
        await stack.close()

    asyncio.run(run())


def test_close_fails_the_requests_still_waiting() -> None:
    async def run() -> None:
        stack, _ = make_stack()
        _, fut = stack.send_request(invite("z9hG4bKclose"), PEER, "udp")
        await stack.close()
        try:
            await asyncio.wait_for(fut, 1)
        except RequestTimeout:
            pass
        else:
            raise AssertionError("the future should fail")

    asyncio.run(run())


def test_stack_can_be_built_before_logging_is_configured() -> None:
    """Review finding 7: structlog's default logger has no ``isEnabledFor``; no trace then."""
    import structlog

    saved = structlog.get_config()
    structlog.reset_defaults()

    async def run() -> None:
        stack = SipStack(
            host="127.0.0.1", port=5060, advertised="127.0.0.1", transports=["udp"],
            handler=lambda sreq: None, on_ack_timeout=lambda e: None, t1=T1,
        )
        assert stack.trace is False

    try:
        asyncio.run(run())
    finally:
        structlog.configure(**saved)


def test_a_request_the_transport_cannot_send_fails_at_once_with_503() -> None:
    """Review finding 6: the transport reports a failed TCP connect; no 32 s wait for Timer B."""

    async def run() -> None:
        stack, sent = make_stack()
        _, fut = stack.send_request(invite("z9hG4bKtcp"), PEER, "tcp")
        stack._on_send_failed(PEER, "tcp", sent)
        resp = await asyncio.wait_for(fut, 1)
        assert resp.status == 503
        await stack.close()

    asyncio.run(run())


def test_tcp_connect_failure_is_reported_with_the_queued_messages() -> None:
    from callcenter.sip.transport import Transports

    async def run() -> None:
        failed: list[tuple[object, str, list[bytes]]] = []
        transports = Transports(
            host="127.0.0.1", port=5060, on_message=lambda *a: None,
            on_send_failed=lambda dest, tr, msgs: failed.append((dest, tr, msgs)),
        )

        async def refuse(*args: object, **kwargs: object) -> None:
            raise ConnectionRefusedError("refused")

        transports.loop = asyncio.get_running_loop()
        transports.loop.create_connection = refuse  # type: ignore[method-assign,assignment]
        try:
            transports.send(b"one", PEER, "tcp")
            transports.send(b"two", PEER, "tcp")
            assert await transports._connecting[("tcp", PEER)] is None
        finally:
            del transports.loop.create_connection  # type: ignore[attr-defined]
        assert failed == [(PEER, "tcp", [b"one", b"two"])]
        assert not transports._pending and not transports._connecting

    asyncio.run(run())


def test_a_handler_raising_a_sip_error_gets_its_answer() -> None:
    """One boundary answers what handlers raise: a SipError with its status, reason and
    headers (sync or async handler), anything else with a 500; an ACK never gets one."""
    from callcenter.sip.errors import MethodNotAllowed, SipError

    async def run() -> None:
        def sync_handler(sreq: ServerRequest) -> None:
            raise MethodNotAllowed("INVITE, ACK")

        async def async_handler(sreq: ServerRequest) -> None:
            if sreq.request.cseq[0] == 2:
                raise KeyError("bug")
            raise SipError(status=423, headers=[("Min-Expires", "60"), ("Min-Expires", "61")])

        stack, sent = make_stack(sync_handler)
        stack._on_message(serialize(invite("z9hG4bKerr1")), PEER, "udp")
        resp = parse_message(sent[-1])
        assert (resp.status, resp.reason) == (405, "Method Not Allowed")
        assert resp.headers.get_all("Allow") == ["INVITE", "ACK"] and "Server" in resp.headers
        stack.handler = async_handler
        stack._on_message(serialize(invite("z9hG4bKerr2")), PEER, "udp")
        stack._on_message(serialize(invite("z9hG4bKerr3", cseq=2)), PEER, "udp")
        for _ in range(100):  # the handlers' tasks
            finals = [r for r in map(parse_message, sent) if r.status >= 200]
            if len(finals) == 3:
                break
            await asyncio.sleep(0)
        _, brief, failed = finals
        assert (brief.status, brief.reason) == (423, "Interval Too Brief")
        assert brief.headers.get_all("Min-Expires") == ["60", "61"]
        assert (failed.status, failed.reason) == (500, "Server Internal Error")
        await stack.close()

    asyncio.run(run())
