"""An RTP load generator and sink that owe nothing to the server under test (standard library
and numpy only; it never imports `callcenter`), used by bench_bridged.py.

    python rtp_load.py send --fds 5,6 --plan plan.json --start NS --seconds 60 --out sent.json
    python rtp_load.py sink --fds 5,6 --until NS --out recv.bin

The parent binds the two sockets (the callers' side and the agents' side, both on 127.0.0.1)
and passes them to both processes: the sender only sends on them, the sink only reads them.
The plan is a list of streams [socket index, destination port]. Each stream sends one 172-byte
PCMU packet every 20 ms, the streams' slots spread evenly over the 20 ms. The payload starts
with a magic word, the stream number, the sequence number, the slot time and the send time
(CLOCK_REALTIME ns, taken right before `sendto`); the rest is PCMU silence. The sink records
(stream, sequence, send time, kernel receive time) of every packet carrying the magic; the
kernel's SO_TIMESTAMPNS on loopback is when the relay's `sendto` ran, so the sink's own
delays do not count (it reads in batches, waking every 5 ms), and the sender's lateness
(send time - slot) is reported apart.
"""

from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import struct
import sys
import time
from array import array
from pathlib import Path

MAGIC = 0x42524447  # "BRDG"
RTP = struct.Struct("!BBHII")
PROBE = struct.Struct("!IIIqq")  # magic, stream, seq, slot ns, send ns
RECORD = struct.Struct("<IIqq")  # stream, seq, send ns, receive ns
PACKET = 12 + 160
PTIME_NS = 20_000_000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")


def sockets(fds: str) -> list[socket.socket]:
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",")]


def send(args: argparse.Namespace) -> None:
    socks = sockets(args.fds)
    plan = json.loads(Path(args.plan).read_text())
    n = len(plan)
    bufs = [bytearray(b"\xff" * PACKET) for _ in range(n)]
    dests = [(socks[side], ("127.0.0.1", port)) for side, port in plan]
    phase = [i * PTIME_NS // n for i in range(n)]
    rounds = int(args.seconds * 50)
    lateness = array("q")
    errors = 0
    start = args.start
    while time.time_ns() < start - 2_000_000:
        time.sleep(0.001)
    give_up = start + int((args.seconds + 10) * 1e9)
    done = 0
    for r in range(rounds):  # bounded: rounds * streams packets, and a deadline
        if time.time_ns() > give_up:
            break  # the box does not let us keep up: say so rather than run on
        done = r + 1
        base = start + r * PTIME_NS
        for i in range(n):
            slot = base + phase[i]
            now = time.time_ns()
            if slot - now > 300_000:
                time.sleep((slot - now) / 1e9)
            buf = bufs[i]
            RTP.pack_into(buf, 0, 0x80, 0, r & 0xFFFF, (r * 160) & 0xFFFFFFFF, 0x10000 + i)
            sent = time.time_ns()
            PROBE.pack_into(buf, 12, MAGIC, i, r, slot, sent)
            sock, dest = dests[i]
            try:
                sock.sendto(buf, dest)
            except OSError:
                errors += 1
            lateness.append(sent - slot)
    late = sorted(lateness)
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))] / 1e6 if late else 0.0  # noqa: E731
    out = {"streams": n, "per_stream": done, "rounds_planned": rounds, "sent": len(late), "send_errors": errors,
           "lateness_ms": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": q(1.0)},
           "over_5ms": sum(1 for v in late if v > 5_000_000), "cpu_s": time.process_time()}
    Path(args.out).write_text(json.dumps(out))


def sink(args: argparse.Namespace) -> None:
    socks = sockets(args.fds)
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    buf = bytearray(2048)
    cspace = socket.CMSG_SPACE(TIMESPEC.size)
    out = bytearray()
    other = 0
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # the sender is done
    t0 = time.monotonic()
    while time.time_ns() < args.until:  # bounded by the deadline; drains once more on stop
        # Read in batches, a wake-up every 5 ms at most: the receive times are the kernel's,
        # so waiting costs the figures nothing, and a sink that woke for nearly every packet
        # (9,000 times a second at 600 calls) took the relays' CPU on a small box (the
        # sockets hold 32 MB: 5 ms of 60,000 packets/s is 300 packets).
        time.sleep(0.005)
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            for _ in range(4096):  # bounded; a socket is drained each wake-up
                try:
                    size, anc, _flags, _addr = s.recvmsg_into([buf], cspace)
                except BlockingIOError:
                    break
                rx = 0
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = TIMESPEC.unpack(data[: TIMESPEC.size])
                        rx = sec * 1_000_000_000 + nsec
                head = 12 + 4 * (buf[0] & 0x0F)
                if buf[0] & 0x10 and size >= head + 4:  # header extension
                    head += 4 + 4 * int.from_bytes(buf[head + 2: head + 4], "big")
                if size < head + PROBE.size:
                    other += 1
                    continue
                magic, stream, seq, _slot, sent = PROBE.unpack_from(buf, head)
                if magic != MAGIC:
                    other += 1
                    continue
                out += RECORD.pack(stream, seq, sent, rx or time.time_ns())
        if stop:
            break
    Path(args.out).write_bytes(out)
    Path(args.out + ".json").write_text(json.dumps({"records": len(out) // RECORD.size,
                                                    "other": other,
                                                    "cpu_s": time.process_time(),
                                                    "wall_s": time.monotonic() - t0}))


def analyse(records: bytes, streams: int, per_stream: int) -> dict[str, float]:
    """Loss and latency from the sink's records (numpy)."""
    import numpy as np

    dt = np.dtype([("stream", "<u4"), ("seq", "<u4"), ("sent", "<i8"), ("rx", "<i8")])
    rec = np.frombuffer(records, dtype=dt)
    expected = streams * per_stream
    if not len(rec):
        return {"expected": expected, "received": 0, "lost": expected, "loss_pct": 100.0}
    keys = rec["stream"].astype(np.int64) * (per_stream + 1) + rec["seq"]
    unique = len(np.unique(keys))
    lat = (rec["rx"] - rec["sent"]) / 1e6
    q = np.percentile(lat, [50, 99, 99.9]).tolist()
    return {"expected": expected, "received": int(len(rec)), "duplicates": int(len(rec) - unique),
            "lost": expected - unique, "loss_pct": round(100 * (expected - unique) / expected, 4),
            "latency_ms_p50": round(q[0], 3), "latency_ms_p99": round(q[1], 3),
            "latency_ms_p999": round(q[2], 3), "latency_ms_max": round(float(lat.max()), 3),
            "over_5ms": int((lat > 5).sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("role", choices=["send", "sink"])
    p.add_argument("--fds", required=True, help="inherited socket fds, comma-separated")
    p.add_argument("--plan", help="send: JSON list of [socket index, destination port]")
    p.add_argument("--start", type=int, help="send: first slot, CLOCK_REALTIME ns")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--until", type=int, help="sink: stop reading at this CLOCK_REALTIME ns")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    args.seconds = min(args.seconds, 600.0)
    (send if args.role == "send" else sink)(args)


if __name__ == "__main__":
    sys.exit(main())
