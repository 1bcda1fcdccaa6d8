"""Where responses go (RFC 3261 §18.2.1/§18.2.2, RFC 3581): the pure function and the stack."""

from __future__ import annotations

import asyncio
import io

import pytest

from callcenter.log import configure_logging
from callcenter.sip.message import Request, parse_message
from callcenter.sip.received import response_destination, stamp_via
from callcenter.sip.stack import SipStack
from callcenter.sip.uri import Via

SOURCE = ("192.0.2.10", 40000)


@pytest.mark.parametrize(
    ("via", "transport", "dest"),
    [
        # a host name in sent-by: the received address, the sent-by port (5060 if none)
        ("SIP/2.0/UDP host5.example.com;branch=z9hG4bKa", "udp", ("192.0.2.10", 5060)),
        ("SIP/2.0/UDP sbc.example.net:5070;branch=z9hG4bKa", "udp", ("192.0.2.10", 5070)),
        # an address that is not the source: still the source address, the sent-by port
        ("SIP/2.0/UDP 198.51.100.1:5062;branch=z9hG4bKa", "udp", ("192.0.2.10", 5062)),
        # rport (bare as sent, or filled in on receipt) wins: the source port too
        ("SIP/2.0/UDP host5.example.com:5070;rport;branch=z9hG4bKa", "udp", SOURCE),
        ("SIP/2.0/UDP h.example.com;rport=40000;received=192.0.2.10", "udp", SOURCE),
        # a received= the sender wrote itself does not redirect the answer
        ("SIP/2.0/UDP 192.0.2.10;received=203.0.113.9;branch=z9hG4bKa", "udp", ("192.0.2.10", 5060)),
        # maddr (§18.2.2) with the sent-by port
        ("SIP/2.0/UDP h.example.com:5066;maddr=239.255.255.1", "udp", ("239.255.255.1", 5066)),
        # reliable transports: back on the connection the request came on
        ("SIP/2.0/TCP host5.example.com:5070;branch=z9hG4bKa", "tcp", SOURCE),
        ("SIP/2.0/UDP host5.example.com;branch=z9hG4bKa", "tcp", SOURCE),
    ],
)
def test_response_destination(via: str, transport: str, dest: tuple[str, int]) -> None:
    assert response_destination(Via.parse(via), SOURCE, transport) == dest


def options(via: str, uri: str = "sip:probe@127.0.0.1") -> bytes:
    return (
        f"OPTIONS {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        "Call-ID: received-test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_stamp_via_adds_received_only_when_sent_by_differs() -> None:
    req = parse_message(options("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa"))
    assert isinstance(req, Request)
    stamp_via(req, SOURCE)
    assert req.top_via.received is None
    req = parse_message(options("SIP/2.0/UDP host5.example.com;branch=z9hG4bKa"))
    assert isinstance(req, Request)
    stamp_via(req, SOURCE)
    assert req.top_via.received == "192.0.2.10" and req.top_via.rport is None


@pytest.mark.parametrize(
    ("uri", "status"), [("sip:probe@127.0.0.1", 200), ("soap.beep://192.0.2.100:3002", 416)]
)
def test_stack_answers_a_host_name_via_at_the_source_address(uri: str, status: int) -> None:
    """Accepted (a transaction) and rejected (a stateless 416) requests alike: the answer goes
    to the packet's source address and port 5060, never to a DNS name, with received=."""
    sent: list[tuple[bytes, tuple[str, int]]] = []

    async def run() -> None:
        configure_logging("info", "console", stream=io.StringIO())
        stack = SipStack(
            host="127.0.0.1", port=5090, advertised="127.0.0.1", transports=["udp"],
            handler=lambda sreq: sreq.respond(200), on_ack_timeout=lambda e: None,
        )
        stack.loop = asyncio.get_running_loop()
        stack.transports.send = lambda data, dest, tr: sent.append((data, dest))  # type: ignore[method-assign]
        via = "SIP/2.0/UDP host9.example.com;branch=z9hG4bKrecv"
        stack._on_message(options(via, uri), ("127.0.0.1", 41000), "udp")
        await stack.close()

    asyncio.run(run())
    (data, dest), = sent
    assert data.startswith(f"SIP/2.0 {status} ".encode())
    assert dest == ("127.0.0.1", 5060)
    assert b";received=127.0.0.1" in data
