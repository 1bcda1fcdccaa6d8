"""A finished call is freed by reference counting: none of its objects waits for the cyclic
garbage collector (whose full collections stalled the event loop under load)."""

from __future__ import annotations

import asyncio
import collections
import gc
import re
import socket
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from callcenter.app import Application
from callcenter.calls import flows
from callcenter.calls.call import Call, LegState
from callcenter.cli import load_setup
from callcenter.config import apply_overrides
from callcenter.log import configure_logging
from tests.helpers.ports import allocate
from tests.unit.test_b2bua_core import (
    FakeApp,
    FakeMedia,
    FakeStack,
    inbound_leg,
    make_b2bua,
    ok_for,
    request,
    server_request,
)

REPO = Path(__file__).resolve().parents[2]
KINDS = ("Call", "Leg", "Channel", "FakeChannel", "Dialog", "ServerRequest", "function")


@contextmanager
def collector_off() -> Iterator[collections.Counter[str]]:
    """Objects made meanwhile that only the collector could free, counted by type (those of
    ``KINDS``; a lambda or closure counts as ``function <its name>``)."""
    gc.collect()
    gc.disable()
    found: collections.Counter[str] = collections.Counter()
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        for obj in gc.garbage:
            kind = type(obj).__name__
            if kind in KINDS:
                found[f"function {obj.__qualname__}" if kind == "function" else kind] += 1
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


def test_a_call_bridged_to_a_user_leaves_no_cycle() -> None:
    async def run() -> collections.Counter[str]:
        b2bua, stack, media, ended = make_b2bua()
        media.bridge = lambda a, b: None  # type: ignore[attr-defined]
        media.unbridge = lambda a: None  # type: ignore[attr-defined]
        services = FakeApp(b2bua)  # refers to itself: made before the call
        with collector_off() as garbage:
            call = await bridge_and_hang_up(services, stack, media)
            assert ended == [call()] and not b2bua.calls and not b2bua.live_legs
            ended.clear()
            for done in (stack.requests, stack.on_provisional, stack.on_retransmitted_2xx,
                         media.channels):
                done.clear()  # the stack's finished transactions, the closed channels
            del call  # the last reference: freed now, unless in a cycle
        return garbage

    garbage = asyncio.run(run())
    assert not garbage, f"a finished call's cycles: {dict(garbage)}"


async def bridge_and_hang_up(services: FakeApp, stack: FakeStack,
                             media: FakeMedia) -> weakref.ref[Call]:
    """A caller bridged to user 1001 hangs up; its call, weakly."""
    b2bua = services.b2bua
    leg = inbound_leg(b2bua, stack, media)
    leg.channel.play = lambda *a, **k: None
    leg.channel.stop_playing = lambda: None
    b2bua.answer(leg)
    ack = request("ACK", branch="z9hG4bKack1", to_tag=b2bua.local_tag(leg))
    await b2bua.on_in_dialog(server_request(stack, ack))
    bridged = asyncio.ensure_future(flows.transfer_to_user(services, leg, "1001"))
    for _ in range(5):
        await asyncio.sleep(0)
    ok = ok_for(stack.requests[0][0])
    ok.body = b2bua._offer(leg).serialize().encode()
    stack.requests[0][1].set_result(ok)
    for _ in range(5):
        await asyncio.sleep(0)
    assert leg.call.legs[1].state is LegState.ANSWERED
    bye = request("BYE", branch="z9hG4bKbye1", cseq=2, to_tag=b2bua.local_tag(leg))
    hangup = asyncio.ensure_future(b2bua.on_in_dialog(server_request(stack, bye)))
    for _ in range(5):  # the caller hung up: the agent's leg gets a BYE
        await asyncio.sleep(0)
    assert stack.methods() == ["INVITE", "BYE"]
    stack.requests[-1][1].set_result(ok_for(stack.requests[-1][0]))
    await asyncio.wait_for(hangup, 1)
    assert await asyncio.wait_for(bridged, 1) == "hangup"
    return weakref.ref(leg.call)


def test_a_call_to_an_ivr_line_through_the_server_leaves_no_cycle(tmp_path: Path) -> None:
    """The real SIP stack and media engine, the benchmark's line: INVITE, ACK, BYE over UDP."""
    configure_logging("error", "json", None)
    config = tmp_path / "config.yaml"
    config.write_text((REPO / "benchmarks/bench-config.yaml").read_text().replace(
        "../sounds", str(REPO / "sounds")).replace(
        "dialplans: dialplans", f"dialplans: {REPO / 'benchmarks/dialplans'}").replace(
        "codecs: [PCMU, PCMA]", "codecs: [PCMU, PCMA]\n  workers: 0"))
    cfg, dialplan, _ = load_setup(config)
    cfg = apply_overrides(cfg, sip_port=allocate(1)[0], http_port=allocate(1)[0], db=tmp_path / "db")

    async def run() -> collections.Counter[str]:
        app = Application(cfg, dialplan)
        await app.start()
        try:
            with collector_off() as garbage:
                call = await call_and_hang_up(app)
                for _ in range(100):  # the call's last tasks finish (bounded)
                    if call() is None:  # freed by reference counting
                        break
                    await asyncio.sleep(0.02)
            return garbage
        finally:
            await app.stop()

    garbage = asyncio.run(run())
    assert not garbage, f"a finished call's cycles: {dict(garbage)}"


async def call_and_hang_up(app: Application) -> weakref.ref[Call]:
    """A caller calls the benchmark's line and hangs up; its call, weakly."""
    loop = asyncio.get_running_loop()
    server = ("127.0.0.1", app.stack.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        rtp.bind(("127.0.0.1", 0))
        me, to_tag = sock.getsockname()[1], ""

        async def send(method: str, cseq: int, body: str = "") -> None:
            to = f"<sip:0800000001@127.0.0.1>{';tag=' + to_tag if to_tag else ''}"
            head = (f"{method} sip:0800000001@127.0.0.1:{server[1]} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{method}{cseq};rport\r\n"
                    f"From: <sip:bench@127.0.0.1:{me}>;tag=c1\r\nTo: {to}\r\n"
                    f"Call-ID: cycles@test\r\nCSeq: {cseq} {method}\r\n"
                    f"Contact: <sip:bench@127.0.0.1:{me}>\r\nMax-Forwards: 70\r\n")
            if body:
                head += "Content-Type: application/sdp\r\n"
            await loop.sock_sendto(sock, f"{head}Content-Length: {len(body)}\r\n\r\n{body}"
                                   .encode(), server)

        async def final(method: str) -> bytes:
            while True:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
                if re.match(rb"SIP/2.0 [2-6]\d\d .*\r\n(.*\r\n)*CSeq: \d+ " + method.encode(),
                            data):
                    return data

        await send("INVITE", 1, "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                   f"t=0 0\r\nm=audio {rtp.getsockname()[1]} RTP/AVP 0\r\n"
                   "a=rtpmap:0 PCMU/8000\r\n")
        ok = await final("INVITE")
        assert ok.startswith(b"SIP/2.0 200")
        found = re.search(rb"\nTo:[^\r]*;tag=([^\r;]+)", ok)
        assert found is not None
        to_tag = found.group(1).decode()
        await send("ACK", 1)
        (call,) = app.b2bua.calls.values()
        for _ in range(100):  # the prompt plays (bounded wait)
            if call.legs[0].acked.is_set() and call.legs[0].channel.stats.packets_out > 5:
                break
            await asyncio.sleep(0.02)
        ref = weakref.ref(call)
        del call
        await send("BYE", 2)
        assert (await final("BYE")).startswith(b"SIP/2.0 200")
        for _ in range(250):
            if not app.b2bua.calls and not app._invites:
                break
            await asyncio.sleep(0.02)
        assert not app.b2bua.calls and not app._invites
        return ref
