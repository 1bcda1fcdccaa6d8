"""RTP/RTCP wire format and the outgoing stream (RFC 3550)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.media.rtp import (
    LOCAL_SOURCE,
    Bye,
    OtherRtcp,
    ReceiverReport,
    ReportBlock,
    RtpError,
    RtpPacket,
    RtpStream,
    SenderReport,
    decode_rtcp,
    decode_rtp,
    encode_rtcp,
    encode_rtp,
    is_rtcp,
    ntp_timestamp,
    payload_bounds,
    seq_delta,
    ts_delta,
)


def test_minimal_header_bytes() -> None:
    pkt = RtpPacket(
        payload_type=0,
        sequence=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\xff" * 160,
        marker=True,
    )
    data = encode_rtp(pkt)
    assert data[:12] == bytes.fromhex("80801234deadbeef01020304")
    assert len(data) == 172
    assert decode_rtp(data) == pkt


def test_sequence_and_timestamp_wrap_are_encoded_modulo() -> None:
    data = encode_rtp(RtpPacket(payload_type=8, sequence=65536 + 5, timestamp=2**32 + 7, ssrc=1))
    pkt = decode_rtp(data)
    assert (pkt.sequence, pkt.timestamp) == (5, 7)
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert ts_delta(3, 2**32 - 5) == 8
    assert ts_delta(2**32 - 5, 3) == -8


def test_csrc_extension_padding_round_trip() -> None:
    pkt = RtpPacket(
        payload_type=101,
        sequence=9,
        timestamp=10,
        ssrc=11,
        payload=b"abcd",
        csrc=(1, 2, 3),
        extension_profile=0xBEDE,
        extension=b"\x10\x01\x00\x00",
        padding=4,
    )
    data = encode_rtp(pkt)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[-1] == 4
    assert payload_bounds(data) == (12 + 12 + 8, len(data) - 4)
    assert decode_rtp(data) == pkt


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 65535),
    ts=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    payload=st.binary(max_size=200),
    padding=st.integers(0, 255),
)
def test_round_trip_property(pt, seq, ts, ssrc, marker, csrc, payload, padding) -> None:
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrc, None, b"", padding)
    assert decode_rtp(encode_rtp(pkt)) == pkt


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00" * 5,  # 10 octets
        bytes.fromhex("40000001000000000000000a") + b"x",  # version 1
        bytes.fromhex("83000001000000000000000a"),  # 3 CSRCs announced, none present
        bytes.fromhex("90000001000000000000000a"),  # extension announced, none present
        bytes.fromhex("a0000001000000000000000a00"),  # padding count 0
        bytes.fromhex("a0000001000000000000000a0109"),  # padding longer than payload
    ],
)
def test_malformed_rtp_raises_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        decode_rtp(data)


@given(st.binary(max_size=64))
def test_decode_rtp_raises_only_rtp_error(data: bytes) -> None:
    try:
        decode_rtp(data)
    except RtpError:
        pass


def test_rtcp_sr_rr_bye_round_trip_compound() -> None:
    block = ReportBlock(
        ssrc=7,
        fraction_lost=12,
        cumulative_lost=-3,
        highest_seq=70000,
        jitter=5,
        last_sr=0x12345678,
        delay_since_last_sr=65536,
    )
    sr = SenderReport(1, ntp_timestamp(1_700_000_000.5), 160, 10, 1600, (block,))
    rr = ReceiverReport(2, (block,))
    bye = Bye((1, 2), "hangup")
    data = encode_rtcp(sr) + encode_rtcp(rr) + encode_rtcp(bye)
    assert is_rtcp(data)
    assert len(data) % 4 == 0
    assert decode_rtcp(data) == [sr, rr, bye]


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.5) == (2_208_988_800 << 32) | (1 << 31)


def test_rtcp_parser_keeps_unknown_and_stops_at_garbage() -> None:
    sdes = struct.pack("!BBHI", 0x81, 202, 2, 9) + b"\x01\x02ab"
    rr = encode_rtcp(ReceiverReport(3))
    parsed = decode_rtcp(rr + sdes + b"\xff\xff\xff")
    assert parsed[0] == ReceiverReport(3)
    assert isinstance(parsed[1], OtherRtcp) and parsed[1].packet_type == 202
    assert len(parsed) == 2
    assert decode_rtcp(b"") == []
    assert decode_rtcp(b"\x80\xc8\x00\x10") == []  # length past the end


@given(st.binary(max_size=120))
def test_rtcp_parser_never_raises(data: bytes) -> None:
    decode_rtcp(data)


def _hdr(data: bytes) -> tuple[bool, int, int, int, int]:
    p = decode_rtp(data)
    return p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc


def test_stream_local_frames_are_continuous_across_wraps() -> None:
    s = RtpStream(ssrc=42, sequence=65534, timestamp=2**32 - 160)
    pkts = [_hdr(s.local(b"\xff" * 160, 0, now=i * 0.02)) for i in range(4)]
    assert [p[2] for p in pkts] == [65534, 65535, 0, 1]
    assert [p[3] for p in pkts] == [2**32 - 160, 0, 160, 320]
    assert [p[0] for p in pkts] == [True, False, False, False]  # first packet marks the start
    assert {p[4] for p in pkts} == {42}


def test_stream_relay_restamps_and_marks_source_switches() -> None:
    s = RtpStream(ssrc=1, sequence=100, timestamp=1000)
    out = [_hdr(s.local(b"\xff" * 160, 0, now=0.0)), _hdr(s.local(b"\xff" * 160, 0, now=0.02))]
    # another leg's stream, with its own SSRC, sequence and timestamp, arrives 20 ms later
    for i in range(3):
        out.append(_hdr(s.relay(b"\x00" * 160, 0, 0xABC, 5_000_000 + 160 * i, now=0.04 + 0.02 * i)))
    # and a prompt again
    out.append(_hdr(s.local(b"\xff" * 160, 0, now=0.10)))
    seqs = [p[2] for p in out]
    tss = [p[3] for p in out]
    assert seqs == list(range(100, 106))
    assert tss == [1000 + 160 * i for i in range(6)]
    assert [p[0] for p in out] == [True, False, True, False, False, True]
    assert {p[4] for p in out} == {1}
    assert s.source == LOCAL_SOURCE


def test_stream_relay_keeps_spacing_of_dtmf_and_silence_suppression() -> None:
    s = RtpStream(ssrc=1, timestamp=0)
    s.relay(b"\x00" * 160, 0, 7, 800, now=0.0)
    # an RFC 4733 event: three packets repeating one timestamp
    ev = [
        _hdr(s.relay(b"\x01\x0a\x00\xa0", 101, 7, 960, now=0.02 + 0.02 * i, samples=0))
        for i in range(3)
    ]
    assert {p[3] for p in ev} == {160}
    # the source pauses 1 s (silence suppression) and resumes with a marker
    p = _hdr(s.relay(b"\x00" * 160, 0, 7, 960 + 8000, now=1.02, marker=True))
    assert p[3] == 160 + 8000 and p[0]


def test_stream_relay_clamps_timestamp_jumps() -> None:
    s = RtpStream(ssrc=1, timestamp=0)
    s.relay(b"\x00" * 160, 0, 7, 1000, now=0.0)
    s.relay(b"\x00" * 160, 0, 7, 1160, now=0.02)
    # the source jumps its timestamp by 10 minutes although 20 ms passed
    marker, _, _, ts, _ = _hdr(s.relay(b"\x00" * 160, 0, 7, 1160 + 4_800_000, now=0.04))
    assert marker and ts == 320
    # and backwards
    marker, _, _, ts, _ = _hdr(s.relay(b"\x00" * 160, 0, 7, 5, now=0.06))
    assert marker and ts == 480
    # normal spacing continues from the new base
    marker, _, _, ts, _ = _hdr(s.relay(b"\x00" * 160, 0, 7, 165, now=0.08))
    assert not marker and ts == 640


def test_stream_switch_after_a_pause_advances_by_wall_clock() -> None:
    s = RtpStream(ssrc=1, timestamp=0)
    s.local(b"\xff" * 160, 0, now=0.0)
    _, _, _, ts, _ = _hdr(s.relay(b"\x00" * 160, 0, 9, 123, now=2.0))
    assert ts == 16000
    _, _, _, ts, _ = _hdr(s.local(b"\xff" * 160, 0, now=100.0))  # capped by max_gap (5 s)
    assert ts == 16000 + 40000


def test_stream_local_pinned_timestamp_for_events_still_advances_clock() -> None:
    s = RtpStream(ssrc=1, timestamp=0)
    s.local(b"\xff" * 160, 0, now=0.0)
    first = _hdr(s.local(b"\x01\x0a\x00\xa0", 101, now=0.02, marker=True))
    later = _hdr(s.local(b"\x01\x0a\x01\x40", 101, now=0.04, timestamp=first[3]))
    audio = _hdr(s.local(b"\xff" * 160, 0, now=0.06))
    assert first[3] == later[3] == 160
    assert audio[3] == 480


def test_sender_report_counts() -> None:
    s = RtpStream(ssrc=5, timestamp=0)
    for i in range(10):
        s.local(b"\xff" * 160, 0, now=i * 0.02)
    sr = s.sender_report(now=0.20, unix_time=1000.0)
    assert (sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (5, 10, 1600, 1600)
    assert decode_rtcp(encode_rtcp(sr)) == [sr]
