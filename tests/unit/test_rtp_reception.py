"""RFC 3550 reception statistics: sequence tracking (A.1), loss (A.3), jitter (A.8)."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.media import g711
from callcenter.media.engine import MediaEngine
from callcenter.media.rtp import (
    ReceptionStats,
    ReportBlock,
    RtpPacket,
    SenderReport,
    decode_rtcp,
    encode_rtcp,
    encode_rtp,
)

SSRC = 0x1234_5678


def feed(rx: ReceptionStats, seqs: list[int], *, spacing: float = 0.02) -> None:
    """Packets with these sequence numbers, timestamps 160 per sequence step, arriving in
    list order `spacing` apart."""
    for i, seq in enumerate(seqs):
        rx.update(SSRC, seq & 0xFFFF, (seq * 160) & 0xFFFF_FFFF, 100.0 + i * spacing)


def test_no_loss() -> None:
    rx = ReceptionStats()
    assert rx.report_block() is None
    feed(rx, list(range(1000, 1100)))
    assert (rx.expected, rx.received, rx.lost) == (100, 100, 0)
    block = rx.report_block()
    assert block == ReportBlock(ssrc=SSRC, highest_seq=1099, jitter=0)
    assert rx.total_lost == 0


def test_gap_of_lost_packets_and_fraction_per_interval() -> None:
    rx = ReceptionStats()
    feed(rx, [*range(0, 50), *range(60, 100)])  # 10 of 100 lost
    assert (rx.expected, rx.lost) == (100, 10)
    block = rx.report_block()
    assert block is not None
    assert block.cumulative_lost == 10
    assert block.fraction_lost == (10 << 8) // 100  # 25
    assert block.highest_seq == 99
    feed(rx, list(range(100, 200)))  # a clean interval: fraction back to 0, cumulative stays
    block = rx.report_block()
    assert block is not None
    assert (block.fraction_lost, block.cumulative_lost) == (0, 10)


def test_reordering_is_not_loss() -> None:
    rx = ReceptionStats()
    feed(rx, [0, 1, 3, 2, 4, 6, 5, 7])
    assert (rx.expected, rx.received, rx.lost) == (8, 8, 0)
    assert rx.max_seq == 7
    # a late packet before the interval is reported looks lost, then is not
    rx = ReceptionStats()
    feed(rx, [0, 1, 3])
    assert rx.lost == 1
    feed(rx, [2])
    assert rx.lost == 0


def test_sequence_wrap() -> None:
    rx = ReceptionStats()
    feed(rx, list(range(65530, 65546)))  # 65530..65535, then 0..9
    assert rx.cycles == 1 << 16
    assert (rx.expected, rx.lost) == (16, 0)
    block = rx.report_block()
    assert block is not None
    assert block.highest_seq == (1 << 16) + 9
    # reordering across the wrap: 65535 arrives after 0
    rx = ReceptionStats()
    feed(rx, [65533, 65534, 65536, 65535, 65537])
    assert (rx.expected, rx.lost, rx.cycles) == (5, 0, 1 << 16)


def test_large_jump_restarts_after_two_sequential_packets() -> None:
    rx = ReceptionStats()
    feed(rx, list(range(0, 10)))
    assert not rx.count(SSRC, 20000)  # one stray packet: ignored
    assert rx.count(SSRC, 20001)  # confirmed: the sender restarted its sequence
    assert rx.count(SSRC, 20002)
    assert (rx.expected, rx.lost) == (2, 0)
    assert rx.total_lost == 0


def test_new_ssrc_starts_a_new_source_and_totals_add_up() -> None:
    rx = ReceptionStats()
    feed(rx, [0, 1, 2, 4])  # 1 lost
    rx.update(SSRC + 1, 500, 0, 200.0)
    rx.update(SSRC + 1, 502, 320, 200.04)  # 1 lost
    assert rx.ssrc == SSRC + 1
    assert (rx.expected, rx.lost) == (3, 1)
    assert (rx.total_expected, rx.total_lost) == (8, 2)


def test_jitter_constant_spacing_is_zero() -> None:
    rx = ReceptionStats()
    feed(rx, list(range(500)))
    assert rx.jitter == pytest.approx(0.0, abs=1.0)
    assert rx.jitter_ms < 0.2


def test_jitter_alternating_spacing() -> None:
    """Spacing alternating 30 ms / 10 ms around the 20 ms of media: |D| is always 10 ms
    (80 timestamp units), to which J converges."""
    rx = ReceptionStats()
    t = 100.0
    for i in range(500):
        rx.update(SSRC, i, i * 160, t)
        t += 0.030 if i % 2 == 0 else 0.010
    assert rx.jitter == pytest.approx(80.0, abs=1.0)
    assert rx.jitter_ms == pytest.approx(10.0, abs=0.1)
    block = rx.report_block()
    assert block is not None and block.jitter in (79, 80)


def test_jitter_across_timestamp_wrap() -> None:
    rx = ReceptionStats()
    for i in range(200):
        rx.update(SSRC, i, (0xFFFF_FFFF - 1600 + i * 160) & 0xFFFF_FFFF, 100.0 + i * 0.02)
    assert rx.jitter < 1.0


def test_report_block_goes_into_a_sender_report() -> None:
    rx = ReceptionStats()
    feed(rx, [0, 1, 2, 5, 6])
    block = rx.report_block()
    assert block is not None
    sr = SenderReport(ssrc=1, ntp_timestamp=0, rtp_timestamp=0, packet_count=0,
                      octet_count=0, reports=(block,))
    (decoded,) = decode_rtcp(encode_rtcp(sr))
    assert decoded == sr
    assert decoded.reports[0].cumulative_lost == 2


def test_channel_counts_incoming_rtp_and_reports_it_in_its_sender_report() -> None:
    """Packets fed to the channel's receive path with chosen arrival times (no sockets read)."""

    async def main() -> None:
        engine = MediaEngine("127.0.0.1", (35000, 35999))
        await engine.start()
        try:
            ch = engine.open_channel()
            src = ("127.0.0.1", 35998)
            ch.configure(src, g711.PCMU, 101)
            silence = g711.silence(g711.PCMU)
            for seq in [*range(0, 20), *range(22, 40)]:  # 2 of 40 lost
                data = encode_rtp(RtpPacket(0, seq, seq * 160, SSRC, silence))
                ch._on_packet(data, src, 10.0 + seq * 0.02 + (0.005 if seq % 2 else 0.0))
            ch._on_packet(encode_rtp(RtpPacket(101, 40, 40 * 160, SSRC, bytes(4))), src, 10.8)
            assert (ch.stats.packets_lost, ch.stats.packets_expected) == (2, 41)
            assert 0.5 < ch.stats.jitter_ms < 5.0
            ch.stream.local(silence, 0, 11.0)  # we sent something: an SR is due
            (sr,) = decode_rtcp(ch._sr_bytes(11.0, 1_700_000_000.0))
            assert isinstance(sr, SenderReport) and sr.ssrc == ch.stream.ssrc
            (block,) = sr.reports
            assert (block.ssrc, block.cumulative_lost, block.highest_seq) == (SSRC, 2, 40)
            assert block.fraction_lost == (2 << 8) // 41
            assert block.jitter == int(ch.stats.reception.jitter)
        finally:
            await engine.close()

    asyncio.run(main())
