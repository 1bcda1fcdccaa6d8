"""The engine's conference mix on loopback: per-listener audio, matrix changes, leaving."""

from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np

from callcenter.media import g711
from callcenter.media.engine import MediaEngine
from callcenter.supervisor.modes import Mode, Role, matrix

HOST = "127.0.0.1"
LEVELS = (1000, 3000, 8000)  # caller, agent, supervisor: constant PCM values


def _phone() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    return s


def _drain(s: socket.socket) -> list[int]:
    """The PCM value of each audio packet received (frames are constant)."""
    out = []
    while True:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            return out
        if 192 <= data[1] <= 223:
            continue
        pt = data[1] & 0x7F
        pcm = np.frombuffer(g711.decode(data[12:], pt), "<i2")
        out.append(int(np.median(pcm)))


async def _talk(engine: MediaEngine, mode: Mode, switch: Mode | None = None) -> list[list[int]]:
    phones = [_phone() for _ in LEVELS]
    channels = [engine.open_channel() for _ in LEVELS]
    for ch, ph, pt in zip(channels, phones, (g711.PCMU, g711.PCMA, g711.PCMU), strict=True):
        ch.configure(remote=ph.getsockname(), payload_type=pt)
    engine.bridge(channels[0], channels[1])
    mix = engine.mix(channels, matrix([Role.CALLER, Role.AGENT, mode]))
    assert channels[0].peer is None and channels[1].peer is None
    frames = [g711.encode(struct.pack("<h", v) * 160, pt)
              for v, pt in zip(LEVELS, (g711.PCMU, g711.PCMA, g711.PCMU), strict=True)]
    for seq in range(40):
        if switch is not None and seq == 20:
            engine.set_matrix(mix, matrix([Role.CALLER, Role.AGENT, switch]))
            for ph in phones:
                _drain(ph)
        for i, (ph, ch) in enumerate(zip(phones, channels, strict=True)):
            pt = (g711.PCMU, g711.PCMA, g711.PCMU)[i]
            ph.sendto(struct.pack("!BBHII", 0x80, pt, seq, seq * 160, 7 + i) + frames[i],
                      (HOST, ch.port))
        await asyncio.sleep(0.02)
    heard = [_drain(ph)[-9:] for ph in phones]
    for ch in channels:
        ch.close()
    assert not mix.channels and not mix.active
    for ph in phones:
        ph.close()
    return heard


def _approx(values: list[int], expected: int) -> bool:
    """Most of the last frames carry the expected sum (a sender paced by asyncio.sleep runs
    slow, so the jitter buffer may underrun now and then: a silent frame)."""
    good = [v for v in values if abs(v - expected) <= max(64, expected // 16)]
    return len(good) >= 6


def test_listen_whisper_barge_on_the_clock() -> None:
    async def main() -> None:
        engine = MediaEngine(HOST, (41000, 41999))
        await engine.start()
        c, a, s = LEVELS
        try:
            heard = await _talk(engine, Mode.LISTEN)
            assert _approx(heard[0], a) and _approx(heard[1], c) and _approx(heard[2], c + a)
            heard = await _talk(engine, Mode.LISTEN, switch=Mode.WHISPER)
            assert _approx(heard[0], a) and _approx(heard[1], c + s)
            heard = await _talk(engine, Mode.BARGE)
            assert _approx(heard[0], a + s) and _approx(heard[1], c + s)
            assert _approx(heard[2], c + a)
        finally:
            await engine.close()

    asyncio.run(main())


def test_unbridge_and_bridge_take_a_channel_out_of_its_mix() -> None:
    async def main() -> None:
        engine = MediaEngine(HOST, (42000, 42999))
        await engine.start()
        try:
            chs = [engine.open_channel() for _ in range(3)]
            mix = engine.mix(chs, np.ones((3, 3)))
            engine.unbridge(chs[2])
            assert chs[2].mix is None and mix.channels == chs[:2]
            assert mix.matrix.shape == (2, 2)
            seen = []
            engine.on_bridge.append(lambda x, y: seen.append((x, y)))
            engine.bridge(chs[0], chs[2])
            assert chs[0].mix is None and mix.channels == [chs[1]]
            assert seen == [(chs[0], chs[2])]
            engine.unmix(mix)
            assert chs[1].mix is None and not mix.active
        finally:
            await engine.close()

    asyncio.run(main())


def test_a_quiet_bridge_goes_on_when_bridged_again() -> None:
    """Early media bridges quietly (no conversation for ``on_bridge`` yet); bridging the same
    pair when the call is answered keeps the bridge (never undone) and tells ``on_bridge``."""
    async def main() -> None:
        engine = MediaEngine(HOST, (43000, 43999))
        await engine.start()
        try:
            a, b = engine.open_channel(), engine.open_channel()
            seen, undone = [], []
            engine.on_bridge.append(lambda x, y: seen.append((x, y)))
            engine.bridge(a, b, notify=False)
            assert a.peer is b and b.peer is a and not seen
            unbridge = engine.unbridge
            engine.unbridge = lambda ch: (undone.append(ch), unbridge(ch))  # type: ignore[method-assign]
            engine.bridge(a, b)
            assert a.peer is b and b.peer is a and seen == [(a, b)] and not undone
        finally:
            await engine.close()

    asyncio.run(main())
