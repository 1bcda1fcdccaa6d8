"""The CPU of one relayed packet in the media engine, per path (issue 17).

Two channels of one in-process `MediaEngine`, bridged, PCMU both ways; a far-end socket
queues packets of one stream on the first channel's port (in batches, so the socket never
overflows), then one step per packet is called directly, without the event loop:

- ``floor``: `recvfrom` and `sendto` of the datagram as it came: the two syscalls, nothing else;
- ``plain``: `Channel._on_readable`, whose plain relay takes the packet;
- ``full``: `recvfrom`, then `Channel._on_packet` (every check, `ReceptionStats.update`,
  `RtpStream.restamp`, `_send`): the path every packet took before the plain relay.

Per path: microseconds of CPU per packet (`time.process_time` around the steps only). With
``--callgrind``, each path is also run under valgrind twice (N and 6 N packets) and the
difference gives user-space instructions per packet, which do not depend on what else the
machine is doing. They include the benchmark's own per-packet work (the far end's send, the
sink's read), the same for every path: compare the paths' differences from ``floor``. The
kernel's part of the syscalls is not counted.

    python3 benchmarks/bench_relay_step.py --packets 200000
    python3 benchmarks/bench_relay_step.py --packets 4000 --callgrind

Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from callcenter.media.engine import MediaEngine  # noqa: E402

PATHS = ("floor", "plain", "full")
BATCH = 200
HEADER = struct.Struct("!BBHII")


async def measure(path: str, packets: int, ports: tuple[int, int]) -> dict[str, object]:
    engine = MediaEngine("127.0.0.1", ports)
    await engine.start()
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    try:
        a, b = engine.open_channel(), engine.open_channel()
        a.configure(far.getsockname())
        b.configure(sink.getsockname())
        engine.bridge(a, b)
        recvfrom, sendto, dest = a._sock.recvfrom, b._sock.sendto, b.remote
        step: Callable[[], None]
        if path == "floor":
            def step() -> None:
                data, _ = recvfrom(2048)
                sendto(data, dest)
        elif path == "plain":
            step = a._on_readable
        else:
            now = engine.now

            def step() -> None:
                data, addr = recvfrom(2048)
                a._on_packet(data, addr, now())
        payload = bytes(160)
        to = ("127.0.0.1", a.port)
        seq, ts, cpu, done = 1000, 5000, 0.0, 0
        while done < packets:
            n = min(BATCH, packets - done)
            for _ in range(n):
                far.sendto(HEADER.pack(0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0xCAFE) + payload,
                           to)
                seq, ts = seq + 1, ts + 160
            t0 = time.process_time()
            for _ in range(n):
                step()
            cpu += time.process_time() - t0
            done += n
            while True:
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break
        relayed = b.stats.relayed_out if path != "floor" else done
        return {"path": path, "packets": done, "relayed": relayed,
                "cpu_us_per_packet": round(cpu / done * 1e6, 3),
                "lost": a.stats.packets_lost if path != "floor" else 0}
    finally:
        far.close()
        sink.close()
        await engine.close()


def instructions(path: str, packets: int, ports: tuple[int, int]) -> int:
    """User-space instructions of a run of this script for one path, counted by callgrind."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           os.path.abspath(__file__), "--paths", path, "--packets", str(packets),
           "--ports", str(ports[0]), str(ports[1])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONHASHSEED="0"))
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit(f"no callgrind total in: {out.stderr[-500:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--ports", type=int, nargs=2, default=(31000, 31099))
    ap.add_argument("--callgrind", action="store_true",
                    help="also count user-space instructions per packet under valgrind")
    args = ap.parse_args()
    paths = args.paths.split(",")
    ports = (args.ports[0], args.ports[1])
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    for path in paths:
        if path not in PATHS:
            raise SystemExit(f"unknown path {path!r}: one of {', '.join(PATHS)}")
        result = run(measure(path, args.packets, ports))
        if args.callgrind:
            small = instructions(path, args.packets, ports)
            large = instructions(path, 6 * args.packets, ports)
            result["instructions_per_packet"] = round((large - small) / (5 * args.packets))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
