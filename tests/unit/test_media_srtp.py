"""SRTP channels (RFC 3711, libsrtp) over real UDP on 127.0.0.1: a far end that keys its own
SRTP session talks to an SRTP channel bridged to a plain one; bounded waits, no timing."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.media import g711
from callcenter.media.dtmf import event_packets
from callcenter.media.engine import MediaEngine
from callcenter.media.prompts import encode_frames
from callcenter.media.rtp import (
    Bye,
    RtpPacket,
    SenderReport,
    decode_rtcp,
    decode_rtp,
    encode_rtcp,
    encode_rtp,
    ntp_timestamp,
)
from callcenter.media.srtp import SrtpError, SrtpSession, new_key
from tests.unit.test_media_engine import Peer, run, sine_pcm, until


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_srtp_leg_bridged_to_plain_leg_both_ways(suite: str) -> None:
    x, y = Peer(), Peer()  # x speaks SRTP, y plain RTP
    frames = encode_frames(sine_pcm(700, 0.2), g711.PCMU)
    wire: list[bytes] = []  # what reached x, as it travelled

    async def body(engine: MediaEngine) -> None:
        x_key = new_key()
        a, b = engine.open_channel(), engine.open_channel()
        a.configure(x.addr, g711.PCMU, 101, srtp=(suite, x_key))
        b.configure(y.addr, g711.PCMU, 101)
        x_srtp = SrtpSession(suite, x_key, a.srtp_key)
        engine.bridge(a, b)
        for i, f in enumerate(frames):
            x.send(x_srtp.protect(encode_rtp(RtpPacket(0, 100 + i, 160 * i, 0xCAFE, f))), a.port)
            await asyncio.sleep(0.02)
        await until(lambda: (y.poll(), sum(p.payload in frames for p in y.packets) == 10)[1])
        # a forged packet (right header, wrong tag) and a plain one are dropped and counted
        forged = bytearray(x_srtp.protect(encode_rtp(RtpPacket(0, 200, 0, 0xCAFE, frames[0]))))
        forged[-1] ^= 1
        x.send(bytes(forged), a.port)
        x.send(encode_rtp(RtpPacket(0, 201, 0, 0xCAFE, frames[1])), a.port)
        await until(lambda: a.stats.srtp_failed == 2)
        assert engine.stats.srtp_failed == 2  # what /metrics reports
        # the other way: y's plain audio reaches x encrypted
        for i, f in enumerate(frames):
            y.send(encode_rtp(RtpPacket(0, 300 + i, 160 * i, 0xBEEF, f)), b.port)
            await asyncio.sleep(0.02)

        heard: list[bytes | None] = []

        def hear() -> int:
            while True:
                try:
                    data, _ = x.sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if not 192 <= data[1] <= 223:
                    wire.append(data)
                    heard.append(_decrypt(x_srtp, data))
            return sum(p in frames for p in heard)

        await until(lambda: hear() == 10)

    try:
        run(body)
    finally:
        x.close()
        y.close()
    assert not any(decode_rtp(d).payload in frames for d in wire)  # never plain on the wire


def _decrypt(session: SrtpSession, data: bytes) -> bytes | None:
    try:
        return decode_rtp(session.unprotect(data)).payload
    except SrtpError:
        return None


def test_dtmf_and_rtcp_work_on_an_srtp_channel() -> None:
    """RFC 4733 keys and SRTCP reports arrive decrypted; our own SR and BYE leave as SRTCP."""
    suite, x = "AES_CM_128_HMAC_SHA1_80", Peer()
    got: list[str] = []
    sent: list[bytes] = []

    async def body(engine: MediaEngine) -> None:
        x_key = new_key()
        a = engine.open_channel()
        a.configure(x.addr, g711.PCMU, 101, srtp=(suite, x_key))
        a.on_dtmf = got.append
        x_srtp = SrtpSession(suite, x_key, a.srtp_key)
        for seq, p in enumerate(event_packets("5")):  # each end repeat with its own number
            x.send(x_srtp.protect(encode_rtp(RtpPacket(101, seq, 8000, 0xCAFE, p.payload,
                                                       p.marker))), a.port)
        sr = SenderReport(0xCAFE, ntp_timestamp(1e9), 8000, 10, 1600)
        x.send(x_srtp.protect_rtcp(encode_rtcp(sr)), a.rtcp_port)
        await until(lambda: got == ["5"] and bool(a.last_rtcp))
        assert a.last_rtcp[0] == sr
        a.close()  # sends SR + BYE to where the far end's RTCP came from
        await until(lambda: _received(x, sent) > 0)
        assert any(isinstance(p, Bye) for p in decode_rtcp(x_srtp.unprotect_rtcp(sent[-1])))

    try:
        run(body)
    finally:
        x.close()


def _received(peer: Peer, into: list[bytes]) -> int:
    while True:
        try:
            data, _ = peer.sock.recvfrom(2048)
        except BlockingIOError:
            return len(into)
        if 192 <= data[1] <= 223:
            into.append(data)


def test_a_moved_srtp_channel_carries_the_rollover_counters_on() -> None:
    """A channel reopened on another engine (a media worker move) after both its SRTP streams
    wrapped their sequence numbers: its new session must protect and accept what follows,
    which needs each direction's rollover counter (index = ROC * 65536 + sequence)."""
    suite = "AES_CM_128_HMAC_SHA1_80"
    far_key = new_key()
    x = Peer()
    wire: list[bytes] = []

    def drain() -> int:
        while True:
            try:
                data, _ = x.sock.recvfrom(2048)
            except BlockingIOError:
                return len(wire)
            if not 192 <= data[1] <= 223:
                wire.append(data)

    async def body(engine: MediaEngine) -> None:
        old_engine = MediaEngine("127.0.0.1", (35000, 35099))
        await old_engine.start()
        old = old_engine.open_channel()
        old.configure(x.addr, g711.PCMU, 101, srtp=(suite, far_key))
        old.stream.sequence = 65530  # our sequence wraps after six packets
        far = SrtpSession(suite, far_key, old.srtp_key)

        def send(seq: int, port: int) -> None:  # the far end's sequence wraps too
            pkt = RtpPacket(0, seq & 0xFFFF, 160 * seq, 0xCAFE, bytes(160))
            x.send(far.protect(encode_rtp(pkt)), port)

        for seq in range(65530, 65542):
            send(seq, old.port)
        await until(lambda: old.stats.packets_in == 12)
        await until(lambda: drain() >= 12)
        state = old.handover()
        old.stream.packets = 0  # as a worker does: no RTCP BYE
        old.close()
        await old_engine.close()
        new = engine.open_channel()
        new.srtp_key = old.srtp_key
        new.configure(x.addr, g711.PCMU, 101, srtp=(suite, far_key))
        new.resume(state)
        send(65542, new.port)
        await until(lambda: new.stats.packets_in == 13)
        assert new.stats.srtp_failed == 0  # the far end's ROC came along
        n = len(wire)
        await until(lambda: drain() >= n + 3)
        heard = [decode_rtp(far.unprotect(p)) for p in wire]  # SrtpError: our ROC was lost
        assert [p.sequence for p in heard] == [(65530 + i) & 0xFFFF for i in range(len(wire))]

    try:
        run(body)
    finally:
        x.close()


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_plain_rtcp_on_an_srtp_channel_is_counted_apart_from_forged_srtcp(suite: str) -> None:
    """Phones send RTCP in the clear around SRTP (baresip: an APP before, a BYE after): such
    compounds are dropped and counted as plain; a forged SRTCP report still counts as failed."""
    x = Peer()
    app = bytes([0x80, 204, 0, 3]) + (0xCAFE).to_bytes(4, "big") + b"PINGdata"
    sr = encode_rtcp(SenderReport(0xCAFE, ntp_timestamp(1e9), 8000, 10, 1600))

    async def body(engine: MediaEngine) -> None:
        x_key = bytes(range(30))  # fixed: the forged packet is the same bytes on every run
        a = engine.open_channel()
        a.configure(x.addr, g711.PCMU, 101, srtp=(suite, x_key))
        far = SrtpSession(suite, x_key, a.srtp_key)
        x.send(app, a.rtcp_port)
        x.send(sr + encode_rtcp(Bye((0xCAFE,))), a.port)  # multiplexed on the RTP port
        forged = bytearray(far.protect_rtcp(sr))
        forged[-1] ^= 1
        x.send(bytes(forged), a.rtcp_port)
        await until(lambda: a.stats.srtp_plain + a.stats.srtp_failed == 3)
        assert (a.stats.srtp_plain, a.stats.srtp_failed) == (2, 1)
        assert (engine.stats.srtp_plain, engine.stats.srtp_failed) == (2, 1)  # for /metrics
        assert not a.last_rtcp  # all three dropped

    try:
        run(body)
    finally:
        x.close()
