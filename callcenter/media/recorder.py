"""WAV recorder: 8 kHz 16-bit PCM, mono or stereo, written as frames arrive."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .g711 import SAMPLE_RATE

_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def wav_header(data_bytes: int, channels: int, rate: int = SAMPLE_RATE) -> bytes:
    """A 44-byte PCM 16-bit WAV header for `data_bytes` of sample data."""
    block = 2 * channels
    return _HEADER.pack(
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * block,
        block,
        16,
        b"data",
        data_bytes,
    )


class WavRecorder:
    """Writes 16-bit little-endian PCM to a WAV file progressively; the header is fixed on close.

    Mono: `write(pcm)`. Stereo: `write(pcm, side=0)` for the left source and `side=1` for the
    right; the two are interleaved as both arrive, and a side that falls more than `max_skew`
    samples behind is padded with silence so the channels stay aligned.
    """

    def __init__(self, path: str | Path, *, stereo: bool = False, max_skew: int = 8000) -> None:
        self.path = Path(path)
        self.channels = 2 if stereo else 1
        self.max_skew = max_skew
        self.data_bytes = 0
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(wav_header(0, self.channels))
        self._pending: tuple[bytearray, bytearray] = (bytearray(), bytearray())

    @property
    def closed(self) -> bool:
        return self._file is None

    @property
    def samples(self) -> int:
        """Samples per channel written so far."""
        return self.data_bytes // (2 * self.channels)

    def write(self, pcm: bytes, side: int = 0) -> None:
        """Append 16-bit PCM (for stereo: to the left, 0, or right, 1, channel)."""
        f = self._file
        if f is None:
            return
        if self.channels == 1:
            f.write(pcm)
            self.data_bytes += len(pcm)
            return
        self._pending[side].extend(pcm)
        self._flush_stereo(force=False)

    def _flush_stereo(self, *, force: bool) -> None:
        left, right = self._pending
        skew = abs(len(left) - len(right)) // 2
        if force or skew > self.max_skew:
            short = left if len(left) < len(right) else right
            short.extend(bytes(abs(len(left) - len(right))))
        n = min(len(left), len(right)) & ~1
        if not n or self._file is None:
            return
        out = np.empty((n // 2, 2), dtype="<i2")
        out[:, 0] = np.frombuffer(bytes(left[:n]), "<i2")
        out[:, 1] = np.frombuffer(bytes(right[:n]), "<i2")
        del left[:n], right[:n]
        self._file.write(out.tobytes())
        self.data_bytes += 2 * n

    def close(self) -> None:
        """Flush, fix the header's sizes and close. Idempotent."""
        f = self._file
        if f is None:
            return
        if self.channels == 2:
            self._flush_stereo(force=True)
        f.seek(0)
        f.write(wav_header(self.data_bytes, self.channels))
        f.close()
        self._file = None

    def __enter__(self) -> WavRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
