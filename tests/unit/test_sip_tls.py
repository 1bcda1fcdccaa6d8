"""SIP over TLS on loopback: two Transports, a throw-away CA (openssl), the stdlib ssl."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from callcenter.log import configure_logging
from callcenter.sip.tls import client_context, server_context
from callcenter.sip.transport import Address, Transports
from tests.helpers.certs import Certs, make_certs
from tests.helpers.ports import free_port

Runner = Callable[[Coroutine[Any, Any, None]], None]
RUNNERS: list[Runner] = [asyncio.run]
try:  # the server runs on uvloop when installed: its TLS paths differ from asyncio's
    import uvloop

    RUNNERS.append(uvloop.run)
except ImportError:
    pass
Got = list[tuple[bytes, Address, str]]
MSG = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"


def _server(certs: Certs, got: Got) -> Transports:
    files = {"certificate": str(certs.certificate), "key": str(certs.key)}
    return Transports(
        host="127.0.0.1", port=free_port(), tls_port=free_port(),
        on_message=lambda d, s, t: got.append((d, s, t)),
        tls_server=server_context(**files, ca=str(certs.ca), verify_peer=True),
    )


def _client(ca: Path | None, got: Got, failed: list[Address]) -> Transports:
    return Transports(
        host="127.0.0.1", port=free_port(), on_message=lambda d, s, t: got.append((d, s, t)),
        on_send_failed=lambda dest, tr, msgs: failed.append(dest),
        tls_client=client_context(certificate=None, key=None,
                                  ca=str(ca) if ca else None, verify_peer=True),
    )


async def _until(cond: object, bound: float = 10.0) -> None:
    for _ in range(int(bound / 0.02)):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("runner", RUNNERS)
def test_tls_message_and_reply_on_the_same_connection(tmp_path: Path, runner: Runner) -> None:
    certs = make_certs(tmp_path)

    async def run() -> None:
        at_server: Got = []
        at_client: Got = []
        server, client = _server(certs, at_server), _client(certs.ca, at_client, [])
        await server.start(["tls"])
        await client.start(["udp"])
        try:
            client.send(MSG, ("127.0.0.1", server.tls_port), "tls")
            await _until(lambda: at_server)
            data, source, transport = at_server[0]
            assert (data, transport) == (MSG, "tls")
            server.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", source, "tls")
            await _until(lambda: at_client)
            # the reply came back on the phone's connection: no second one was opened
            assert at_client[0][1:] == (("127.0.0.1", server.tls_port), "tls")
            assert list(server._conns) == [("tls", source)]
        finally:
            await client.close()
            await server.close()

    runner(run())


@pytest.mark.parametrize("runner", RUNNERS)
def test_untrusted_certificate_is_refused_and_logged(tmp_path: Path, runner: Runner) -> None:
    certs = make_certs(tmp_path / "real")
    other = make_certs(tmp_path / "other")  # a CA the client trusts but the server's is not
    out = io.StringIO()
    configure_logging("info", "json", stream=out)

    async def run() -> None:
        at_server: Got = []
        failed: list[Address] = []
        server, client = _server(certs, at_server), _client(other.ca, [], failed)
        await server.start(["tls"])
        await client.start(["udp"])
        try:
            dest = ("127.0.0.1", server.tls_port)
            client.send(MSG, dest, "tls")
            await _until(lambda: failed and "tls_handshake_failed" in out.getvalue())
            assert failed == [dest] and not at_server
        finally:
            await client.close()
            await server.close()

    runner(run())
    assert "certificate verify failed" in out.getvalue()


def test_via_and_contact_of_a_tls_leg_name_the_tls_port() -> None:
    from callcenter.sip.stack import SipStack

    async def make() -> SipStack:  # the transports want a loop
        return SipStack(host="127.0.0.1", port=5060, advertised="192.0.2.1", transports=["udp"],
                        handler=lambda sreq: None, on_ack_timeout=lambda e: None, tls_port=5071)

    stack = asyncio.run(make())
    assert stack.via("tls", "z9hG4bKx").startswith("SIP/2.0/TLS 192.0.2.1:5071;branch=z9hG4bKx")
    assert stack.contact("1001", "tls") == "<sip:1001@192.0.2.1:5071;transport=tls>"
    assert stack.contact("1001", "udp") == "<sip:1001@192.0.2.1:5060>"


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_phone_whose_connection_is_gone_is_reached_at_its_contact(tmp_path: Path,
                                                                    runner: Runner) -> None:
    certs = make_certs(tmp_path)
    files = {"certificate": str(certs.certificate), "key": str(certs.key)}

    async def run() -> None:
        at_server: Got = []
        at_phone: Got = []
        server = _server(certs, at_server)
        server.tls_client = client_context(**files, ca=str(certs.ca), verify_peer=True)
        phone = _server(certs, at_phone)  # a phone that also takes TLS (its Contact)
        phone.tls_client = server.tls_client
        await server.start(["tls"])
        await phone.start(["tls"])
        try:
            phone.send(MSG, ("127.0.0.1", server.tls_port), "tls")
            await _until(lambda: at_server)
            source = at_server[0][1]
            server.contacts[("tls", source)] = ("127.0.0.1", phone.tls_port)  # the registrar's
            for conn in list(phone._conns.values()):
                conn.transport.close()  # type: ignore[union-attr]
            await _until(lambda: not server._conns)
            server.send(b"OPTIONS sip:p SIP/2.0\r\nContent-Length: 0\r\n\r\n", source, "tls")
            await _until(lambda: at_phone)
            assert at_phone[0][2] == "tls"
        finally:
            await phone.close()
            await server.close()

    runner(run())


def test_idle_close_closes_a_connection_once() -> None:
    """A TLS connection stays closing until the peer answers close_notify: the idle sweep
    must not close it (and log it) again on every pass."""
    from callcenter.sip.transport import _TcpConn

    class Closing:
        closed = 0

        def close(self) -> None:
            self.closed += 1

        def is_closing(self) -> bool:
            return self.closed > 0

    async def run() -> int:
        transports = Transports(host="127.0.0.1", port=0, on_message=lambda *a: None,
                                idle_timeout=0.02)
        transports.loop = asyncio.get_running_loop()
        conn = _TcpConn(transports, "tls")
        conn.transport = Closing()  # type: ignore[assignment]
        transports._conns[("tls", ("127.0.0.1", 1))] = conn
        sweep = asyncio.ensure_future(transports._close_idle())
        await asyncio.sleep(0.2)  # about ten sweeps
        sweep.cancel()
        return conn.transport.closed  # type: ignore[attr-defined,no-any-return]

    assert asyncio.run(run()) == 1
