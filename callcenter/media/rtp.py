"""RTP and RTCP wire format (RFC 3550), and one outgoing RTP stream. Pure: no sockets, no clock.

`RtpStream` is what keeps a channel's outgoing audio one stream: one SSRC, sequence numbers
that never skip, and a timestamp that follows the media clock, whether the payload comes from
a prompt, silence, a DTMF sender or another leg being relayed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

RTP_VERSION = 2
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
TS_MASK = TS_MOD - 1
RTP_HEADER = struct.Struct("!BBHII")
_RESTAMP = struct.Struct("!HII")  # sequence, timestamp, SSRC: octets 2-11 of the header
"""The fixed 12-byte header: V/P/X/CC, M/PT, sequence, timestamp, SSRC."""

NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP or RTCP packet (the peer's fault)."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). `payload` excludes header, CSRCs, extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0
    """Number of padding octets to append on encode (last octet included); 0 for none."""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} outside 0..127")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRC identifiers (CC is 4 bits)")
        if len(self.extension) % 4:
            raise ValueError("header extension length must be a multiple of 4 octets")
        if not 0 <= self.padding <= 255:
            raise ValueError("padding must be 0..255 octets")


def encode_rtp(packet: RtpPacket) -> bytes:
    """Serialize an RTP packet. Sequence and timestamp are taken modulo 2**16 and 2**32."""
    p = packet
    b0 = (RTP_VERSION << 6) | (0x20 if p.padding else 0) | len(p.csrc)
    if p.extension_profile is not None:
        b0 |= 0x10
    parts = [
        RTP_HEADER.pack(
            b0,
            (0x80 if p.marker else 0) | p.payload_type,
            p.sequence % SEQ_MOD,
            p.timestamp % TS_MOD,
            p.ssrc & TS_MASK,
        )
    ]
    if p.csrc:
        parts.append(struct.pack(f"!{len(p.csrc)}I", *p.csrc))
    if p.extension_profile is not None:
        parts.append(struct.pack("!HH", p.extension_profile, len(p.extension) // 4))
        parts.append(p.extension)
    parts.append(p.payload)
    if p.padding:
        parts.append(bytes(p.padding - 1) + bytes((p.padding,)))
    return b"".join(parts)


def payload_bounds(data: bytes) -> tuple[int, int]:
    """Return (start, end) of the payload in an RTP datagram; raise RtpError if malformed.

    The hot path of the engine calls this only when the first octet is not 0x80.
    """
    n = len(data)
    if n < 12:
        raise RtpError("RTP packet shorter than 12 octets")
    b0 = data[0]
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    start = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if n < start + 4:
            raise RtpError("truncated header extension")
        (words,) = struct.unpack_from("!H", data, start + 2)
        start += 4 + 4 * words
    end = n
    if b0 & 0x20:
        if n == 0 or data[-1] == 0:
            raise RtpError("invalid padding count")
        end -= data[-1]
    if start > end:
        raise RtpError("RTP header longer than packet")
    return start, end


def decode_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP datagram (RFC 3550 §5.1); raise RtpError if malformed."""
    start, end = payload_bounds(data)
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    cc = b0 & 0x0F
    csrc = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
    profile: int | None = None
    ext = b""
    if b0 & 0x10:
        off = 12 + 4 * cc
        profile, words = struct.unpack_from("!HH", data, off)
        ext = bytes(data[off + 4 : off + 4 + 4 * words])
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[start:end]),
        marker=bool(b1 & 0x80),
        csrc=tuple(csrc),
        extension_profile=profile,
        extension=ext,
        padding=data[-1] if b0 & 0x20 else 0,
    )


def seq_delta(new: int, old: int) -> int:
    """Signed distance from sequence `old` to `new`, across the 16-bit wrap."""
    d = (new - old) & 0xFFFF
    return d - SEQ_MOD if d >= 0x8000 else d


def ts_delta(new: int, old: int) -> int:
    """Signed distance from timestamp `old` to `new`, across the 32-bit wrap."""
    d = (new - old) & TS_MASK
    return d - TS_MOD if d >= 0x8000_0000 else d


def is_rtcp(data: bytes) -> bool:
    """True if a datagram looks like RTCP (RFC 5761 §4: packet type 192..223) rather than RTP."""
    return len(data) >= 8 and 192 <= data[1] <= 223


# --------------------------------------------------------------------------------------- RTCP


class RtcpType(IntEnum):
    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    last_sr: int = 0
    delay_since_last_sr: int = 0


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    """64-bit NTP time: seconds since 1900 << 32 | fraction."""
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OtherRtcp:
    """An RTCP packet type we do not interpret (SDES, APP, feedback...)."""

    packet_type: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | Bye | OtherRtcp

_BLOCK = struct.Struct("!IIIIII")


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp for a Unix time in seconds."""
    secs = int(unix_time)
    frac = int((unix_time - secs) * (1 << 32)) & TS_MASK
    return ((secs + NTP_EPOCH_OFFSET) & TS_MASK) << 32 | frac


def _rtcp_header(count: int, ptype: int, body_len: int) -> bytes:
    return struct.pack("!BBH", 0x80 | count, ptype, (body_len + 4) // 4 - 1)


def _encode_blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = []
    for b in blocks:
        lost = b.cumulative_lost & 0xFFFFFF
        out.append(
            _BLOCK.pack(
                b.ssrc,
                (b.fraction_lost & 0xFF) << 24 | lost,
                b.highest_seq & TS_MASK,
                b.jitter & TS_MASK,
                b.last_sr & TS_MASK,
                b.delay_since_last_sr & TS_MASK,
            )
        )
    return b"".join(out)


def encode_rtcp(packet: SenderReport | ReceiverReport | Bye) -> bytes:
    """Serialize one SR, RR or BYE. Concatenate results to build a compound packet."""
    if isinstance(packet, SenderReport):
        body = struct.pack(
            "!IQIII",
            packet.ssrc,
            packet.ntp_timestamp,
            packet.rtp_timestamp & TS_MASK,
            packet.packet_count & TS_MASK,
            packet.octet_count & TS_MASK,
        ) + _encode_blocks(packet.reports)
        return _rtcp_header(len(packet.reports), RtcpType.SR, len(body)) + body
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + _encode_blocks(packet.reports)
        return _rtcp_header(len(packet.reports), RtcpType.RR, len(body)) + body
    body = struct.pack(f"!{len(packet.ssrcs)}I", *packet.ssrcs)
    if packet.reason:
        reason = packet.reason.encode()[:255]
        body += bytes((len(reason),)) + reason
        body += bytes(-len(body) % 4)
    return _rtcp_header(len(packet.ssrcs), RtcpType.BYE, len(body)) + body


def _decode_blocks(data: bytes, off: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for i in range(count):
        if off + 24 * (i + 1) > len(data):
            break
        ssrc, lost, hseq, jitter, lsr, dlsr = _BLOCK.unpack_from(data, off + 24 * i)
        cum = lost & 0xFFFFFF
        if cum & 0x800000:
            cum -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost >> 24, cum, hseq, jitter, lsr, dlsr))
    return tuple(blocks)


def is_plain_rtcp(data: bytes) -> bool:
    """True when ``data`` is a well-formed plain RTCP compound: its packets' length fields add
    up exactly to its size. SRTCP's trailer (E flag and index, then a 10- or 4-byte tag) and
    its encrypted body make the sum miss the size (always for a 10-byte tag)."""
    at, n = 0, len(data)
    while at + 4 <= n:
        if data[at] >> 6 != RTP_VERSION:
            return False
        at += 4 * (((data[at + 2] << 8) | data[at + 3]) + 1)
    return at == n > 0


def decode_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram. Never raises: stops at the first malformed part."""
    out: list[RtcpPacket] = []
    off = 0
    n = len(data)
    while off + 4 <= n:
        b0, ptype, words = struct.unpack_from("!BBH", data, off)
        end = off + 4 * (words + 1)
        if b0 >> 6 != RTP_VERSION or end > n:
            break
        count = b0 & 0x1F
        body = data[off + 4 : end]
        if b0 & 0x20 and body:  # padding (only legal on the last packet)
            body = body[: max(0, len(body) - body[-1])]
        if ptype == RtcpType.SR and len(body) >= 24:
            ssrc, ntp, rtp_ts, pkts, octets = struct.unpack_from("!IQIII", body)
            out.append(
                SenderReport(ssrc, ntp, rtp_ts, pkts, octets, _decode_blocks(body, 24, count))
            )
        elif ptype == RtcpType.RR and len(body) >= 4:
            (ssrc,) = struct.unpack_from("!I", body)
            out.append(ReceiverReport(ssrc, _decode_blocks(body, 4, count)))
        elif ptype == RtcpType.BYE:
            k = min(count, len(body) // 4)
            ssrcs = struct.unpack_from(f"!{k}I", body)
            reason = ""
            if len(body) > 4 * k:
                rlen = body[4 * k]
                reason = bytes(body[4 * k + 1 : 4 * k + 1 + rlen]).decode("utf-8", "replace")
            out.append(Bye(tuple(ssrcs), reason))
        else:
            out.append(OtherRtcp(ptype, bytes(body)))
        off = end
    return out


# ------------------------------------------------------------------------------ outgoing stream

LOCAL_SOURCE = -1
"""Source key of media the stream generates itself (prompts, silence, DTMF)."""


@dataclass(slots=True)
class RtpStream:
    """One outgoing RTP stream: a single SSRC, continuous sequence and timestamp.

    Every packet goes through `local()` (our own media) or `relay()` (a packet from another
    stream). The timestamp follows the media clock; a switch of source, or a relayed stream
    whose timestamp jumps, is re-based onto our timeline using the wall-clock gap (`now`,
    clamped to `max_gap` seconds) and starts with the marker bit set.
    """

    ssrc: int
    sequence: int = 0
    """Sequence number of the next packet."""
    timestamp: int = 0
    """Timestamp the next frame of audio will carry."""
    clock_rate: int = 8000
    max_gap: float = 5.0
    """Longest silence (s) a re-base may insert into the timeline."""
    max_back: int = 4000
    """How far back (samples) a relayed packet may land before it counts as a jump."""
    packets: int = 0
    octets: int = 0
    source: int | None = None
    """LOCAL_SOURCE, the SSRC being relayed, or None before the first packet."""
    last_ts: int = 0
    last_time: float = 0.0
    _offset: int = field(default=0, repr=False)

    def _rebase(self, now: float) -> int:
        """The timestamp a packet starting a new source at `now` gets."""
        if self.source is None:
            return self.timestamp
        gap = int(round(min(max(now - self.last_time, 0.0), self.max_gap) * self.clock_rate))
        ahead = ts_delta(self.timestamp, self.last_ts)  # samples the last packet covered
        return (self.last_ts + max(gap, ahead)) & TS_MASK

    def _emit(self, payload: bytes, pt: int, ts: int, marker: bool, now: float) -> bytes:
        seq = self.sequence
        self.sequence = (seq + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        self.last_ts = ts
        self.last_time = now
        return RTP_HEADER.pack(0x80, (0x80 | pt) if marker else pt, seq, ts, self.ssrc) + payload

    def local(
        self,
        payload: bytes,
        pt: int,
        now: float,
        *,
        samples: int = 160,
        marker: bool = False,
        timestamp: int | None = None,
    ) -> bytes:
        """A packet of our own media. `timestamp` pins it (RFC 4733 events repeat theirs);
        the stream clock still advances by `samples`."""
        if self.source != LOCAL_SOURCE:
            self.timestamp = self._rebase(now)
            self.source = LOCAL_SOURCE
            marker = True
        ts = self.timestamp if timestamp is None else timestamp
        self.timestamp = (self.timestamp + samples) & TS_MASK
        return self._emit(payload, pt, ts, marker, now)

    def skip(self, samples: int) -> None:
        """Advance the clock without sending (frames the ticker could not send in time)."""
        self.timestamp = (self.timestamp + samples) & TS_MASK

    def relay(
        self,
        payload: bytes,
        pt: int,
        src_ssrc: int,
        src_ts: int,
        now: float,
        *,
        marker: bool = False,
        samples: int = 160,
    ) -> bytes:
        """Re-stamp a packet of another stream into this one.

        Relayed timestamps keep their spacing (offset mapping), so DTMF events that repeat
        one timestamp, reordering and silence suppression come through unchanged.
        """
        if self.source != src_ssrc:
            base = self._rebase(now)
            self._offset = (base - src_ts) & TS_MASK
            self.source = src_ssrc
            marker = True
        else:
            d = ts_delta((src_ts + self._offset) & TS_MASK, self.timestamp)
            # d == 0 (the packet follows the last one) is the common case: no jump to check
            if d and (d < -self.max_back or d > self.clock_rate + int(round(
                    min(max(now - self.last_time, 0.0), self.max_gap) * self.clock_rate))):
                base = self._rebase(now)
                self._offset = (base - src_ts) & TS_MASK
                marker = True
        ts = (src_ts + self._offset) & TS_MASK
        if samples and ts_delta(ts + samples, self.timestamp) > 0:
            self.timestamp = (ts + samples) & TS_MASK
        return self._emit(payload, pt, ts, marker, now)

    def restamp(self, packet: bytes, src_ssrc: int, src_ts: int, now: float) -> bytearray | None:
        """`relay`'s common case on the whole packet: one that follows the last one relayed
        from the same source gets our sequence, timestamp and SSRC in a copy, the rest as is
        (version, marker, payload type: the caller checked that the header is the plain 12
        octets and the payload type ours). None when `relay` has to decide (a new source, a
        jump, a reordered packet). Saves building the packet anew for each one relayed."""
        if src_ssrc != self.source:
            return None
        ts = (src_ts + self._offset) & TS_MASK
        if ts != self.timestamp:
            return None
        samples = len(packet) - 12
        out = bytearray(packet)
        seq = self.sequence
        _RESTAMP.pack_into(out, 2, seq, ts, self.ssrc)
        self.sequence = (seq + 1) & 0xFFFF
        self.timestamp = (ts + samples) & TS_MASK
        self.packets += 1
        self.octets += samples
        self.last_ts = ts
        self.last_time = now
        return out

    def sender_report(self, now: float, unix_time: float) -> SenderReport:
        """An SR for this stream; the RTP timestamp is extrapolated to `now`."""
        elapsed = int(round(max(now - self.last_time, 0.0) * self.clock_rate))
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_timestamp(unix_time),
            rtp_timestamp=(self.last_ts + elapsed) & TS_MASK,
            packet_count=self.packets & TS_MASK,
            octet_count=self.octets & TS_MASK,
        )


# ---------------------------------------------------------------------------- incoming stream

MAX_DROPOUT = 3000
"""A forward sequence jump up to this many packets is loss, not a restart (RFC 3550 A.1)."""
MAX_MISORDER = 100
"""A backward jump up to this many packets is a late or duplicate packet (RFC 3550 A.1)."""


@dataclass(slots=True)
class ReceptionStats:
    """Reception statistics of an incoming RTP stream (RFC 3550 A.1, A.3, A.8). Pure.

    Probation is kept simple: the first packet of a source is accepted at once; a jump of more
    than MAX_DROPOUT is taken as a restart of the sequence only when the next packet follows it.
    A new SSRC starts a new source; `total_expected` and `total_lost` add up all of them.
    """

    clock_rate: int = 8000
    ssrc: int | None = None
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    """Sequence wraps, times 2**16 (so `cycles + max_seq` is the extended highest sequence)."""
    bad_seq: int = -1
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    transit: int | None = None
    jitter: float = 0.0
    """Interarrival jitter in timestamp units (A.8), kept unrounded."""
    _done_expected: int = 0
    _done_lost: int = 0

    def _start(self, ssrc: int, seq: int) -> None:
        self._init_seq(seq)
        self.ssrc = ssrc
        self.transit = None
        self.jitter = 0.0

    def _init_seq(self, seq: int) -> None:
        if self.received:  # keep what the previous source (or sequence) lost in the totals
            self._done_expected += self.expected
            self._done_lost += self.lost
        self.base_seq = self.max_seq = seq
        self.bad_seq = -1
        self.cycles = self.received = self.expected_prior = self.received_prior = 0

    def count(self, ssrc: int, seq: int) -> bool:
        """Account one packet's sequence number (A.1); False if it is dropped as invalid."""
        if ssrc != self.ssrc:
            self._start(ssrc, seq)
        else:
            udelta = (seq - self.max_seq) & 0xFFFF
            if udelta < MAX_DROPOUT:  # in order, with a permissible gap
                if seq < self.max_seq:
                    self.cycles += SEQ_MOD
                self.max_seq = seq
            elif udelta <= SEQ_MOD - MAX_MISORDER:  # a very large jump
                if seq != self.bad_seq:
                    self.bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._init_seq(seq)  # two sequential packets: the sender restarted
            # else: duplicate or reordered packet, counted as received
        self.received += 1
        return True

    def update(self, ssrc: int, seq: int, timestamp: int, arrival: float) -> None:
        """Account one audio packet that arrived at `arrival` (seconds, any epoch): its
        sequence number, and the interarrival jitter (A.8)."""
        if not self.count(ssrc, seq):
            return
        transit = int(arrival * self.clock_rate) - timestamp
        prev = self.transit
        self.transit = transit
        if prev is not None:
            d = (transit - prev) & TS_MASK  # |D(i-1, i)|, across the timestamp wrap
            if d & 0x8000_0000:
                d = TS_MOD - d
            self.jitter += (d - self.jitter) / 16

    @property
    def expected(self) -> int:
        """Packets expected from the current source (A.3)."""
        if self.ssrc is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost of the current source; negative with duplicates (A.3)."""
        return self.expected - self.received

    @property
    def total_expected(self) -> int:
        return self._done_expected + self.expected

    @property
    def total_lost(self) -> int:
        return self._done_lost + self.lost

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000 / self.clock_rate

    def report_block(self, last_sr: int = 0, delay_since_last_sr: int = 0) -> ReportBlock | None:
        """The report block for the next SR/RR, None before any packet; starts a new report
        interval for `fraction_lost`."""
        if self.ssrc is None:
            return None
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=max(-0x80_0000, min(self.lost, 0x7F_FFFF)),
            highest_seq=(self.cycles + self.max_seq) & TS_MASK,
            jitter=int(self.jitter),
            last_sr=last_sr,
            delay_since_last_sr=delay_since_last_sr,
        )
