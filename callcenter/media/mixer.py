"""Conference mixing, pure numpy: per-listener mixes of G.711 frames, a jitter buffer per input.

A mix of ``n`` participants has an ``n x n`` matrix: ``matrix[listener, source]`` is the gain
(0 or 1 in practice) with which ``listener`` hears ``source``. The diagonal is always treated as
zero, so nobody hears themselves ("minus self"). Sums are 16-bit linear with saturation.

Inputs are kept as µ-law bytes (A-law is translated on the way in), so one tick of many mixes
decodes, mixes and encodes every frame with a handful of numpy operations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .g711 import FRAME_SAMPLES, NumpyG711
from .rtp import ts_delta

ULAW_SILENCE = b"\xff" * FRAME_SAMPLES
"""One 20 ms frame of µ-law digital silence."""

_DEC = NumpyG711.ulaw_dec  # uint8 code -> int16
_ENC = NumpyG711.ulaw_enc  # (int16 + 32768) -> uint8 code


def decode_ulaw(codes: np.ndarray) -> np.ndarray:
    """µ-law codes (uint8, any shape) to int16 samples."""
    out: np.ndarray = _DEC[codes]
    return out


def encode_ulaw(pcm: np.ndarray) -> np.ndarray:
    """int16 samples (any shape) to µ-law codes (uint8)."""
    out: np.ndarray = _ENC[pcm.view(np.uint16) ^ 0x8000]
    return out


def normalise_matrix(matrix: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """A square int32 gain matrix with a zero diagonal (nobody hears themselves)."""
    m = np.array(matrix, dtype=np.int32, copy=True)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a mix matrix must be square, got shape {m.shape}")
    np.fill_diagonal(m, 0)
    return m


def mix(pcm: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per-listener sums with saturation.

    ``pcm``: int16 of shape ``(..., n, samples)`` (one row per participant); ``matrix``: shape
    ``(..., n, n)`` (listener x source). Returns int16 ``(..., n, samples)``; the diagonal of
    ``matrix`` is ignored. Leading dimensions batch many mixes of the same size.
    """
    n = pcm.shape[-2]
    m = matrix.astype(np.int32, copy=True)
    idx = np.arange(n)
    m[..., idx, idx] = 0
    src = pcm.astype(np.int32)
    out = np.zeros(src.shape, dtype=np.int32)
    for s in range(n):  # n is small (3 or 4): n vectorised steps beat a generic matmul
        out += m[..., :, s, None] * src[..., None, s, :]
    np.clip(out, -32768, 32767, out=out)
    return out.astype(np.int16)


def mix_ulaw(codes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``mix`` over µ-law codes: uint8 ``(..., n, samples)`` in, uint8 of the same shape out."""
    return encode_ulaw(mix(decode_ulaw(codes), matrix))


class JitterBuffer:
    """Incoming µ-law samples of one participant, read one frame per clock tick.

    Playout starts once ``prefill`` samples are buffered (and again after an underrun); more
    than ``cap`` samples (a sender running fast, a burst) are trimmed back to ``prefill``,
    oldest first. With RTP timestamps, duplicates and late packets are dropped and a gap from
    lost packets is filled with silence so the timeline stays.
    """

    __slots__ = ("_buf", "_next_ts", "_ssrc", "_started", "cap", "dropped", "frame",
                 "late", "prefill", "underruns")

    def __init__(
        self, *, prefill: int = 2 * FRAME_SAMPLES, cap: int = 6 * FRAME_SAMPLES,
        frame: int = FRAME_SAMPLES,
    ) -> None:
        if not frame <= prefill <= cap:
            raise ValueError("expected frame <= prefill <= cap")
        self.prefill, self.cap, self.frame = prefill, cap, frame
        self._buf = bytearray()
        self._started = False
        self._ssrc: int | None = None
        self._next_ts = 0
        self.underruns = 0
        self.dropped = 0
        """Samples trimmed because the buffer overflowed."""
        self.late = 0
        """Packets dropped as duplicate or too late."""

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, payload: bytes, ts: int | None = None, ssrc: int | None = None) -> None:
        """Add a packet's µ-law payload (with its RTP timestamp and SSRC when known)."""
        buf = self._buf
        if ts is not None:
            if ssrc == self._ssrc:
                gap = ts_delta(ts, self._next_ts)
                if gap < 0:
                    self.late += 1
                    return
                if 0 < gap <= self.cap:
                    buf.extend(b"\xff" * gap)
            self._ssrc = ssrc
            self._next_ts = (ts + len(payload)) & 0xFFFFFFFF
        buf.extend(payload)
        if len(buf) > self.cap:
            excess = len(buf) - self.prefill
            del buf[:excess]
            self.dropped += excess

    def pop(self) -> bytes | None:
        """The next frame, or None (play silence) while filling or after an underrun."""
        buf = self._buf
        if not self._started:
            if len(buf) < self.prefill:
                return None
            self._started = True
        if len(buf) < self.frame:
            self._started = False
            self.underruns += 1
            return None
        out = bytes(buf[: self.frame])
        del buf[: self.frame]
        return out

    def clear(self) -> None:
        self._buf.clear()
        self._started = False
        self._ssrc = None
