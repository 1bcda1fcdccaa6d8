"""Send the RFC 4475 messages UNMODIFIED to a server, from inside a loopback-only namespace.

    unshare -rn python -m tests.helpers.netns_torture WORKDIR > answers.json

Run it in a network namespace that has only loopback (``unshare -rn``): the messages name
example.com and 192.0.2.x hosts, and nothing must leave the machine. It brings ``lo`` up,
starts the server on a free port, listens on 127.0.0.1:5060 and :5050 (the Via sent-by ports
the messages use; RFC 3261 §18.2.2 sends UDP responses there) and on the sender's own port
(rport, RFC 3581), sends each message over UDP, then over TCP, and prints JSON:
``{"sender_port": N, "udp": {name: [[port, text], ...]}, "tcp": {name: [text, ...]},
"alive": bool}`` where ``port`` is the local port the answer arrived on.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from callcenter.sip.message import SipParseError, parse_message

from .server import ServerProcess
from .sip_probe import HOST, Received, options_ping, send_tcp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rfc4475"
LISTEN_PORTS = (5060, 5050)
UDP_ONLY = {"dblreq", "inv2543"}  # no framing over TCP (INDEX.tsv)
TIMEOUT = 2.0


def _udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, port))
    return sock


def _transaction(data: bytes) -> tuple[object, ...] | None:
    """Top Via branch and sent-by, and CSeq method: what matches a request to a server
    transaction (RFC 3261 §17.2.3), and a response to it."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        msg = exc.request
    try:
        return None if msg is None else (*msg.top_via.sent_by, msg.top_via.branch, msg.cseq[1])
    except ValueError:
        return None


def _collect(socks: list[socket.socket], request: bytes) -> list[tuple[int, Received]]:
    """Answers to ``request`` on any socket, until its final one or TIMEOUT seconds.

    An answer is one with the request's Call-ID, or of the transaction it matches: several
    messages reuse an earlier one's branch and sent-by (cparam01/02), which makes them a
    retransmission of it, answered with its response. Late retransmitted answers to earlier
    messages (nobody ACKs them) are left out.
    """
    call_id, tx = Received(request, ("", 0)).call_id, _transaction(request)
    out: list[tuple[int, Received]] = []
    deadline = time.monotonic() + TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(socks, [], [], left)
        for sock in ready:
            data, source = sock.recvfrom(70000)
            msg = Received(data, source)
            if msg.call_id != call_id and (tx is None or _transaction(data) != tx):
                continue
            out.append((sock.getsockname()[1], msg))
            if (msg.status or 0) >= 200:
                return out
    return out


def main(workdir: Path) -> dict[str, object]:
    """Each transport against a server of its own: the same message sent over TCP after UDP
    would match the UDP one's server transaction (same branch and sent-by, §17.2.3)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    names = [
        line.split("\t", 1)[0]
        for line in (FIXTURES / "INDEX.tsv").read_text().splitlines()[1:] if line.strip()
    ]
    messages = {name: (FIXTURES / f"{name}.dat").read_bytes() for name in names}
    udp: dict[str, list[tuple[int, str]]] = {}
    tcp: dict[str, list[str]] = {}
    with ServerProcess(workdir / "udp") as srv:
        sender = _udp(0)
        socks = [sender, *(_udp(p) for p in LISTEN_PORTS)]
        for name, data in messages.items():
            sender.sendto(data, (HOST, srv.sip_port))
            answers = _collect(socks, data)
            udp[name] = [(port, m.data.decode("latin-1")) for port, m in answers]
        alive = options_ping(srv.sip_port) is not None
        sender_port = sender.getsockname()[1]
        for sock in socks:
            sock.close()
    with ServerProcess(workdir / "tcp") as srv:
        for name, data in messages.items():
            if name not in UDP_ONLY:
                answers, _ = send_tcp(
                    data, srv.sip_port, timeout=TIMEOUT,
                    until_final=Received(data, ("", 0)).call_id,
                )
                tcp[name] = [m.data.decode("latin-1") for m in answers]
        alive = alive and options_ping(srv.sip_port, transport="tcp") is not None
    return {"sender_port": sender_port, "udp": udp, "tcp": tcp, "alive": alive}


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1])), sys.stdout)
