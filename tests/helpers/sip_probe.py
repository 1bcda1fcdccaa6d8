"""A tiny raw SIP sender for tests: send bytes over UDP or TCP to 127.0.0.1, collect answers."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from dataclasses import dataclass

HOST = "127.0.0.1"
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)
_CONTENT_LENGTH = re.compile(rb"^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)", re.I | re.M)


@dataclass(frozen=True)
class Received:
    """One message that came back."""

    data: bytes
    source: tuple[str, int]

    @property
    def status(self) -> int | None:
        """Status code of a response, None for a request or junk."""
        m = _STATUS.match(self.data)
        return int(m.group(1)) if m else None

    @property
    def call_id(self) -> str | None:
        m = _CALL_ID.search(self.data.split(b"\r\n\r\n", 1)[0])
        return m.group(1).decode("latin-1") if m else None


def new_call_id() -> str:
    return os.urandom(8).hex() + "@probe"


def build_options(
    port: int,
    *,
    local_port: int,
    transport: str = "UDP",
    call_id: str | None = None,
    user: str = "probe",
) -> bytes:
    """A well-formed OPTIONS for sip:user@127.0.0.1:port, Via pointing back at local_port."""
    call_id = call_id or new_call_id()
    branch = "z9hG4bK" + os.urandom(6).hex()
    lines = [
        f"OPTIONS sip:{user}@{HOST}:{port} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {HOST}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{HOST}:{local_port}>;tag={os.urandom(4).hex()}",
        f"To: <sip:{user}@{HOST}:{port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:probe@{HOST}:{local_port}>",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def split_stream(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut whole messages off a TCP byte stream by Content-Length; return (messages, rest)."""
    out = []
    while True:
        buffer = buffer.lstrip(b"\r\n")
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return out, buffer
        m = _CONTENT_LENGTH.search(buffer[:head_end])
        total = head_end + 4 + (int(m.group(1)) if m else 0)
        if len(buffer) < total:
            return out, buffer
        out.append(buffer[:total])
        buffer = buffer[total:]


class UdpProbe:
    """A UDP socket on 127.0.0.1 (an ephemeral or given port) that sends and collects."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.port: int = self.sock.getsockname()[1]

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, (HOST, port))

    def collect(self, timeout: float, *, until_final: str | None = None) -> list[Received]:
        """Messages arriving within timeout s; with until_final=CALL_ID stop at its final answer."""
        deadline = time.monotonic() + timeout
        out: list[Received] = []
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(70000)
            except (TimeoutError, ConnectionRefusedError):
                continue
            msg = Received(data, source)
            out.append(msg)
            status = msg.status
            if until_final and msg.call_id == until_final and status and status >= 200:
                break
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_udp(
    data: bytes, port: int, *, timeout: float = 1.0, until_final: str | None = None
) -> list[Received]:
    """Send one datagram from a fresh socket and collect what comes back to it."""
    with UdpProbe() as probe:
        probe.send(data, port)
        return probe.collect(timeout, until_final=until_final)


def send_tcp(
    data: bytes | list[bytes], port: int, *, timeout: float = 1.0, until_final: str | None = None
) -> tuple[list[Received], bool]:
    """Send over a fresh TCP connection; return (messages received, whether the peer closed)."""
    chunks = [data] if isinstance(data, bytes) else data
    out: list[Received] = []
    closed = False
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        source = sock.getsockname()
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                return out, True
        deadline = time.monotonic() + timeout
        buffer = b""
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed = True
                break
            if not piece:
                closed = True
                break
            messages, buffer = split_stream(buffer + piece)
            out += [Received(m, source) for m in messages]
            if until_final and any(
                m.call_id == until_final and (m.status or 0) >= 200 for m in out
            ):
                break
    return out, closed


def options_ping(port: int, *, transport: str = "udp", timeout: float = 1.0) -> int | None:
    """Send an OPTIONS and return the final status code (None when nothing answered)."""
    call_id = new_call_id()
    if transport == "tcp":
        try:
            with socket.socket() as s:
                s.bind((HOST, 0))
                local = s.getsockname()[1]
            msgs, _ = send_tcp(
                build_options(port, local_port=local, transport="TCP", call_id=call_id),
                port,
                timeout=timeout,
                until_final=call_id,
            )
        except OSError:
            return None
    else:
        with UdpProbe() as probe:
            probe.send(build_options(port, local_port=probe.port, call_id=call_id), port)
            msgs = probe.collect(timeout, until_final=call_id)
    finals = [m.status for m in msgs if m.call_id == call_id and (m.status or 0) >= 200]
    return finals[0] if finals else None


_CHALLENGE = re.compile(rb"^WWW-Authenticate[ \t]*:[ \t]*Digest[ \t]+(.*)$", re.I | re.M)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_challenges(data: bytes) -> list[dict[str, str]]:
    """The Digest challenges (WWW-Authenticate) of a 401, as lower-cased parameter dicts."""
    out = []
    for m in _CHALLENGE.finditer(data.split(b"\r\n\r\n", 1)[0]):
        text = m.group(1).decode("latin-1")
        out.append({k.lower(): a or b for k, a, b in _PARAM.findall(text)})
    return out


def digest_authorization(
    challenge: dict[str, str],
    *,
    method: str,
    uri: str,
    user: str,
    password: str,
    cnonce: str = "0a4f113b",
    nc: str = "00000001",
) -> str:
    """An Authorization header value answering one challenge (RFC 7616; qop=auth if offered)."""
    algorithm = challenge.get("algorithm", "MD5")
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm.upper()]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    realm, nonce = challenge["realm"], challenge["nonce"]
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    parts = [
        f'username="{user}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={algorithm}",
    ]
    if "auth" in qops:
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{response}"')
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def build_register(
    port: int,
    *,
    local_port: int,
    user: str,
    call_id: str,
    cseq: int,
    authorization: str | None = None,
    expires: int = 120,
) -> bytes:
    """A REGISTER for sip:user@127.0.0.1 binding Contact to local_port."""
    lines = [
        f"REGISTER sip:{HOST}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{os.urandom(6).hex()};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{HOST}:{port}>;tag=reg{local_port}",
        f"To: <sip:{user}@{HOST}:{port}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{HOST}:{local_port}>",
        f"Expires: {expires}",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def register(
    port: int, user: str, password: str, *, algorithm: str = "MD5", timeout: float = 2.0
) -> tuple[int | None, list[dict[str, str]]]:
    """REGISTER, answer the challenge of `algorithm`; return (final status, challenges seen)."""
    call_id = new_call_id()
    with UdpProbe() as probe:
        probe.send(
            build_register(port, local_port=probe.port, user=user, call_id=call_id, cseq=1), port
        )
        first = [
            m
            for m in probe.collect(timeout, until_final=call_id)
            if m.call_id == call_id and (m.status or 0) >= 200
        ]
        if not first or first[0].status != 401:
            return (first[0].status if first else None), []
        challenges = parse_challenges(first[0].data)
        chosen = [c for c in challenges if c.get("algorithm", "MD5").upper() == algorithm]
        if not chosen:
            return None, challenges
        auth = digest_authorization(
            chosen[0], method="REGISTER", uri=f"sip:{HOST}:{port}", user=user, password=password
        )
        probe.send(
            build_register(
                port, local_port=probe.port, user=user, call_id=call_id, cseq=2, authorization=auth
            ),
            port,
        )
        second = [
            m
            for m in probe.collect(timeout, until_final=call_id)
            if m.call_id == call_id and (m.status or 0) >= 200
        ]
        return (second[-1].status if second else None), challenges
