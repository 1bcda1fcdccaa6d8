"""The benchmarks' count of the frames callers receive (benchmarks/rtp_frames.py): expected,
late (40 ms behind the stream's grid) and missing (skipped ticks, lost packets)."""

from __future__ import annotations

import socket
import struct
import threading
from multiprocessing import Pipe

import numpy as np

from benchmarks.rtp_frames import Frames, churn_sink, stream_frames

LATE_S = 0.040


def stream(n: int, seq0: int = 0, ts0: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n frames on time (5 ms on the way), 20 ms apart: arrival s, raw timestamps, sequences."""
    i = np.arange(n)
    t = 1000.0 + 0.005 + i * 0.020
    return t, (ts0 + 160 * i) % (1 << 32), (seq0 + i) % (1 << 16)


def test_a_clean_stream_across_wrap_arounds_has_nothing_late_or_missing() -> None:
    t, ts, seq = stream(150, seq0=65_500, ts0=(1 << 32) - 800)
    t = t + np.where(np.arange(150) % 7 == 0, 0.012, 0.0)  # jitter well under 40 ms
    assert stream_frames(t, ts, seq, LATE_S) == Frames(expected=150, received=150)


def test_a_stall_a_skipped_tick_and_a_lost_packet_are_each_counted() -> None:
    n = 150
    slot = np.arange(n) + np.where(np.arange(n) >= 100, 2, 0)  # 2 ticks skipped before #100
    t = 1000.0 + 0.005 + slot * 0.020
    t[50:55] = t[55] + 0.002  # a 100 ms stall: frames 50-54 leave with 55
    ts, seq = 160 * slot, np.arange(n)
    keep = np.arange(n) != 120  # lost on the way: a gap in both
    got = stream_frames(t[keep], ts[keep], seq[keep], LATE_S)
    # behind their slots: #50 102 ms, #51 82, #52 62, #53 42 (late), #54 22 ms (in time)
    assert got == Frames(expected=152, received=149, late=4, missing=3)
    assert got.summary()["late_or_missing_pct"] == round(100 * 7 / 152, 4)


def test_the_sink_tells_streams_apart_by_ssrc_and_counts_them_when_they_end() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    parent, child = Pipe()
    sink = threading.Thread(target=churn_sink, args=(child, port, LATE_S, 60.0, 0.5))
    sink.start()
    assert parent.poll(10) and parent.recv() == "ready"
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for seq in range(30):  # two calls from one source port, told apart by SSRC
        for ssrc in (1, 2):
            if ssrc == 1 or seq != 10:  # one frame of the second call lost
                tx.sendto(struct.pack("!BBHII", 0x80, 0, seq, 160 * seq, ssrc) + bytes(160),
                          ("127.0.0.1", port))
    tx.sendto(struct.pack("!BBHII", 0x80, 101, 0, 0, 3) + bytes(4), ("127.0.0.1", port))
    tx.close()
    parent.send("stop")
    assert parent.poll(30)
    res = parent.recv()
    sink.join(10)
    assert (res["streams"], res["packets"]) == (2, 59)
    assert (res["expected"], res["received"], res["missing"]) == (60, 59, 1)
