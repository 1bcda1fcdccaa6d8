"""Nothing a peer sends takes the server down: junk, truncated and oversized messages."""

from __future__ import annotations

import random
import socket

import pytest

from tests.helpers import sip_probe
from tests.helpers.server import ServerProcess

UDP_MAX = 65507  # the largest IPv4 UDP payload


def junk_datagrams(seed: int = 4475) -> list[bytes]:
    rng = random.Random(seed)
    out = [rng.randbytes(rng.randint(1, 1500)) for _ in range(40)]
    out += [b"", b"\r\n\r\n", b"\x00" * 100, b"SIP/2.0", b"INVITE", b"\xff" * 1400]
    options = sip_probe.build_options(5, local_port=9)
    out += [options[:n] for n in (10, 40, len(options) // 2, len(options) - 3)]
    out.append(b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0")
    out.append(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n" + b"X-Junk: " + b"a" * 5000 + b"\r\n\r\n")
    return out


def test_udp_garbage(server: ServerProcess) -> None:
    with sip_probe.UdpProbe() as probe:
        for data in junk_datagrams():
            probe.send(data, server.sip_port)
        answers = probe.collect(1.0)
    assert not any(a.status == 500 for a in answers), [a.data[:60] for a in answers]
    assert sip_probe.options_ping(server.sip_port) is not None, "server stopped answering OPTIONS"
    assert server.alive()


def test_udp_oversized(server: ServerProcess) -> None:
    """A datagram as large as UDP allows (a 70 kB message cannot be one IPv4 datagram)."""
    with sip_probe.UdpProbe() as probe:
        head = sip_probe.build_options(server.sip_port, local_port=probe.port)
        big = head[:-2] + b"X-Filler: " + b"f" * (UDP_MAX - len(head) - 16) + b"\r\n\r\n"
        assert len(big) <= UDP_MAX
        probe.send(big, server.sip_port)
        answers = probe.collect(1.0)
    assert all((a.status or 0) >= 400 or a.status == 200 for a in answers)
    assert sip_probe.options_ping(server.sip_port) is not None


@pytest.mark.parametrize("size", [70_000, 200_000])
def test_tcp_oversized(server: ServerProcess, size: int) -> None:
    """70 kB and 200 kB headers over TCP: answered 4xx (413/400/513) or the connection closed."""
    head = sip_probe.build_options(server.sip_port, local_port=9, transport="TCP")
    big = head[:-2] + b"X-Filler: " + b"f" * size + b"\r\n\r\n"
    answers, closed = sip_probe.send_tcp(big, server.sip_port, timeout=3.0)
    statuses = [a.status for a in answers]
    assert closed or any((s or 0) >= 400 for s in statuses), f"oversized accepted: {statuses}"
    assert all(s is None or s >= 400 for s in statuses), statuses
    assert sip_probe.options_ping(server.sip_port, transport="tcp") is not None
    assert sip_probe.options_ping(server.sip_port) is not None


def test_tcp_garbage_and_half_open(server: ServerProcess) -> None:
    """Junk on one TCP connection and a connection left half-sent do not block others."""
    stalled = socket.create_connection(("127.0.0.1", server.sip_port), timeout=2)
    try:
        stalled.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
        for data in junk_datagrams(seed=7)[:10]:
            try:
                sip_probe.send_tcp(data + b"\r\n\r\n", server.sip_port, timeout=0.3)
            except OSError:
                pass
        assert sip_probe.options_ping(server.sip_port, transport="tcp") is not None
        assert sip_probe.options_ping(server.sip_port) is not None
    finally:
        stalled.close()
