"""A simulated carrier: a small SIP UAS on UDP that answers the dialer's outbound calls.

    with Carrier(port, behaviour={"+48600000001": "busy"}.get) as carrier:
        ...  # the server dials sip:<number>@127.0.0.1:<port>
        carrier.invites        # every new INVITE: number, Request-URI, Call-ID, time

Per called number (the Request-URI user) ``behaviour(number)`` picks one of:

- ``human``: 180, 200 after 0.3 s; sends a 0.5 s "hello" then silence; waits for BYE
- ``machine``: the same with a 3.5 s greeting (what answering-machine detection looks for)
- ``busy``: 486
- ``unavailable``: 503 (a carrier out of service: the server fails over to the next trunk)
- ``noanswer``: 180 and rings until CANCEL (then 200 + 487)

Unknown numbers are answered as ``human``. It records what it hears on each call (µ-law RTP,
arrival time from the answer) so a test can tell a played message from silence. It runs its
own asyncio loop in a thread and outlives server restarts.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .g711 import linear_to_ulaw, ulaw_to_linear

SILENCE = bytes([0xFF]) * 160
_ULAW_ABS = [abs(ulaw_to_linear(b)) for b in range(256)]


def _voiced_frames(n: int = 8, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    frames = []
    for _ in range(n):
        frames.append(bytes(linear_to_ulaw(int(rng.gauss(0, 3000))) for _ in range(160)))
    return frames


VOICED = _voiced_frames()
GREETING = {"human": 0.5, "machine": 3.5}


@dataclass
class CarrierCall:
    """One call the carrier received."""

    call_id: str
    number: str
    mode: str
    invited: float
    answered: float | None = None
    cancelled: float | None = None
    ended: float | None = None
    by: str = ""  # who ended it: "bye" (the server), "cancel", "carrier"
    heard: list[tuple[float, bytes]] = field(default_factory=list)  # (s after answer, payload)
    # signalling state
    invite: dict[str, Any] = field(default_factory=dict)
    to_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    last_response: bytes = b""
    source: tuple[str, int] = ("", 0)
    acked: bool = False
    rtp: Any = None

    def voiced_seconds(self, after: float = 0.0, threshold: float = 300.0) -> float:
        """Seconds of received audio louder than ``threshold`` (mean |x|), ``after`` s from
        the answer on."""
        n = 0
        for t, payload in self.heard:
            if t >= after and payload:
                level = sum(_ULAW_ABS[b] for b in payload) / len(payload)
                n += level > threshold
        return n * 0.02


def _parse(data: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers, body


def _get(headers: list[tuple[str, str]], name: str) -> str:
    short = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m"}.get(name, "")
    return next((v for n, v in headers if n in (name, short)), "")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.carrier._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.carrier._on_message(data, addr)
        except Exception as exc:  # noqa: BLE001 - a test helper logs and carries on
            self.carrier.errors.append(repr(exc))


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, call: CarrierCall) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) > 12 and self.call.answered is not None and (data[1] & 0x7F) == 0:
            self.call.heard.append((time.monotonic() - self.call.answered, data[12:]))


class Carrier:
    """See the module docstring."""

    def __init__(
        self, port: int, behaviour: Callable[[str], str | None] | None = None, *,
        host: str = "127.0.0.1", max_call: float = 40.0,
    ) -> None:
        self.host, self.port = host, port
        self.behaviour = behaviour or (lambda number: None)
        self.max_call = max_call
        self.calls: dict[str, CarrierCall] = {}
        self.invites: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._transport: asyncio.DatagramTransport | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Carrier:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("carrier did not start")
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Carrier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.port))
        self._loop.run_until_complete(
            self._loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock))
        self._ready.set()
        self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)  # calls still talking end here, in their loop
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        for call in self.calls.values():
            if call.rtp is not None:
                call.rtp.close()
        if self._transport is not None:
            self._transport.close()

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the INVITE log (safe from the test's thread)."""
        with self._lock:
            return list(self.invites)

    # ------------------------------------------------------------------ SIP
    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _response(self, call: CarrierCall | None, headers: list[tuple[str, str]], status: int,
                  reason: str, *, tag: str | None = None, body: bytes = b"") -> bytes:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for n, v in headers if n in ("via", "v")]
        to = _get(headers, "to")
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        lines += [f"From: {_get(headers, 'from')}", f"To: {to}",
                  f"Call-ID: {_get(headers, 'call-id')}", f"CSeq: {_get(headers, 'cseq')}",
                  f"Contact: <sip:carrier@{self.host}:{self.port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _on_message(self, data: bytes, addr: tuple[str, int]) -> None:
        first, headers, body = _parse(data)
        if first.startswith("SIP/2.0"):
            return  # responses to our BYE: nothing to do
        method, uri = first.split(" ")[:2]
        call_id = _get(headers, "call-id")
        call = self.calls.get(call_id)
        if method == "INVITE":
            if call is not None:  # a retransmission
                if call.last_response:
                    self._send(call.last_response, addr)
                return
            m = re.match(r"sips?:([^@;>]+)@", uri)
            number = m.group(1) if m else uri
            mode = self.behaviour(number) or "human"
            call = CarrierCall(call_id, number, mode, time.monotonic(),
                               invite={"headers": headers, "body": body}, source=addr)
            with self._lock:
                self.calls[call_id] = call
                self.invites.append({"number": number, "uri": uri, "call_id": call_id,
                                     "from": _get(headers, "from"),
                                     "pai": _get(headers, "p-asserted-identity"),
                                     "privacy": _get(headers, "privacy"),
                                     "time": time.time(), "mode": mode})
            self._send(self._response(call, headers, 100, "Trying"), addr)
            if mode in ("busy", "unavailable"):
                status, reason = (486, "Busy Here") if mode == "busy" else (
                    503, "Service Unavailable")
                call.last_response = self._response(call, headers, status, reason,
                                                    tag=call.to_tag)
                call.ended, call.by = time.monotonic(), mode
                self._send(call.last_response, addr)
                return
            call.last_response = self._response(call, headers, 180, "Ringing", tag=call.to_tag)
            self._send(call.last_response, addr)
            if mode == "noanswer":
                self._loop.call_later(self.max_call, self._give_up, call)
            else:
                self._loop.create_task(self._answer(call))
        elif method == "ACK":
            if call is not None:
                call.acked = True
        elif method == "CANCEL":
            self._send(self._response(None, headers, 200, "OK"), addr)
            if call is not None and call.answered is None and call.ended is None:
                call.cancelled = call.ended = time.monotonic()
                call.by = "cancel"
                inv = call.invite["headers"]
                call.last_response = self._response(call, inv, 487, "Request Terminated",
                                                    tag=call.to_tag)
                self._send(call.last_response, addr)
        elif method == "BYE":
            self._send(self._response(None, headers, 200, "OK"), addr)
            if call is not None and call.ended is None:
                call.ended, call.by = time.monotonic(), "bye"
                if call.rtp is not None:
                    call.rtp.close()
        elif method in ("OPTIONS", "INFO"):
            self._send(self._response(None, headers, 200, "OK"), addr)
        else:
            self._send(self._response(None, headers, 405, "Method Not Allowed"), addr)

    def _give_up(self, call: CarrierCall) -> None:
        if call.ended is None and call.answered is None:
            call.ended, call.by = time.monotonic(), "carrier"
            call.last_response = self._response(call, call.invite["headers"], 480,
                                                "Temporarily Unavailable", tag=call.to_tag)
            self._send(call.last_response, call.source)

    async def _answer(self, call: CarrierCall) -> None:
        await asyncio.sleep(0.3)
        if call.ended is not None:
            return
        sdp = call.invite["body"].decode(errors="replace")
        ip_m = re.search(r"c=IN IP4 (\S+)", sdp)
        port_m = re.search(r"m=audio (\d+)", sdp)
        remote = (ip_m.group(1) if ip_m else self.host, int(port_m.group(1)) if port_m else 0)
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Rtp(call), local_addr=(self.host, 0))
        call.rtp = transport
        port = transport.get_extra_info("sockname")[1]
        answer = (f"v=0\r\no=carrier 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\n"
                  f"t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                  "a=ptime:20\r\na=sendrecv\r\n").encode()
        call.answered = time.monotonic()
        call.last_response = self._response(call, call.invite["headers"], 200, "OK",
                                            tag=call.to_tag, body=answer)
        # A phone talks as soon as it answers (RFC 3261 §13.3.1.4 lets media flow before the
        # ACK): the greeting starts now, while the 200 is retransmitted until the ACK comes.
        retransmit = self._loop.create_task(self._retransmit_200(call))
        try:
            await self._talk(call, remote)
        finally:
            retransmit.cancel()

    async def _retransmit_200(self, call: CarrierCall) -> None:
        for _ in range(7):
            self._send(call.last_response, call.source)
            await asyncio.sleep(0.5)
            if call.acked or call.ended is not None:
                break

    async def _talk(self, call: CarrierCall, remote: tuple[str, int]) -> None:
        """Send the greeting then silence until BYE (or ``max_call``: then our own BYE)."""
        greeting = int(GREETING.get(call.mode, 0.5) / 0.02)
        seq, ts, ssrc = random.randrange(65536), random.randrange(2**32), random.getrandbits(32)
        start = time.monotonic()
        n = 0
        while call.ended is None and time.monotonic() - start < self.max_call:
            payload = VOICED[n % len(VOICED)] if n < greeting else SILENCE
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
            if call.rtp is not None and remote[1]:
                call.rtp.sendto(header + payload, remote)
            seq, ts, n = seq + 1, ts + 160, n + 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
        if call.ended is None:
            call.ended, call.by = time.monotonic(), "carrier"
            self._bye(call)
        if call.rtp is not None:
            call.rtp.close()

    def _bye(self, call: CarrierCall) -> None:
        headers = call.invite["headers"]
        contact = re.search(r"<([^>]+)>", _get(headers, "contact"))
        target = contact.group(1) if contact else f"sip:callcenter@{call.source[0]}"
        to = _get(headers, "from")
        frm = _get(headers, "to") + f";tag={call.to_tag}"
        # through a record-routing proxy (Kamailio): the route set is the INVITE's Record-Route
        routes = "".join(f"Route: {v}\r\n" for n, v in headers if n == "record-route")
        msg = (f"BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK"
               f"{uuid.uuid4().hex[:12]};rport\r\n{routes}From: {frm}\r\nTo: {to}\r\nCall-ID: "
               f"{call.call_id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self._send(msg.encode(), call.source)
