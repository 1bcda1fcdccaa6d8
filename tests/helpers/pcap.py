"""RTP pcap files for SIPp's play_pcap_audio, and a reader for checks. Standard library only.

SIPp replays each packet through a raw socket: it rewrites the addresses and UDP ports but sends
the RTP header as stored, so payload type, sequence, timestamp and SSRC here are what the server
sees. Files are classic pcap (magic a1b2c3d4, link type 1 = Ethernet) with IPv4/UDP headers
whose length fields and IP checksum are correct.
"""

from __future__ import annotations

import random
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

from . import g711

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
DTMF_EVENTS = "0123456789*#ABCD"
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PACKET_SECONDS = 0.02


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet as stored in (or read from) a pcap."""

    time: float
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def rtp_header(pt: int, seq: int, ts: int, ssrc: int, *, marker: bool = False) -> bytes:
    """The 12-byte RTP fixed header (RFC 3550 §5.1), version 2, no CSRC."""
    return struct.pack(
        "!BBHII",
        0x80,
        (0x80 if marker else 0) | (pt & 0x7F),
        seq & 0xFFFF,
        ts & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(udp_payload: bytes, sport: int, dport: int, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP around one payload, lengths and IP checksum filled in."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(udp_payload), 0) + udp_payload
    src = dst = bytes([127, 0, 0, 1])
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0, src, dst
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ether = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return ether + ip + udp


def write_pcap(
    path: Path | str, packets: list[RtpPacket], *, sport: int = 16000, dport: int = 20000
) -> Path:
    """Write RTP packets to a pcap file (ports are placeholders that SIPp replaces)."""
    path = Path(path)
    out = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for i, p in enumerate(packets):
        frame = _frame(
            rtp_header(p.payload_type, p.seq, p.timestamp, p.ssrc, marker=p.marker) + p.payload,
            sport,
            dport,
            i,
        )
        sec = int(p.time)
        usec = int(round((p.time - sec) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def read_wav_pcm(path: Path | str) -> bytes:
    """16-bit mono 8 kHz PCM of a WAV file (anything else is an error)."""
    with wave.open(str(path), "rb") as w:
        shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        if shape != (8000, 1, 2):
            raise ValueError(f"{path}: need 8 kHz mono 16-bit, got {shape}")
        return w.readframes(w.getnframes())


def audio_packets(
    pcm: bytes,
    codec: str = "PCMU",
    *,
    ssrc: int | None = None,
    seq: int = 0,
    timestamp: int = 0,
    start: float = 0.0,
) -> list[RtpPacket]:
    """Cut 16-bit PCM into 20 ms G.711 RTP packets (the last one padded with silence)."""
    pt = PAYLOAD_TYPES[codec.upper()]
    ssrc = random.Random(len(pcm)).getrandbits(32) if ssrc is None else ssrc
    encoded = g711.encode(pcm, codec)
    silence = g711.encode(b"\x00\x00", codec)
    packets = []
    for n, i in enumerate(range(0, len(encoded), SAMPLES_PER_PACKET)):
        chunk = encoded[i : i + SAMPLES_PER_PACKET]
        chunk += silence * (SAMPLES_PER_PACKET - len(chunk))
        packets.append(
            RtpPacket(
                start + n * PACKET_SECONDS,
                pt,
                (seq + n) & 0xFFFF,
                (timestamp + n * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
                ssrc,
                n == 0,
                chunk,
            )
        )
    return packets


def wav_to_pcap(wav: Path | str, out: Path | str, codec: str = "PCMU") -> Path:
    """WAV (8 kHz mono 16-bit) -> PCMU (pt 0) or PCMA (pt 8) RTP pcap, 20 ms packets."""
    return write_pcap(out, audio_packets(read_wav_pcm(wav), codec))


def dtmf_packets(
    digits: str,
    *,
    pt: int = 101,
    ssrc: int | None = None,
    seq: int = 0,
    timestamp: int = 0,
    start: float = 0.0,
    tone_ms: int = 160,
    gap_ms: int = 240,
    volume: int = 10,
) -> list[RtpPacket]:
    """RFC 4733 telephone-events: per digit one update every 20 ms for tone_ms, 3 end packets.

    All packets of one event share its start timestamp; the marker is set on the first one;
    the next digit starts (tone_ms + gap_ms) later in time and timestamp.
    """
    ssrc = random.Random(digits).getrandbits(32) if ssrc is None else ssrc
    packets = []
    updates = max(1, tone_ms // 20)
    period_samples = (tone_ms + gap_ms) * 8
    for k, digit in enumerate(digits):
        event = DTMF_EVENTS.index(digit.upper())
        ev_ts = timestamp + k * period_samples
        t0 = start + k * (tone_ms + gap_ms) / 1000
        for i in range(updates):
            body = struct.pack("!BBH", event, volume & 0x3F, (i + 1) * SAMPLES_PER_PACKET)
            packets.append(RtpPacket(t0 + i * PACKET_SECONDS, pt, seq, ev_ts, ssrc, i == 0, body))
            seq = (seq + 1) & 0xFFFF
        end = struct.pack("!BBH", event, 0x80 | (volume & 0x3F), updates * SAMPLES_PER_PACKET)
        for j in range(3):
            when = t0 + (updates + j) * PACKET_SECONDS
            packets.append(RtpPacket(when, pt, seq, ev_ts, ssrc, False, end))
            seq = (seq + 1) & 0xFFFF
    return packets


def digits_to_pcap(
    digits: str, out: Path | str, *, pt: int = 101, after: Path | str | None = None
) -> Path:
    """Digits -> RFC 4733 pcap; with after=AUDIO_PCAP continue its SSRC, sequence and timestamp."""
    kwargs: dict[str, int] = {}
    if after is not None:
        last = read_pcap(after)[-1]
        kwargs = {
            "ssrc": last.ssrc,
            "seq": (last.seq + 1) & 0xFFFF,
            "timestamp": (last.timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF,
        }
    return write_pcap(out, dtmf_packets(digits, pt=pt, **kwargs))


def parse_rtp(data: bytes, time: float = 0.0) -> RtpPacket | None:
    """Decode an RTP packet (CSRCs and extension skipped, padding removed); None if not RTP."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
    end = len(data)
    if data[0] & 0x20 and end > offset:
        end -= data[-1]
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return RtpPacket(
        time, data[1] & 0x7F, seq, ts, ssrc, bool(data[1] & 0x80), data[offset : max(offset, end)]
    )


def read_pcap(path: Path | str) -> list[RtpPacket]:
    """RTP packets of an Ethernet/IPv4/UDP pcap (time relative to the first packet)."""
    data = Path(path).read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos, out, t0 = 24, [], None
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        when = sec + frac / (1e9 if nano else 1e6)
        t0 = when if t0 is None else t0
        ip = frame[14:] if linktype == LINKTYPE_ETHERNET else frame[16:]  # 113 = Linux cooked
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp_len = struct.unpack("!H", ip[ihl + 4 : ihl + 6])[0]
        packet = parse_rtp(ip[ihl + 8 : ihl + udp_len], when - t0)
        if packet is not None:
            out.append(packet)
    return out


def decode_dtmf(packets: list[RtpPacket], pt: int = 101) -> str:
    """Digits from RFC 4733 packets: one digit per (SSRC, timestamp) event, end or not."""
    seen: set[tuple[int, int]] = set()
    digits = []
    for p in packets:
        if p.payload_type != pt or len(p.payload) < 4 or (p.ssrc, p.timestamp) in seen:
            continue
        seen.add((p.ssrc, p.timestamp))
        event = p.payload[0]
        digits.append(DTMF_EVENTS[event] if event < 16 else "?")
    return "".join(digits)
