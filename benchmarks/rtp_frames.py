"""Frames as the callers receive them: the counting shared by bench_concurrent.py and
bench_cps.py, and the callers' RTP sink of the churn benchmark (standard library and numpy;
it reads the wire, not the server's figures).

Per stream (the server's source port + SSRC), with arrival = the kernel's receive time
(SO_TIMESTAMPNS), so a busy sink does not make frames look late:

  * grid: frame k is due at anchor + (timestamp_k - timestamp_0) / 8000, the anchor being the
    earliest arrival minus its offset (the best latency that stream ever saw);
  * late: arrived more than late_s (40 ms in both benchmarks) after its slot;
  * expected: the span of timestamps / 160 (20 ms of PCMU) or of sequence numbers, the larger;
  * missing: timestamps or sequence numbers in that span that never arrived (a clock that
    skips ticks after a stall advances the timestamp; a loss on the way leaves a sequence gap).
"""

from __future__ import annotations

import array
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

HOST = "127.0.0.1"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; needs CAP_NET_ADMIN
TIMESPEC = struct.Struct("@qq")
RTP_SEQ_TS = struct.Struct("!HI")
SSRC = struct.Struct("!I")
SINK_BUFFER = 32 << 20


@dataclass
class Frames:
    """Frame counts of one stream or a sum of streams."""

    expected: int = 0
    received: int = 0
    late: int = 0
    missing: int = 0

    def add(self, other: Frames) -> None:
        self.expected += other.expected
        self.received += other.received
        self.late += other.late
        self.missing += other.missing

    def summary(self) -> dict[str, Any]:
        bad = self.late + self.missing
        return {**asdict(self), "late_or_missing_pct": round(100 * bad / max(self.expected, 1), 4)}


def unwrap(values: np.ndarray, modulus: int) -> np.ndarray:
    """RTP sequence numbers or timestamps made monotonic across wrap-arounds, from 0."""
    d = np.diff(values)
    half = modulus // 2
    d = np.where(d > half, d - modulus, np.where(d < -half, d + modulus, d))
    return np.concatenate(([0], np.cumsum(d)))


def lateness(t: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Seconds each frame arrived behind its slot on the stream's grid (``ts`` unwrapped)."""
    lat = t - ts / 8000.0
    return lat - lat.min()


def count_frames(ts: np.ndarray, sq: np.ndarray, late: np.ndarray) -> Frames:
    """Expected, received, late and missing frames of the frames given (unwrapped timestamps
    and sequence numbers, and which of them were late)."""
    exp_ts = int((ts.max() - ts.min()) // 160) + 1
    exp_sq = int(sq.max() - sq.min()) + 1
    missing = max(exp_ts - len(np.unique(ts)), exp_sq - len(np.unique(sq)), 0)
    return Frames(max(exp_ts, exp_sq), len(ts), int(late.sum()), missing)


def stream_frames(t: np.ndarray, ts: np.ndarray, seq: np.ndarray, late_s: float) -> Frames:
    """The counts of one whole stream: arrival times (s), raw RTP timestamps and sequences."""
    ts_u = unwrap(ts.astype(np.int64), 1 << 32)
    late = lateness(t, ts_u) > late_s
    return count_frames(ts_u, unwrap(seq.astype(np.int64), 1 << 16), late)


def open_sink(port: int) -> tuple[socket.socket, socket.socket]:
    """The RTP socket on 127.0.0.1:port (a large buffer, kernel receive times) and the RTCP
    one on port + 1, non-blocking (the server's reports and BYEs land there rather than
    bounce; `receive` drains it, or a full buffer would count in the host's UDP drops)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SINK_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SINK_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((HOST, port))
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind((HOST, port + 1))
    rtcp.setblocking(False)
    return sock, rtcp


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped at our socket on 127.0.0.1:port (-1: none found)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want:
                return int(cols[-1])
    return -1


Stream = tuple["array.array[float]", "array.array[int]", "array.array[int]"]
"""One stream's arrival times (kernel, s), raw RTP timestamps and sequence numbers."""


def receive(sock: socket.socket, rtcp: socket.socket, live: dict[tuple[int, int], Stream],
            conn: Connection, seconds: float, sweep: Callable[[float], None] | None = None) -> int:
    """Record the PCMU frames arriving at ``sock`` into ``live`` by (source port, SSRC) until
    ``conn`` says "stop" or ``seconds`` passed, dropping what reaches ``rtcp``; ``sweep(now)``
    runs about once a second. Returns the number of frames read."""
    sock.settimeout(0.2)
    cspace = socket.CMSG_SPACE(TIMESPEC.size)
    recvmsg, unpack_ts, unpack_rtp, ssrc_of = (sock.recvmsg, TIMESPEC.unpack,
                                               RTP_SEQ_TS.unpack_from, SSRC.unpack_from)
    packets = 0
    deadline = time.monotonic() + seconds
    next_sweep = time.time() + 1
    while time.monotonic() < deadline:  # bounded; normally ends on "stop"
        try:
            data, anc, _flags, addr = recvmsg(2048, cspace)
        except TimeoutError:
            data = b""
        if len(data) >= 12 and (data[1] & 0x7F) == 0:  # PCMU audio frames only
            packets += 1
            sec, nsec = unpack_ts(anc[0][2]) if anc else (0, 0)
            key = (addr[1], ssrc_of(data, 8)[0])
            seq, ts = unpack_rtp(data, 2)
            s = live.get(key)
            if s is None:
                s = live[key] = (array.array("d"), array.array("q"), array.array("q"))
            s[0].append(sec + nsec * 1e-9 if anc else time.time())
            s[1].append(ts)
            s[2].append(seq)
            if packets & 0x3FF:
                continue
        for _ in range(100_000):  # bounded; a few arrive between two turns
            try:
                rtcp.recv(2048)
            except BlockingIOError:
                break
        if conn.poll():
            conn.recv()  # "stop"
            break
        if sweep is not None and time.time() >= next_sweep:
            next_sweep = time.time() + 1
            sweep(next_sweep - 1)
    return packets


def as_arrays(stream: Stream) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, ts, sq = stream
    return (np.frombuffer(t, dtype=np.float64), np.frombuffer(ts, dtype=np.int64),
            np.frombuffer(sq, dtype=np.int64))


def churn_sink(conn: Connection, port: int, late_s: float, seconds: float, idle_s: float = 10.0,
               nice: int = 0) -> None:
    """Child process: read the callers' RTP until told to stop (or ``seconds`` passed); a
    stream silent for ``idle_s`` is over (its call ended): counted and forgotten, so memory
    stays bounded however long the run. Sends the totals back on ``conn``."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    sock, rtcp = open_sink(port)
    conn.send("ready")
    live: dict[tuple[int, int], Stream] = {}
    total = Frames()
    spans: list[int] = []  # each stream's expected frames: its audible length

    def close(now: float) -> None:
        for key in [k for k, (t, _, _) in live.items() if t[-1] < now - idle_s]:
            frames = stream_frames(*as_arrays(live.pop(key)), late_s)
            total.add(frames)
            spans.append(frames.expected)

    packets = receive(sock, rtcp, live, conn, seconds, close)
    drops = udp_drops(port)
    close(float("inf"))
    conn.send({"streams": len(spans), "packets": packets, **total.summary(),
               "stream_s_min": min(spans, default=0) / 50, "stream_s_max": max(spans, default=0) / 50,
               "sink_kernel_drops": drops, "valid": drops == 0, "sink_cpu_s": time.process_time()})
    sock.close()
    rtcp.close()
