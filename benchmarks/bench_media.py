"""Media clock capacity: N channels play a looped prompt to N receiving sockets on loopback.

The engine runs in this process; the receivers run in a child process (so their CPU is not
counted) and check each stream's sequence numbers for gaps. Prints one results line.

    python benchmarks/bench_media.py --channels 500 --seconds 10 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import struct
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.media import g711
from callcenter.media.engine import MediaEngine
from callcenter.media.prompts import encode_frames

HOST = "127.0.0.1"


def receiver(n: int, conn: Connection) -> None:
    """Child process: N sockets, count packets and sequence gaps until told to stop."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    packets = [0] * n
    gaps = [0] * n
    last = [-1] * n
    unpack = struct.Struct("!H").unpack_from
    while not conn.poll():
        for key, _ in sel.select(timeout=0.1):
            i = key.data
            s = key.fileobj
            while True:
                try:
                    data = s.recv(2048)  # type: ignore[union-attr]
                except BlockingIOError:
                    break
                if 192 <= data[1] <= 223:
                    continue
                (seq,) = unpack(data, 2)
                if last[i] >= 0 and seq != (last[i] + 1) & 0xFFFF:
                    gaps[i] += 1
                last[i] = seq
                packets[i] += 1
    conn.send((sum(packets), sum(gaps)))


class TimedEngine(MediaEngine):
    """Measures the time each tick of the clock takes (benchmark only)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.tick_costs: list[float] = []

    def _tick(self) -> None:
        t0 = time.perf_counter()
        super()._tick()
        self.tick_costs.append(time.perf_counter() - t0)


async def run(channels: int, seconds: float, ports: list[int], codec: int) -> dict[str, float]:
    engine = TimedEngine(HOST, (40000, 40000 + 4 * channels + 10))
    await engine.start()
    t = np.arange(8000 * 3) / 8000
    prompt = encode_frames((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2"), codec)
    for port in ports:
        ch = engine.open_channel()
        ch.configure((HOST, port), codec, 101)
        ch.play(prompt, loop=True)
    await asyncio.sleep(0.5)  # warm-up, not measured
    base = {k: getattr(engine.stats, k) for k in ("ticks", "late_ticks", "missed_ticks")}
    sent0 = sum(c.stats.packets_out for c in engine.channels)
    late0 = sum(c.stats.late_frames for c in engine.channels)
    engine.tick_costs.clear()
    engine.stats.max_lateness = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sent = sum(c.stats.packets_out for c in engine.channels) - sent0
    late = sum(c.stats.late_frames for c in engine.channels) - late0
    errors = sum(c.stats.send_errors for c in engine.channels)
    costs = sorted(engine.tick_costs)
    res = {
        "wall": wall,
        "cpu": cpu / wall,
        "ticks": engine.stats.ticks - base["ticks"],
        "late_ticks": engine.stats.late_ticks - base["late_ticks"],
        "missed_ticks": engine.stats.missed_ticks - base["missed_ticks"],
        "max_late_ms": engine.stats.max_lateness * 1000,
        "sent": sent,
        "late_frames": late,
        "send_errors": errors,
        "tick_p50_ms": statistics.median(costs) * 1000 if costs else 0.0,
        "tick_p99_ms": costs[int(0.99 * (len(costs) - 1))] * 1000 if costs else 0.0,
    }
    await engine.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--codec", choices=("pcmu", "pcma"), default="pcmu")
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = ap.parse_args()
    codec = g711.PCMU if args.codec == "pcmu" else g711.PCMA

    parent, child = mp.Pipe()
    proc = mp.Process(target=receiver, args=(args.channels, child), daemon=True)
    proc.start()
    ports: list[int] = parent.recv()
    if args.uvloop:
        import uvloop

        uvloop.install()
    res = asyncio.run(run(args.channels, args.seconds, ports, codec))
    time.sleep(0.2)
    parent.send("stop")
    received, gaps = parent.recv()
    proc.join(5)
    expected = args.channels * res["wall"] / 0.02
    print(
        f"bench_media channels={args.channels} seconds={res['wall']:.1f} "
        f"loop={'uvloop' if args.uvloop else 'asyncio'} cpu={100 * res['cpu']:.1f}% "
        f"pkts_sent={res['sent']:.0f} ({res['sent'] / res['wall']:.0f}/s, "
        f"{100 * res['sent'] / expected:.1f}% of nominal) "
        f"late_frames={100 * res['late_frames'] / max(res['sent'], 1):.2f}% "
        f"late_ticks={res['late_ticks']:.0f}/{res['ticks']:.0f} missed_ticks={res['missed_ticks']:.0f} "
        f"max_late={res['max_late_ms']:.1f}ms tick_cost_p50={res['tick_p50_ms']:.2f}ms "
        f"p99={res['tick_p99_ms']:.2f}ms send_errors={res['send_errors']:.0f} "
        f"received={received} seq_gaps={gaps} pid={os.getpid()}"
    )


if __name__ == "__main__":
    main()
