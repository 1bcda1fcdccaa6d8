"""The media engine over real UDP on 127.0.0.1: prompts, DTMF, bridging, recording.

No timing is asserted: waits are bounded loops that stop as soon as the condition holds.
"""

from __future__ import annotations

import asyncio
import socket
import wave
from collections.abc import Awaitable, Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from callcenter.media import g711
from callcenter.media.dtmf import COL_FREQS, ROW_FREQS, Rfc4733Receiver, event_packets
from callcenter.media.engine import Channel, MediaEngine, PlayOutcome
from callcenter.media.prompts import Prompt, encode_frames
from callcenter.media.recorder import WavRecorder
from callcenter.media.rtp import (
    ReceptionStats,
    RtpPacket,
    decode_rtp,
    encode_rtp,
    seq_delta,
    ts_delta,
)
from callcenter.media.srtp import new_key

HOST = "127.0.0.1"
PORTS = (34000, 34999)


def run(coro_fn: Callable[[MediaEngine], Awaitable[None]]) -> None:
    async def main() -> None:
        engine = MediaEngine(HOST, PORTS)
        await engine.start()
        try:
            await coro_fn(engine)
        finally:
            await engine.close()

    asyncio.run(main())


async def until(cond: Callable[[], bool], ticks: int = 200) -> None:
    """Wait (bounded) for a condition; fail the test if it never holds."""
    for _ in range(ticks):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def sine_pcm(freq: float, seconds: float, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2")


def pair(engine: MediaEngine, pt: int = g711.PCMU, **kw: bool) -> tuple[Channel, Channel]:
    a = engine.open_channel()
    b = engine.open_channel(**kw)
    a.configure((HOST, b.port), pt, 101)
    b.configure((HOST, a.port), pt, 101)
    return a, b


def read_wav_samples(path: Path) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """(channels, sample width, rate, frames) and the samples, read with the stdlib."""
    with wave.open(str(path)) as w:
        params = (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes())
        return params, np.frombuffer(w.readframes(w.getnframes()), "<i2")


@pytest.mark.parametrize("pt", [g711.PCMU, g711.PCMA])
def test_prompt_arrives_decoded_and_is_recorded(tmp_path: Path, pt: int) -> None:
    src = sine_pcm(440, 1.0)
    path = tmp_path / "rec.wav"

    async def body(engine: MediaEngine) -> None:
        a, b = pair(engine, pt)
        outcome: list[PlayOutcome] = []
        b.start_recording(path)
        a.play(Prompt("tone", g711.PCMU, encode_frames(src, g711.PCMU)), on_done=outcome.append)
        await until(lambda: outcome == [PlayOutcome.DONE])
        # every packet sent has arrived (a skipped tick is silence in the file, so the sample
        # count alone can be reached while the last packet is still on its way)
        sent = a.stats.packets_out
        assert sent >= 50
        await until(lambda: b.stats.packets_in >= sent)
        await until(lambda: b._recorder is not None and b._recorder.samples >= len(src) + 800)
        b.stop_recording()

    run(body)
    params, rec = read_wav_samples(path)
    assert params[:3] == (1, 2, 8000)
    x = rec.astype(float)
    # The file holds one 160-sample frame per packet, on the packets' grid. Silence before the
    # prompt and gaps the sender's clock skipped under load (it never sends a burst) are
    # quiet frames; what remains must be the prompt itself, in order.
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    loud = np.abs(frames).max(axis=1) > 50
    first = int(np.argmax(loud))
    if first:  # the silence the channel sent before the prompt
        assert np.sqrt(np.mean(frames[:first] ** 2)) < 50
    seg = frames[loud].ravel()[: len(src)]
    assert len(seg) == len(src)
    assert np.sqrt(np.mean(seg**2)) > 4000  # amplitude 8000 sine -> RMS 5657
    assert np.corrcoef(seg, src)[0, 1] > 0.99


def test_stereo_recording_far_end_left_our_audio_right(tmp_path: Path) -> None:
    src = sine_pcm(500, 0.5)
    path = tmp_path / "st.wav"

    async def body(engine: MediaEngine) -> None:
        a, b = pair(engine)
        a.start_recording(path, stereo=True)
        done: list[PlayOutcome] = []
        a.play(encode_frames(src, g711.PCMU), done.append)
        await until(lambda: bool(done))
        a.stop_recording()

    run(body)
    params, data = read_wav_samples(path)
    assert params[:3] == (2, 2, 8000)
    left, right = data.reshape(-1, 2).T.astype(float)
    assert np.sqrt(np.mean(left**2)) < 50  # b sends silence
    assert np.sqrt(np.mean(right**2)) > 4000 * np.sqrt(len(src) / len(right))  # the prompt


def test_rfc4733_digits_arrive_once_each() -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = pair(engine)
        got: list[str] = []
        b.on_dtmf = got.append
        a.send_dtmf("1#1*9")
        await until(lambda: len(got) >= 5)
        await until(lambda: not a._dtmf_out)
        for _ in range(5):  # a few more ticks: retransmitted end packets must not count
            await asyncio.sleep(0.02)
        assert got == list("1#1*9")

    run(body)


def test_interruptible_prompt_stops_on_digit_queue_continues() -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = pair(engine)
        long = encode_frames(sine_pcm(300, 10.0), g711.PCMU)
        outcomes: list[tuple[str, PlayOutcome]] = []
        b.play(long, lambda o: outcomes.append(("menu", o)), interruptible=True)
        b.play(long, lambda o: outcomes.append(("more", o)), interruptible=True)
        b.play(long[:5], lambda o: outcomes.append(("after", o)))
        await until(lambda: b.stats.packets_out > 5)
        a.send_dtmf("3")
        await until(lambda: len(outcomes) >= 3)
        assert outcomes == [
            ("menu", PlayOutcome.INTERRUPTED),
            ("more", PlayOutcome.INTERRUPTED),
            ("after", PlayOutcome.DONE),
        ]
        b.play(long, lambda o: outcomes.append(("moh", o)), loop=True)
        b.stop_playing()
        assert outcomes[-1] == ("moh", PlayOutcome.STOPPED)

    run(body)


def dtmf_tone(digit_row: int, digit_col: int, seconds: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    x = 5000 * np.sin(2 * np.pi * ROW_FREQS[digit_row] * t)
    x += 5000 * np.sin(2 * np.pi * COL_FREQS[digit_col] * t)
    return x.astype("<i2")


def test_inband_dtmf_detected_on_channel_with_flag() -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = pair(engine, g711.PCMA, inband_dtmf=True)
        got: list[str] = []
        b.on_dtmf = got.append
        pcm = np.concatenate([dtmf_tone(2, 0, 0.08), np.zeros(800, "<i2"), dtmf_tone(3, 1, 0.08)])
        done: list[PlayOutcome] = []
        a.play(encode_frames(pcm, g711.PCMA), done.append)
        await until(lambda: bool(done))
        await until(lambda: len(got) >= 2)
        assert got == ["7", "0"]

    run(body)


class Peer:
    """A far end that nobody in the engine controls: a raw UDP socket."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.packets: list[RtpPacket] = []

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, (HOST, port))

    def poll(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            if 192 <= data[1] <= 223:
                continue  # RTCP
            self.packets.append(decode_rtp(data))

    def close(self) -> None:
        self.sock.close()


def bridged(engine: MediaEngine, x: Peer, y: Peer, **kw: bool) -> tuple[Channel, Channel]:
    """Channel a facing far end x and channel b facing y, bridged (PCMU, events on 101)."""
    a = engine.open_channel(**kw)
    b = engine.open_channel()
    a.configure(x.addr, g711.PCMU, 101)
    b.configure(y.addr, g711.PCMU, 101)
    engine.bridge(a, b)
    return a, b


def _one_stream(pkts: list[RtpPacket], pt: int) -> list[RtpPacket]:
    """Asserts the packets are one RTP stream (one SSRC, sequence +1 throughout); returns
    those of payload type ``pt``."""
    assert {p.ssrc for p in pkts} == {pkts[0].ssrc}
    assert all(seq_delta(q.sequence, p.sequence) == 1 for p, q in pairwise(pkts))
    return [p for p in pkts if p.payload_type == pt]


def test_bridge_relays_restamped_and_transcoded_with_continuous_stream() -> None:
    x, y = Peer(), Peer()
    src = sine_pcm(700, 0.4)
    frames = encode_frames(src, g711.PCMU)

    async def body(engine: MediaEngine) -> None:
        a = engine.open_channel()
        b = engine.open_channel()
        a.configure((HOST, 9), g711.PCMU, 101)  # wrong port: symmetric RTP must fix it
        b.configure(y.addr, g711.PCMA, 96)
        dtmf_a: list[str] = []
        a.on_dtmf = dtmf_a.append
        await until(lambda: (y.poll(), len(y.packets) >= 5)[1])  # b sends silence meanwhile
        engine.bridge(a, b)
        n_before = len(y.packets)
        for i, f in enumerate(frames):
            pkt = RtpPacket(0, 65530 + i, 2**32 - 800 + 160 * i, 0xCAFE, f, marker=(i == 0))
            x.send(encode_rtp(pkt), a.port)
            await asyncio.sleep(0.02)
        ev_ts = 2**32 - 800 + 160 * len(frames)
        for p in event_packets("4"):
            x.send(encode_rtp(RtpPacket(101, 0, ev_ts, 0xCAFE, p.payload, p.marker)), a.port)
        await until(lambda: (y.poll(), len(y.packets) >= n_before + len(frames) + 7)[1])
        assert a.remote == x.addr
        x.poll()
        assert x.packets == []  # a is bridged and idle: it sends nothing back to x
        engine.unbridge(a)
        await until(
            lambda: (
                y.poll(),
                y.packets[-1].payload_type == 8 and y.packets[-1].payload == g711.silence(8),
            )[1]
        )
        assert dtmf_a == ["4"]

    try:
        run(body)
    finally:
        x.close()
        y.close()
    audio = _one_stream(y.packets, 8)
    assert all(ts_delta(q.timestamp, p.timestamp) >= 160 for p, q in pairwise(audio))
    relayed = [p for p in audio if p.payload != g711.silence(8)]
    assert [p.payload for p in relayed] == [g711.transcode(f, 0, 8) for f in frames]
    assert relayed[0].marker and not any(p.marker for p in relayed[1:])
    assert all(ts_delta(q.timestamp, p.timestamp) == 160 for p, q in pairwise(relayed))
    events = [p for p in y.packets if p.payload_type == 96]
    assert len(events) == 7 and len({p.timestamp for p in events}) == 1
    assert ts_delta(events[0].timestamp, relayed[-1].timestamp) == 160
    rx = Rfc4733Receiver()
    assert [d for p in events if (d := rx.feed(p.payload, p.timestamp, p.ssrc))] == ["4"]


def test_a_bridged_channel_still_plays_a_prompt_and_sends_its_dtmf_on_the_clock() -> None:
    """The clock skips bridged channels with nothing of their own queued, not those playing a
    prompt (an announcement to one party) or sending DTMF."""
    x, y = Peer(), Peer()
    frames = encode_frames(sine_pcm(500, 0.2), g711.PCMU)

    async def body(engine: MediaEngine) -> None:
        a, b = bridged(engine, x, y)
        done: list[PlayOutcome] = []
        a.play(frames, done.append)
        await until(lambda: bool(done))
        a.send_dtmf("5")
        await until(lambda: (x.poll(), sum(p.payload_type == 101 for p in x.packets) >= 3)[1])
        y.poll()

    try:
        run(body)
    finally:
        x.close()
        y.close()
    audio = [p.payload for p in x.packets if p.payload_type == 0]
    assert audio == list(frames)  # the prompt, and no silence around it: a is bridged
    assert y.packets == []  # b is bridged and its party silent: nothing to relay


def test_bridge_relays_payload_as_is_decoding_only_while_the_audio_is_needed(
        tmp_path: Path) -> None:
    """A bridge forwards the payload bytes untouched and decodes nothing (in-band DTMF
    detection stops once the far end sends RFC 4733 events); a recording or a mix coming and
    going mid-call decodes meanwhile, and the far end sees one continuous stream throughout."""
    x, y = Peer(), Peer()
    frames = encode_frames(sine_pcm(700, 1.0), g711.PCMU)
    sent: list[bytes] = []

    async def body(engine: MediaEngine) -> None:
        a, b = bridged(engine, x, y, inband_dtmf=True)
        seq = 0

        async def burst(n: int, pace: bool = False) -> None:
            nonlocal seq
            for _ in range(n):
                f = frames[len(sent) % len(frames)]
                x.send(encode_rtp(RtpPacket(0, seq, 160 * seq, 0xCAFE, f)), a.port)
                sent.append(f)
                seq += 1
                if pace:
                    await asyncio.sleep(0.02)
            await until(lambda: a.stats.packets_in == seq)

        for p in event_packets("1"):  # the far end sends digits out of band
            x.send(encode_rtp(RtpPacket(101, seq, 0, 0xCAFE, p.payload, p.marker)), a.port)
            seq += 1
        await until(lambda: a.stats.dtmf_in == 1)
        await burst(10)
        assert a.stats.decoded == 0 and b.stats.decoded == 0
        a.start_recording(tmp_path / "mid.wav")
        await burst(10)
        a.stop_recording()
        assert a.stats.decoded == 10
        await burst(10)
        mix = engine.mix([a, b], [[0, 1], [1, 0]])
        await burst(10, pace=True)
        mixed = b.stats.packets_out
        engine.bridge(a, b)
        assert not mix.active
        await burst(10)
        assert a.stats.decoded == 10
        await until(lambda: (y.poll(), b.stats.packets_out == len(y.packets))[1])
        assert mixed < b.stats.packets_out

    try:
        run(body)
    finally:
        x.close()
        y.close()
    audio = _one_stream(y.packets, 0)
    assert all(ts_delta(q.timestamp, p.timestamp) > 0 for p, q in pairwise(audio))
    relayed = [p.payload for p in audio if len(p.payload) == 160]
    assert relayed[:30] == sent[:30] and relayed[-10:] == sent[-10:]


class StepClock:
    """Arrival times for a channel's packets: 20 ms apart, with a made-up network jitter."""

    def __init__(self, start: float) -> None:
        self.times: list[float] = []
        self.start = start

    def __call__(self) -> float:
        k = len(self.times)
        self.times.append(self.start + 0.02 * k + 0.0007 * (k * 7 % 5))
        return self.times[-1]


def test_the_plain_relay_counts_and_restamps_as_the_full_packet_path() -> None:
    """Most packets of a bridged call take the plain relay of `Channel._on_readable`; its
    reception figures (loss, sequence cycles, RFC 3550 jitter) and the restamped stream are
    what the full path gives: checked against `ReceptionStats` fed the same arrivals, with a
    sequence wrap, a lost packet and a marker on the way."""
    x, y = Peer(), Peer()
    frames = encode_frames(sine_pcm(600, 0.6), g711.PCMU)
    seqs = [(65520 + i) % 65536 for i in range(len(frames))]
    del seqs[10]  # lost: the next one goes through `_on_packet`
    armed: list[bool] = []

    async def body(engine: MediaEngine) -> None:
        a, b = bridged(engine, x, y)
        a._time = clock = StepClock(engine.now())
        for k, seq in enumerate(seqs):
            i = (seq - 65520) % 65536
            pkt = RtpPacket(0, seq, 1000 + 160 * i, 0xCAFE, frames[i], marker=(k == 20))
            x.send(encode_rtp(pkt), a.port)
            await until(lambda k=k: len(clock.times) == k + 1)
            armed.append(a._plain_to is b)
        await until(lambda: (y.poll(), len(y.packets) == len(seqs))[1])
        ref = ReceptionStats()
        for seq, t in zip(seqs, clock.times, strict=True):
            ref.update(0xCAFE, seq, 1000 + 160 * ((seq - 65520) % 65536), t)
        rx = a.stats.reception
        assert (rx.received, rx.cycles, rx.max_seq, rx.transit) == (
            ref.received, ref.cycles, ref.max_seq, ref.transit)
        assert rx.jitter == pytest.approx(ref.jitter) and ref.jitter > 10
        assert a.stats.packets_lost == 1 and a.stats.packets_in == len(seqs)
        assert b.stats.relayed_out == b.stats.packets_out == b.stream.packets == len(seqs)
        assert b.stats.bytes_out == sum(len(p.payload) + 12 for p in y.packets)

    try:
        run(body)
    finally:
        x.close()
        y.close()
    assert sum(armed) > len(seqs) - 5  # the plain relay took the packets, not `_on_packet`
    audio = _one_stream(y.packets, 0)
    assert [p.payload for p in audio] == [frames[(s - 65520) % 65536] for s in seqs]
    steps = [ts_delta(q.timestamp, p.timestamp) for p, q in pairwise(audio)]
    assert steps[9] == 320 and steps[:9] + steps[10:] == [160] * (len(steps) - 1)
    assert [p.marker for p in audio].count(True) == 2  # the first packet and the marked one


@pytest.mark.parametrize("change", ["record", "stereo_on_peer", "listener", "inband",
                                    "srtp_on_peer", "transcode_on_peer", "unbridge"])
def test_a_change_mid_call_takes_the_relay_off_its_plain_path(change: str,
                                                               tmp_path: Path) -> None:
    """Once the relay is plain, each change that needs more of a packet (a recording, an
    audio tap, in-band detection, SRTP, transcoding, a bridge undone) applies to the next
    packet."""
    x, y = Peer(), Peer()
    frames = encode_frames(sine_pcm(770, 0.2), g711.PCMU)
    tapped: list[bytes] = []
    seen: dict[str, object] = {}

    async def body(engine: MediaEngine) -> None:
        a, b = bridged(engine, x, y)
        seq = 0
        while a._plain_to is not b:  # until the relay is plain
            x.send(encode_rtp(RtpPacket(0, seq, 160 * seq, 0xCAFE, g711.silence(0))), a.port)
            seq += 1
            await until(lambda n=seq: a.stats.packets_in == n)
        while True:  # forget what b sent before the change
            try:
                y.sock.recvfrom(2048)
            except BlockingIOError:
                break
        before = (a.stats.decoded, b.stats.relayed_out)
        for f in frames:  # queued before the change, read after it
            x.send(encode_rtp(RtpPacket(0, seq, 160 * seq, 0xCAFE, f)), a.port)
            seq += 1
        if change == "record":
            a.start_recording(tmp_path / "r.wav")
        elif change == "stereo_on_peer":
            b.start_recording(tmp_path / "r.wav", stereo=True)
        elif change == "listener":
            a.add_listener(tapped.append)
        elif change == "inband":
            a.inband_dtmf = True
        elif change == "srtp_on_peer":
            b.configure(y.addr, g711.PCMU, 101, srtp=("AES_CM_128_HMAC_SHA1_80", new_key()))
        elif change == "transcode_on_peer":
            b.configure(y.addr, g711.PCMA, 101)
        elif change == "unbridge":
            engine.unbridge(a)
        await until(lambda: a.stats.packets_in == seq)
        seen["decoded"] = a.stats.decoded - before[0]
        seen["relayed"] = b.stats.relayed_out - before[1]
        await asyncio.sleep(0.06)
        got = []
        while True:
            try:
                got.append(y.sock.recvfrom(2048)[0])
            except BlockingIOError:
                break
        seen["got"] = [d for d in got if not 192 <= d[1] <= 223]
        a.stop_recording()
        b.stop_recording()

    try:
        run(body)
    finally:
        x.close()
        y.close()
    got: list[bytes] = seen["got"]  # type: ignore[assignment]
    if change in ("record", "listener", "inband"):
        assert seen["decoded"] == len(frames)
        assert len(tapped) == (len(frames) if change == "listener" else 0)
    if change == "stereo_on_peer":
        _, samples = read_wav_samples(tmp_path / "r.wav")
        right = samples[1::2]
        assert np.abs(right.astype(np.int32)).max() > 1000  # the relayed tone, on b's side
    if change == "srtp_on_peer":
        assert got and all(len(d) == 12 + 160 + 10 for d in got)  # protected: a 10-byte tag
    if change == "transcode_on_peer":
        relayed = [decode_rtp(d) for d in got if decode_rtp(d).payload != g711.silence(8)]
        assert [p.payload for p in relayed][-len(frames):] == [
            g711.transcode(f, 0, 8) for f in frames]
    if change == "unbridge":
        assert seen["relayed"] == 0
        assert all(decode_rtp(d).payload == g711.silence(0) for d in got)
    else:
        assert seen["relayed"] == len(frames)


def test_bad_packets_are_counted_and_do_not_stop_the_channel() -> None:
    x = Peer()

    async def body(engine: MediaEngine) -> None:
        a = engine.open_channel()
        a.configure(x.addr, g711.PCMU, 101)
        for junk in (
            b"",
            b"\x00" * 5,
            b"\x40" + bytes(20),
            b"\x8f" + bytes(13),
            b"\x80\x22" + bytes(10),
        ):
            x.send(junk, a.port)
        x.send(encode_rtp(RtpPacket(101, 1, 1, 1, b"\x01")), a.port)  # short event payload
        good = encode_rtp(RtpPacket(0, 1, 160, 7, g711.silence(0)))
        x.send(good, a.port)
        await until(lambda: a.stats.packets_in >= 2)
        assert a.stats.dropped_in >= 5
        x.poll()
        assert x.packets and x.packets[0].payload_type == 0

    try:
        run(body)
    finally:
        x.close()


def test_ports_are_even_pairs_and_released_on_close() -> None:
    async def body(engine: MediaEngine) -> None:
        chans = [engine.open_channel() for _ in range(4)]
        assert all(c.port % 2 == 0 and c.rtcp_port == c.port + 1 for c in chans)
        assert len({c.port for c in chans}) == 4
        port = chans[0].port
        chans[0].close()
        chans[0].close()
        assert len(engine.channels) == 3
        assert port not in {c.port for c in engine.channels}

    run(body)


def test_stereo_recorder_interleaves_two_sources(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    left = np.full(160, 1000, "<i2").tobytes()
    right = np.full(160, -2000, "<i2").tobytes()
    with WavRecorder(path, stereo=True) as rec:
        rec.write(left, 0)
        rec.write(left, 0)
        rec.write(right, 1)
        assert rec.samples == 160
    params, data = read_wav_samples(path)
    assert (params[0], params[3]) == (2, 320)
    st = data.reshape(-1, 2)
    assert set(st[:, 0]) == {1000}
    assert list(st[:160, 1]) == [-2000] * 160 and set(st[160:, 1]) == {0}


def test_latched_rtp_source_cannot_be_hijacked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Symmetric RTP latches to the first source; a stranger sending to the port is dropped
    while that source talks, and may take over only after it fell silent (a NAT re-mapping)
    or after a new offer/answer."""
    from callcenter.media import engine as engine_mod

    monkeypatch.setattr(engine_mod, "RELATCH_AFTER", 0.3)
    phone, stranger = Peer(), Peer()
    frame = g711.silence(g711.PCMU)

    async def body(engine: MediaEngine) -> None:
        a = engine.open_channel()
        a.configure((HOST, 9), g711.PCMU, 101)  # the SDP address; the phone is behind NAT
        seq = 0

        def rtp(peer: Peer) -> None:
            nonlocal seq
            seq += 1
            peer.send(encode_rtp(RtpPacket(0, seq, 160 * seq, 0xAB, frame)), a.port)

        rtp(phone)
        await until(lambda: a.remote == phone.addr)
        for _ in range(5):  # both send: the stranger is ignored
            rtp(phone)
            rtp(stranger)
            await asyncio.sleep(0.02)
        await until(lambda: a.stats.foreign_in >= 5)
        assert a.remote == phone.addr
        stranger.poll()
        assert stranger.packets == []  # our audio never went to the stranger

        async def take_over() -> None:  # the phone is silent: a new source may latch
            for _ in range(100):
                rtp(stranger)
                if a.remote == stranger.addr:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError("the new source was never latched")
        await take_over()
        a.configure(phone.addr, g711.PCMU, 101)  # a re-INVITE: learn again
        rtp(phone)
        await until(lambda: a.remote == phone.addr)

    try:
        run(body)
    finally:
        phone.close()
        stranger.close()


def test_rtp_timeout_tells_of_a_silent_far_end_once_per_silence() -> None:
    async def body(engine: MediaEngine) -> None:
        engine.rtp_timeout = 0.5
        silent: list[Channel] = []
        engine.on_rtp_timeout.append(silent.append)
        a, b = pair(engine)  # each sends the other silence frames: RTP keeps coming
        far = Peer()
        c = engine.open_channel()
        c.configure(far.addr, g711.PCMU, 101)
        await until(lambda: bool(silent), 150)
        assert silent == [c]
        far.send(encode_rtp(RtpPacket(0, 1, 0, 5, b"\xff" * 160)), c.port)
        await until(lambda: len(silent) == 2, 150)  # a new silence, told again
        assert silent == [c, c] and c.stats.packets_in == 1
        far.close()

    run(body)
