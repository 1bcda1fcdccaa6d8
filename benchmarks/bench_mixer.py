"""Mixer capacity: N supervised calls (caller, agent, supervisor in one mix each) on the clock.

The engine runs in this process with 3N channels in N mixes (the barge matrix: everybody hears
everybody, the most work per tick). A child process plays the 3N phones: each socket sends a
20 ms PCMU frame every 20 ms to its channel and counts what comes back (its CPU is not counted
here). A frame is late when the tick that sent it fired more than 10 ms after its deadline.
Prints one line per N.

    python benchmarks/bench_mixer.py --calls 50 100 200 300 --seconds 10 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
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
from callcenter.supervisor.modes import Mode, Role, matrix

HOST = "127.0.0.1"
HEADER = struct.Struct("!BBHII")


def phones(n: int, conn: Connection) -> None:
    """Child process: n sockets; after the engine's ports arrive, send 50 frames/s on each
    (paced on absolute deadlines) and count packets received until told to stop."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    targets = conn.recv()
    t = np.arange(160) / 8000
    payloads = [
        g711.ulaw_encode((np.sin(2 * np.pi * (300 + 7 * i) * t) * 8000).astype("<i2").tobytes())
        for i in range(n)
    ]
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    received = sent = 0
    seq = 0
    deadline = time.monotonic()
    while not conn.poll():
        now = time.monotonic()
        if now >= deadline:
            seq += 1
            for i, s in enumerate(socks):
                pkt = HEADER.pack(0x80, 0, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF, 1000 + i)
                try:
                    s.sendto(pkt + payloads[i], (HOST, targets[i]))
                    sent += 1
                except BlockingIOError:
                    pass
            deadline += 0.020
            continue
        for key, _ in sel.select(timeout=max(0.0, deadline - now)):
            s = key.fileobj
            while True:
                try:
                    s.recv(2048)  # type: ignore[union-attr]
                except BlockingIOError:
                    break
                received += 1
    conn.send((sent, received))


async def run(calls: int, seconds: float) -> dict[str, float]:
    engine = MediaEngine(HOST, (30000, 30000 + 8 * calls + 100))
    await engine.start()
    n = 3 * calls
    parent, child = mp.Pipe()
    proc = mp.Process(target=phones, args=(n, child), daemon=True)
    proc.start()
    phone_ports = parent.recv()
    channels = [engine.open_channel() for _ in range(n)]
    for ch, port in zip(channels, phone_ports, strict=True):
        ch.configure(remote=(HOST, port), payload_type=g711.PCMU)
    m = matrix([Role.CALLER, Role.AGENT, Mode.BARGE])
    for i in range(calls):
        engine.mix(channels[3 * i:3 * i + 3], m)
    parent.send([ch.port for ch in channels])
    await asyncio.sleep(1.0)  # warm-up: jitter buffers fill
    base = engine.stats.ticks, engine.stats.late_ticks, engine.stats.missed_ticks
    sent0 = sum(ch.stats.packets_out for ch in channels)
    late0 = sum(ch.stats.late_frames for ch in channels)
    engine.mix_time, engine.mix_ticks = 0.0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    frames = sum(ch.stats.packets_out for ch in channels) - sent0
    late = sum(ch.stats.late_frames for ch in channels) - late0
    underruns = sum(ch._jb.underruns for ch in channels if ch._jb is not None)
    ticks = engine.stats.ticks - base[0]
    result = {
        "calls": calls, "channels": n, "ticks": ticks,
        "late_ticks": engine.stats.late_ticks - base[1],
        "missed_ticks": engine.stats.missed_ticks - base[2],
        "frames": frames, "late_frames": late,
        "late_pct": 100.0 * late / max(1, frames),
        "mix_ms_per_tick": 1000.0 * engine.mix_time / max(1, engine.mix_ticks),
        "cpu_pct": 100.0 * cpu / wall,
        "max_lateness_ms": 1000.0 * engine.stats.max_lateness,
        "underruns": underruns,
        "packets_in": sum(ch.stats.packets_in for ch in channels),
    }
    parent.send("stop")
    phones_sent, phones_received = parent.recv()
    result["phones_sent"], result["phones_received"] = phones_sent, phones_received
    proc.join(5)
    await engine.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[50, 100, 200, 300])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    print(f"python {sys.version.split()[0]}, loop {'uvloop' if args.uvloop else 'asyncio'}, "
          f"{args.seconds:.0f} s per run, barge matrix (3 listeners x 2 sources per call)")
    rows = []
    for calls in args.calls:
        r = runner(run(calls, args.seconds))
        rows.append(r)
        print(f"calls={r['calls']:4d} channels={r['channels']:5d} frames={r['frames']:8d} "
              f"late={r['late_frames']:6d} ({r['late_pct']:.3f}%) "
              f"late_ticks={r['late_ticks']}/{r['ticks']} missed_ticks={r['missed_ticks']} "
              f"max_lateness={r['max_lateness_ms']:.1f}ms mix={r['mix_ms_per_tick']:.2f}ms/tick "
              f"cpu={r['cpu_pct']:.0f}% underruns={r['underruns']}", flush=True)
    ok = [r["calls"] for r in rows if r["late_pct"] < 0.1]
    print(f"largest N with < 0.1% late frames: {max(ok) if ok else 'none'} "
          f"(median mix cost {statistics.median(r['mix_ms_per_tick'] for r in rows):.2f} ms/tick)")


if __name__ == "__main__":
    main()
