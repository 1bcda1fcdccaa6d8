"""G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).

Linear audio is 16-bit signed little-endian PCM (`bytes`). Uses the C `audioop` module when it
can be imported (about 1 µs a frame); otherwise numpy lookup tables computed here, bit-exact
with audioop (the classic Sun/CCITT reference algorithm).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

PCMU = 0
PCMA = 8
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""Samples in one 20 ms frame at 8 kHz."""


# ----------------------------------------------------------------- numpy tables (reference path)

_ULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _build_ulaw_encode() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 33
    seg = np.searchsorted(np.array(_ULAW_SEG_END), mag, side="left")
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(np.array(_ALAW_SEG_END), mag, side="left")
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2")


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype("<i2")


class NumpyG711:
    """Table-driven G.711 with numpy; the fallback when audioop is missing (Python 3.13+)."""

    ulaw_enc = _build_ulaw_encode()
    alaw_enc = _build_alaw_encode()
    ulaw_dec = _build_ulaw_decode()
    alaw_dec = _build_alaw_decode()

    @staticmethod
    def _index(pcm: bytes) -> np.ndarray:
        return np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768

    @classmethod
    def ulaw_encode(cls, pcm: bytes) -> bytes:
        encoded: bytes = cls.ulaw_enc[cls._index(pcm)].tobytes()
        return encoded

    @classmethod
    def alaw_encode(cls, pcm: bytes) -> bytes:
        encoded: bytes = cls.alaw_enc[cls._index(pcm)].tobytes()
        return encoded

    @classmethod
    def ulaw_decode(cls, data: bytes) -> bytes:
        return cls.ulaw_dec[np.frombuffer(data, dtype=np.uint8)].tobytes()

    @classmethod
    def alaw_decode(cls, data: bytes) -> bytes:
        return cls.alaw_dec[np.frombuffer(data, dtype=np.uint8)].tobytes()


try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
except ImportError:  # Python 3.13+ without audioop-lts
    try:
        import audioop as _audioop  # audioop-lts installs under the same name
    except ImportError:
        _audioop = None  # type: ignore[assignment]

HAVE_AUDIOOP = _audioop is not None

ulaw_encode: Callable[[bytes], bytes]
ulaw_decode: Callable[[bytes], bytes]
alaw_encode: Callable[[bytes], bytes]
alaw_decode: Callable[[bytes], bytes]

if _audioop is not None:
    _ao = _audioop

    def ulaw_encode(pcm: bytes) -> bytes:
        """16-bit linear PCM -> µ-law."""
        return _ao.lin2ulaw(pcm, 2)

    def ulaw_decode(data: bytes) -> bytes:
        """µ-law -> 16-bit linear PCM."""
        return _ao.ulaw2lin(data, 2)

    def alaw_encode(pcm: bytes) -> bytes:
        """16-bit linear PCM -> A-law."""
        return _ao.lin2alaw(pcm, 2)

    def alaw_decode(data: bytes) -> bytes:
        """A-law -> 16-bit linear PCM."""
        return _ao.alaw2lin(data, 2)
else:
    ulaw_encode = NumpyG711.ulaw_encode
    ulaw_decode = NumpyG711.ulaw_decode
    alaw_encode = NumpyG711.alaw_encode
    alaw_decode = NumpyG711.alaw_decode


def _check(pt: int) -> None:
    if pt != PCMU and pt != PCMA:
        raise ValueError(f"payload type {pt} is not G.711 (0 PCMU or 8 PCMA)")


def encode(pcm: bytes, pt: int) -> bytes:
    """Encode 16-bit linear PCM for payload type `pt` (0 or 8)."""
    _check(pt)
    return ulaw_encode(pcm) if pt == PCMU else alaw_encode(pcm)


def decode(data: bytes, pt: int) -> bytes:
    """Decode a G.711 payload of type `pt` (0 or 8) to 16-bit linear PCM."""
    _check(pt)
    return ulaw_decode(data) if pt == PCMU else alaw_decode(data)


ULAW_TO_ALAW = alaw_encode(ulaw_decode(bytes(range(256))))
"""bytes.translate table: equal to decoding µ-law and encoding A-law, one C call a frame."""
ALAW_TO_ULAW = ulaw_encode(alaw_decode(bytes(range(256))))


def transcode(data: bytes, from_pt: int, to_pt: int) -> bytes:
    """Convert a G.711 payload between PCMU and PCMA (identity if equal)."""
    if from_pt == to_pt:
        return data
    _check(from_pt)
    _check(to_pt)
    return data.translate(ULAW_TO_ALAW if from_pt == PCMU else ALAW_TO_ULAW)


def silence(pt: int, samples: int = FRAME_SAMPLES) -> bytes:
    """An encoded frame of digital silence (0xFF for µ-law, 0xD5 for A-law)."""
    _check(pt)
    return (b"\xff" if pt == PCMU else b"\xd5") * samples
