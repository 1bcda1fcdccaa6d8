"""An RTP sink for tests: a UDP socket in a thread that records what the server sends.

SIPp scenarios advertise this socket's port in their SDP (see scenarios/uac_call_dtmf.xml), so
the server's RTP lands here and the test can check payload types, sequence numbers, DTMF and
the decoded audio.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from . import audio
from .pcap import RtpPacket, decode_dtmf, parse_rtp

CODECS = {0: "PCMU", 8: "PCMA"}


class RtpSink:
    """Receive RTP on 127.0.0.1:port until closed; `with RtpSink(port) as sink: ...`."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.sources: set[tuple[str, int]] = set()
        self._packets: list[RtpPacket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtp-sink-{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            packet = parse_rtp(data, time.monotonic() - t0)
            if packet is not None:
                with self._lock:
                    self._packets.append(packet)
                    self.sources.add(source)

    @property
    def packets(self) -> list[RtpPacket]:
        with self._lock:
            return list(self._packets)

    def wait_packets(self, count: int, timeout: float) -> bool:
        """Wait until `count` packets arrived (bounded); True if they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.packets) >= count:
                return True
            time.sleep(0.05)
        return len(self.packets) >= count

    def payload_types(self) -> dict[int, int]:
        """Packet count per payload type."""
        counts: dict[int, int] = {}
        for p in self.packets:
            counts[p.payload_type] = counts.get(p.payload_type, 0) + 1
        return counts

    def audio(self, payload_type: int | None = None) -> np.ndarray:
        """Decoded G.711 audio of one payload type (default: the most frequent G.711 one)."""
        counts = {pt: n for pt, n in self.payload_types().items() if pt in CODECS}
        if payload_type is None:
            if not counts:
                return np.zeros(0)
            payload_type = max(counts, key=lambda pt: counts[pt])
        packets = sorted(
            (p for p in self.packets if p.payload_type == payload_type), key=lambda p: p.time
        )
        data = b"".join(p.payload for p in packets)
        return audio.decode_g711(data, CODECS[payload_type])

    def dtmf(self, payload_type: int = 101) -> str:
        return decode_dtmf(self.packets, payload_type)

    def sequence_gaps(self, payload_type: int | None = None) -> int:
        """Number of missing sequence numbers per SSRC (wrap-aware), a loss/ordering check."""
        by_ssrc: dict[int, list[int]] = {}
        for p in self.packets:
            if payload_type is None or p.payload_type == payload_type:
                by_ssrc.setdefault(p.ssrc, []).append(p.seq)
        gaps = 0
        for seqs in by_ssrc.values():
            for a, b in zip(seqs, seqs[1:], strict=False):
                gaps += ((b - a) & 0xFFFF) - 1 if (b - a) & 0xFFFF else 0
        return gaps

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> RtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
