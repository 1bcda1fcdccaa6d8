"""G.711 µ-law and A-law codecs, standard library only (bit-exact with the old audioop)."""

from __future__ import annotations

import array
import sys

_ULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def linear_to_ulaw(sample: int) -> int:
    """Encode one signed 16-bit sample as a µ-law byte (ITU-T G.711)."""
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8159) + 0x21
    seg = _segment(value, _ULAW_SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0x0F)) ^ mask


def ulaw_to_linear(byte: int) -> int:
    """Decode one µ-law byte to a signed 16-bit sample."""
    u = ~byte & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if u & 0x80 else sample


def linear_to_alaw(sample: int) -> int:
    """Encode one signed 16-bit sample as an A-law byte (ITU-T G.711)."""
    value = sample >> 3
    mask = 0xD5
    if value < 0:
        value, mask = -value - 1, 0x55
    seg = _segment(value, _ALAW_SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    quant = (value >> 1) if seg < 2 else (value >> seg)
    return ((seg << 4) | (quant & 0x0F)) ^ mask


def alaw_to_linear(byte: int) -> int:
    """Decode one A-law byte to a signed 16-bit sample."""
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


_ENC_ULAW = bytes(linear_to_ulaw(s) for s in range(-32768, 32768))
_ENC_ALAW = bytes(linear_to_alaw(s) for s in range(-32768, 32768))
ULAW_DECODE = tuple(ulaw_to_linear(b) for b in range(256))
ALAW_DECODE = tuple(alaw_to_linear(b) for b in range(256))


def _samples(pcm: bytes) -> array.array[int]:
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def encode(pcm: bytes, codec: str) -> bytes:
    """Encode little-endian 16-bit PCM as 'PCMU' or 'PCMA'."""
    table = _ENC_ULAW if codec.upper() == "PCMU" else _ENC_ALAW
    return bytes(table[s + 32768] for s in _samples(pcm))


def decode(data: bytes, codec: str) -> bytes:
    """Decode 'PCMU' or 'PCMA' bytes to little-endian 16-bit PCM."""
    table = ULAW_DECODE if codec.upper() == "PCMU" else ALAW_DECODE
    out = array.array("h", (table[b] for b in data))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()
