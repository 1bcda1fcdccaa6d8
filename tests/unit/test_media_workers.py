"""`MediaWorkers`: the engine's interface carried out by two real worker processes, over UDP on
127.0.0.1. Waits are bounded loops on conditions, never timings."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from callcenter.media import g711
from callcenter.media.dtmf import event_packets
from callcenter.media.engine import Channel, MediaEngine, PlayOutcome
from callcenter.media.prompts import Prompt, encode_frames
from callcenter.media.proxy import MediaWorkers, WorkerChannel
from callcenter.media.rtp import RtpPacket, decode_rtp, encode_rtp
from callcenter.media.srtp import SrtpError, SrtpSession, new_key
from tests.helpers.ports import allocate
from tests.unit.test_media_engine import Peer
from tests.unit.test_media_engine import until as until_ticks

HOST = "127.0.0.1"
TONE = Prompt("tone", g711.PCMU, encode_frames(
    (8000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype("<i2"), g711.PCMU))


def run(body: Callable[[MediaWorkers], Awaitable[None]], hung_after: float = 10.0,
        ports: int = 40, realtime_priority: int = 0) -> None:
    block = allocate(ports)
    lo = block.base + block.base % 2

    async def main() -> None:
        media = MediaWorkers(HOST, (lo, lo + ports - 3), workers=2, hung_after=hung_after,
                             realtime_priority=realtime_priority)
        await media.start()
        try:
            await body(media)
        finally:
            await media.close()

    asyncio.run(main())


async def until(cond: Callable[[], bool]) -> None:
    await until_ticks(cond, 1000)  # bounded; generous for worker start-up on a loaded box


def heard(peer: Peer) -> list[RtpPacket]:
    peer.poll()
    return peer.packets


def test_same_public_interface_as_the_engine() -> None:
    for ours, theirs in ((MediaWorkers, MediaEngine), (WorkerChannel, Channel)):
        public = {n for n in dir(theirs) if not n.startswith("_")}
        missing = {n for n in public if not hasattr(ours, n)
                   and n not in ("drain", "ptime", "mix_ticks", "mix_time")}
        missing -= {"send_silence", "last_rtcp", "latched", "stream", "remote", "rtcp_remote",
                    "handover", "resume"}  # the workers' own business
        assert not missing
        for name in public & set(dir(ours)):
            a, b = getattr(theirs, name), getattr(ours, name)
            if inspect.isfunction(a):
                theirs_params = inspect.signature(a).parameters.keys() - {"sockets"}
                assert theirs_params == inspect.signature(b).parameters.keys(), name


def test_prompt_dtmf_bridge_across_workers_and_a_worker_dying() -> None:
    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        assert a._worker is not b._worker  # least loaded: one on each worker
        pa, pb = Peer(), Peer()
        a.configure(pa.addr, g711.PCMU, 101)
        b.configure(pb.addr, g711.PCMA, 101)
        done: list[PlayOutcome] = []
        a.play(TONE, done.append)
        assert a.playing
        await until(lambda: done == [PlayOutcome.DONE])
        assert not a.playing
        audio = [x for x in heard(pa) if x.payload_type == g711.PCMU]
        pcm = np.frombuffer(g711.decode(b"".join(x.payload for x in audio), g711.PCMU), "<i2")
        assert len(audio) >= len(TONE) and np.sqrt(np.mean(pcm.astype(float) ** 2)) > 3000
        # the same prompt again goes by key only, and is transcoded for the PCMA channel
        b.play(TONE, done.append)
        await until(lambda: len(done) == 2)
        assert sum(x.payload_type == g711.PCMA for x in heard(pb)) >= len(TONE)

        digits: list[str] = []
        a.on_dtmf = digits.append
        for i, pkt in enumerate(event_packets("5", duration_ms=100)):
            pa.sock.sendto(encode_rtp(RtpPacket(101, 100 + i, 8000, 77, pkt.payload,
                                                pkt.marker)), (HOST, a.port))
        await until(lambda: digits == ["5"])

        media.bridge(a, b)  # b moves to a's worker
        assert a._worker is b._worker and a.peer is b and b.peer is a
        heard(pb).clear()
        for i in range(50):
            pa.sock.sendto(encode_rtp(RtpPacket(0, 200 + i, 160 * i, 99, b"\x11" * 160)),
                           (HOST, a.port))
            await asyncio.sleep(0.005)
        await until(lambda: sum(x.payload == b"\x11".translate(g711.ULAW_TO_ALAW) * 160
                                for x in heard(pb)) >= 45)
        await until(lambda: a.stats.packets_in >= 50)  # the figures come back once a second

        c = media.open_channel()  # the other worker is emptier now
        assert c._worker is not a._worker
        lost: list[list[WorkerChannel]] = []
        media.on_failure.append(lost.append)
        pid = a._worker.proc.pid if a._worker else 0
        os.kill(pid, signal.SIGKILL)
        await until(lambda: bool(lost))
        assert set(lost[0]) == {a, b} and media.restarts == 1 and pid not in media.pids
        a.close()
        b.close()
        # the other worker's channel is untouched, and the restarted worker takes new ones
        pc = Peer()
        c.configure(pc.addr, g711.PCMU, 101)
        c.play(TONE, done.append)
        d, e = media.open_channel(), media.open_channel()
        pd = Peer()
        d.configure(pd.addr, g711.PCMU, 101)
        d.play(TONE, done.append)
        await until(lambda: len(done) == 4)
        assert len(heard(pc)) >= len(TONE) and len(heard(pd)) >= len(TONE)
        e.close()

    run(body)


def test_a_recording_is_complete_once_recording_closed_returns(tmp_path: Path) -> None:
    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        a.configure((HOST, b.port), g711.PCMU, 101)
        b.configure((HOST, a.port), g711.PCMU, 101)
        path = tmp_path / "rec.wav"
        b.start_recording(path)
        done: list[PlayOutcome] = []
        a.play(TONE, done.append)
        await until(lambda: bool(done))
        b.stop_recording()
        await b.recording_closed()
        with wave.open(str(path)) as w:  # the header counts what was written
            assert w.getnframes() >= 8000 * 0.9

    run(body)


def test_an_srtp_leg_in_a_worker_uses_the_key_the_signalling_side_announced() -> None:
    """The SDP carries the proxy channel's key: the worker must protect with that very key and
    check what comes in with the peer's; failures are counted in the engine's figures."""
    suite = "AES_CM_128_HMAC_SHA1_80"

    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        x, y = Peer(), Peer()  # x speaks SRTP to a, y plain RTP to b
        x_key = new_key()
        a.configure(x.addr, g711.PCMU, 101, srtp=(suite, x_key))
        b.configure(y.addr, g711.PCMU, 101)
        x_srtp = SrtpSession(suite, x_key, a.srtp_key)
        media.bridge(a, b)
        frame = b"\x22" * 160
        for i in range(20):
            x.send(x_srtp.protect(encode_rtp(RtpPacket(0, 100 + i, 160 * i, 0xCAFE, frame))),
                   a.port)
            await asyncio.sleep(0.01)
        await until(lambda: sum(p.payload == frame for p in heard(y)) >= 15)
        x.send(encode_rtp(RtpPacket(0, 300, 0, 0xCAFE, frame)), a.port)  # plain: dropped
        await until(lambda: media.stats.srtp_failed >= 1)
        y.send(encode_rtp(RtpPacket(0, 1, 0, 0xBEEF, b"\x33" * 160)), b.port)

        def decrypted() -> bool:
            while True:
                try:
                    data, _ = x.sock.recvfrom(2048)
                except BlockingIOError:
                    return False
                if 192 <= data[1] <= 223:
                    continue  # RTCP
                with contextlib.suppress(SrtpError):
                    if decode_rtp(x_srtp.unprotect(data)).payload == b"\x33" * 160:
                        return True

        await until(decrypted)
        x.close()
        y.close()

    run(body)


def test_a_channel_moved_to_its_peers_worker_keeps_one_continuous_stream() -> None:
    """Bridging channels of two workers moves one; the far end of the moved one must see the
    same SSRC, sequence numbers going on by one and timestamps not going back, the stream must
    still go to the source it latched onto, and its reception figures must carry on."""
    from callcenter.media.rtp import ts_delta

    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        assert a._worker is not b._worker
        x, y = Peer(), Peer()
        a.configure(x.addr, g711.PCMU, 101)
        b.configure((HOST, 9), g711.PCMU, 101)  # wrong port: b latches onto y's packets
        for i in range(5):
            y.send(encode_rtp(RtpPacket(0, 10 + i, 160 * i, 0xBEEF, b"\x33" * 160)), b.port)
        await until(lambda: len(heard(y)) >= 10)  # b's silence, sent to where y sends from
        media.bridge(a, b)  # b moves to a's worker
        assert b._worker is a._worker
        for i in range(30):
            x.send(encode_rtp(RtpPacket(0, 100 + i, 160 * i, 0xCAFE, b"\x11" * 160)), a.port)
            await asyncio.sleep(0.01)
        await until(lambda: sum(q.payload == b"\x11" * 160 for q in heard(y)) >= 25)
        stream = heard(y)
        assert {q.ssrc for q in stream} == {stream[0].ssrc}
        for prev, q in zip(stream, stream[1:], strict=False):
            assert q.sequence == (prev.sequence + 1) & 0xFFFF
            assert ts_delta(q.timestamp, prev.timestamp) >= 0
        await until(lambda: b.stats.packets_in == 5 and b.stats.packets_expected == 5)
        x.close()
        y.close()

    run(body)


def test_a_channel_opened_near_another_shares_its_worker_and_bridges_without_a_move() -> None:
    """The B2BUA opens a call's second leg near the first: same worker, so the bridge sends
    no Close/Moved round trip; a closed ``near`` falls back to the least loaded worker."""

    async def body(media: MediaWorkers) -> None:
        a = media.open_channel()
        b = media.open_channel()  # least loaded: the other worker
        c = media.open_channel(near=a)
        assert b._worker is not a._worker and c._worker is a._worker
        x, y = Peer(), Peer()
        a.configure(x.addr, g711.PCMU, 101)
        c.configure(y.addr, g711.PCMU, 101)
        media.bridge(a, c)
        assert c._worker is a._worker and not a._worker.leaving
        for i in range(10):
            x.send(encode_rtp(RtpPacket(0, 100 + i, 160 * i, 0xCAFE, b"\x11" * 160)), a.port)
            await asyncio.sleep(0.01)
        await until(lambda: sum(q.payload == b"\x11" * 160 for q in heard(y)) >= 8)
        b.close()
        d = media.open_channel(near=b)  # closed: placed by load (b's worker is empty now)
        assert d._worker is not a._worker
        x.close()
        y.close()

    run(body)


def test_close_is_answered_with_the_channels_final_figures() -> None:
    """The figures a worker sends each second can miss the last second of a call: its answer
    to the close carries the final ones (what the CDR's RTP loss and jitter are made of)."""
    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        x, y = Peer(), Peer()
        a.configure(x.addr, g711.PCMU, 101)
        b.configure(y.addr, g711.PCMU, 101)
        media.bridge(a, b)
        seq = 0
        while not any(q.payload == b"\x11" * 160 for q in heard(y)) and seq < 500:
            seq += 1  # until the bridge relays (b moved to a's worker)
            x.send(encode_rtp(RtpPacket(0, seq, 160 * seq, 0xCAFE, b"\x11" * 160)), a.port)
            await asyncio.sleep(0.02)
        await until(lambda: a.stats.packets_in == seq)  # the figures of each second
        for i in range(seq + 1, seq + 41):
            if i - seq not in (7, 30, 31):
                x.send(encode_rtp(RtpPacket(0, i, 160 * i, 0xCAFE, b"\x22" * 160)), a.port)
        # relayed to y: the worker has read them all
        await until(lambda: sum(q.payload == b"\x22" * 160 for q in heard(y)) == 37)
        a.close()
        assert a.stats_pending
        final = await a.closed_stats()
        assert not a.stats_pending and final is a.stats
        assert (final.packets_in, final.packets_expected, final.packets_lost) == (
            seq + 37, seq + 40, 3)
        x.close()
        y.close()

    run(body)


def test_a_hung_worker_is_killed_and_restarted_and_its_calls_end() -> None:
    async def body(media: MediaWorkers) -> None:
        a, b = media.open_channel(), media.open_channel()
        assert a._worker is not b._worker and a._worker is not None
        lost: list[list[WorkerChannel]] = []
        media.on_failure.append(lost.append)
        hung = a._worker.proc
        os.kill(hung.pid, signal.SIGSTOP)  # alive, not answering
        try:
            await until(lambda: bool(lost))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung.pid, signal.SIGCONT)
        assert lost == [[a]] and media.restarts == 1 and hung.pid not in media.pids
        assert hung.wait(10) == -signal.SIGKILL
        a.close()
        pb, pc = Peer(), Peer()  # the other worker goes on, the restarted one takes new calls
        c = media.open_channel()
        b.configure(pb.addr, g711.PCMU, 101)
        c.configure(pc.addr, g711.PCMU, 101)
        done: list[PlayOutcome] = []
        b.play(TONE, done.append)
        c.play(TONE, done.append)
        await until(lambda: len(done) == 2)
        assert len(heard(pb)) >= len(TONE) and len(heard(pc)) >= len(TONE)
        assert media.restarts == 1

    run(body, hung_after=3.0)  # a busy box can hold a healthy worker past 1 s


def test_rtp_timeout_in_a_worker_reaches_the_signalling_side() -> None:
    async def body(media: MediaWorkers) -> None:
        media.rtp_timeout = 0.5
        silent: list[WorkerChannel] = []
        media.on_rtp_timeout.append(silent.append)
        a, far = media.open_channel(), Peer()
        a.configure(far.addr, g711.PCMU, 101)  # a hears nothing
        await until(lambda: bool(silent))
        assert silent == [a]
        far.close()

    run(body)


async def relays(pairs: list[tuple[WorkerChannel, WorkerChannel]], peers: dict[int, Peer]) -> None:
    """Each channel of each bridged pair gets packets from its far end: the other's far end
    must hear them (each channel's own payload byte)."""
    for n in range(250):
        for a, b in pairs:
            for ch in (a, b):
                mark = bytes([1 + ch.id % 100]) * 160
                peers[ch.id].send(encode_rtp(RtpPacket(0, n, 160 * n, ch.id, mark)), ch.port)
        await asyncio.sleep(0.02)
        if all(sum(q.payload == bytes([1 + x.id % 100]) * 160 for q in heard(peers[y.id])) >= 5
               for a, b in pairs for x, y in ((a, b), (b, a))):
            return
    raise AssertionError("a bridge does not relay both ways")


async def all_freed(media: MediaWorkers, chans: list[WorkerChannel],
                    peers: dict[int, Peer]) -> None:
    """Close every channel: its final figures must come, its sockets close, its ports go back
    to the pool and nothing stays held back for a worker."""
    for ch in chans:
        ch.close()
    for peer in peers.values():
        peer.close()
    await until(lambda: not any(ch.stats_pending for ch in chans))
    await until(lambda: all(s.fileno() == -1 for ch in chans for s in ch._socks))
    assert not media._ports._ports_used and not media.channels
    assert not any(w.held for w in media._workers)


def open_pairs(media: MediaWorkers, n: int) -> tuple[list[WorkerChannel], dict[int, Peer]]:
    chans = [media.open_channel() for _ in range(n)]
    peers = {ch.id: Peer() for ch in chans}
    for ch in chans:
        ch.configure(peers[ch.id].addr, g711.PCMU, 101)
    return chans, peers


def test_many_bridges_at_once_moving_legs_both_ways_all_relay_and_free_their_ports() -> None:
    """Bridges made in one go that move legs from worker 1 to 2 and from 2 to 1: no move may
    wait on another (each old worker must hear its Close while it waits for a moved-in state)."""
    async def body(media: MediaWorkers) -> None:
        chans, peers = open_pairs(media, 32)
        pairs = []
        for i in range(0, 32, 2):
            a, b = chans[i], chans[i + 1]
            assert a._worker is not b._worker
            pairs.append((a, b) if i % 4 else (b, a))
        for a, b in pairs:
            media.bridge(a, b)  # crossing moves, all in this loop turn
        assert all(a._worker is b._worker for a, b in pairs)
        await relays(pairs, peers)
        await all_freed(media, chans, peers)

    run(body, ports=140)


def test_a_close_during_a_move_and_a_channel_moved_several_times_at_once() -> None:
    async def body(media: MediaWorkers) -> None:
        chans, peers = open_pairs(media, 6)
        a, b, c, d, e, f = chans  # a c e on one worker, b d f on the other
        media.bridge(a, b)  # b moves ...
        media.bridge(d, b)  # ... back ...
        media.bridge(a, b)  # ... and over again, before any move is done
        media.bridge(c, d)  # d moves while e moves the other way and is closed at once
        media.bridge(f, e)
        e.close()
        await relays([(a, b), (c, d)], peers)
        assert a._worker is b._worker and c._worker is d._worker and f.peer is None
        await all_freed(media, chans, peers)

    run(body)


def test_moves_out_of_and_into_a_worker_that_dies_lose_no_channel_or_port() -> None:
    async def body(media: MediaWorkers) -> None:
        chans, peers = open_pairs(media, 4)
        a, b, c, d = chans  # a c on one worker, b d on the other
        old = b._worker
        assert old is not None and a._worker is c._worker is not old
        lost: list[list[WorkerChannel]] = []
        media.on_failure.append(lost.append)
        os.kill(old.proc.pid, signal.SIGSTOP)  # the moves wait for words that never come
        media.bridge(a, b)  # b moves out of it
        media.bridge(d, c)  # c moves into it
        try:
            os.kill(old.proc.pid, signal.SIGKILL)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(old.proc.pid, signal.SIGCONT)
        await until(lambda: bool(lost))
        assert set(lost[0]) == {c, d} and media.restarts == 1
        await relays([(a, b)], peers)  # b's new worker went on without the old one's state
        await all_freed(media, chans, peers)

    run(body)


def test_a_channel_closed_before_its_open_left_costs_no_worker() -> None:
    """Its sockets are closed at once; the Open still queued must carry copies of them (a closed
    descriptor failed the whole write and the pipe, or a new socket took its number)."""
    async def body(media: MediaWorkers) -> None:
        chans, peers = open_pairs(media, 2)  # one on each worker
        media.open_channel().close()  # in one loop turn: its Open has not left yet
        done: list[PlayOutcome] = []
        for ch in chans:
            ch.play(TONE, done.append)
        await until(lambda: len(done) == 2 or media.restarts > 0)
        assert done == [PlayOutcome.DONE] * 2 and media.restarts == 0
        await all_freed(media, chans, peers)

    run(body)


def test_a_prompt_sent_to_a_moving_channel_reaches_a_channel_that_is_not() -> None:
    """A prompt's frames go to a worker once; a play held back behind a move may carry them,
    so a later play of the same prompt on another channel of that worker must wait for it."""
    async def body(media: MediaWorkers) -> None:
        chans, peers = open_pairs(media, 3)
        a, b, c = chans  # a c on one worker, b on the other
        media.bridge(a, b)  # b moves to a's worker ...
        done: list[PlayOutcome] = []
        b.play(TONE, done.append)  # ... and this play, with the frames, waits for it
        c.play(TONE, done.append)  # the same prompt by key only
        await until(lambda: len(done) == 2)
        tone = set(TONE.frames)
        assert sum(q.payload in tone for q in heard(peers[c.id])) >= len(TONE) - 1
        await all_freed(media, chans, peers)

    run(body)


def test_realtime_priority_puts_the_workers_and_a_restarted_one_under_round_robin() -> None:
    # as root (CI) the policy is set; anyone else gets a warning and the normal policy
    allowed = os.geteuid() == 0

    def check(pid: int) -> None:
        if allowed:
            assert os.sched_getscheduler(pid) == os.SCHED_RR
            assert os.sched_getparam(pid).sched_priority == 7
        else:
            assert os.sched_getscheduler(pid) == os.SCHED_OTHER

    async def body(media: MediaWorkers) -> None:
        for pid in media.pids:
            check(pid)
        old = media.pids[0]
        os.kill(old, signal.SIGKILL)
        await until(lambda: media.restarts == 1 and old not in media.pids)
        assert len(media.pids) == 2
        for pid in media.pids:
            check(pid)

    run(body, realtime_priority=7)


def test_bridging_a_quietly_bridged_pair_again_tells_the_worker_nothing() -> None:
    """Early media bridges a call's legs quietly; the answer bridges them again: no unbridge
    and bridge go to the worker (no gap), and ``on_bridge`` hears of it only then."""

    async def body(media: MediaWorkers) -> None:
        a = media.open_channel()
        b = media.open_channel(near=a)
        seen: list[tuple[WorkerChannel, WorkerChannel]] = []
        media.on_bridge.append(lambda x, y: seen.append((x, y)))
        media.bridge(a, b, notify=False)
        assert a.peer is b and b.peer is a and not seen
        sent: list[object] = []
        for ch in (a, b):
            ch._send = lambda msg, send=ch._send: (sent.append(msg), send(msg))  # type: ignore[method-assign]
        media.bridge(a, b)
        assert not sent and seen == [(a, b)] and a.peer is b and b.peer is a

    run(body)
