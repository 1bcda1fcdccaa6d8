"""Prompts: WAV files resampled to 8 kHz mono and cached as encoded 20 ms G.711 frames.

The cache is filled at start and refreshed while the server runs (``PromptCache.watch``): a new
or replaced file is decoded, resampled and encoded in a worker thread (numpy's FFT releases the
GIL), never on the event loop, and its entries are swapped in one step. A call that already
holds a ``Prompt`` keeps its frames; the next ``get`` returns the new ones.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from . import g711
from .g711 import FRAME_SAMPLES, SAMPLE_RATE

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3
_FORMAT_EXTENSIBLE = 0xFFFE

log = structlog.get_logger("media.prompts")

#: (inode, mtime in ns, size) of a prompt file when it was read
Stamp = tuple[int, int, int]


class PromptError(Exception):
    """A prompt that cannot be found or read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """An encoded prompt: `frames` are 160-byte G.711 frames of payload type `codec`."""

    name: str
    codec: int
    frames: tuple[bytes, ...]

    @property
    def duration(self) -> float:
        return len(self.frames) * FRAME_SAMPLES / SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.frames)


def _chunks(data: bytes, path: Path) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PromptError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    off = 12
    while off + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, off)
        chunks.setdefault(cid, data[off + 8 : off + 8 + size])
        off += 8 + size + (size & 1)
    return chunks


def _decode_samples(fmt: bytes, raw: bytes, path: Path) -> tuple[np.ndarray, int]:
    """Samples as float64 in [-1, 1), shape (frames, channels); and the sample rate."""
    if len(fmt) < 16:
        raise PromptError(f"{path}: truncated fmt chunk")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the SubFormat GUID
    if channels < 1 or rate < 1000 or block < 1:
        raise PromptError(f"{path}: bad fmt chunk ({channels} channels, {rate} Hz)")
    width = bits // 8
    usable = len(raw) - len(raw) % block
    raw = raw[:usable]
    if tag == _FORMAT_PCM and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == _FORMAT_PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif tag == _FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    elif tag == _FORMAT_PCM and bits == 32:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    elif tag == _FORMAT_FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float64)
    else:
        kind = {_FORMAT_PCM: "PCM", _FORMAT_FLOAT: "float"}.get(tag, f"format tag {tag:#x}")
        raise PromptError(
            f"{path}: unsupported WAV encoding ({bits}-bit {kind}); "
            "use 8/16/24/32-bit PCM or 32/64-bit float"
        )
    if block != width * channels:
        raise PromptError(f"{path}: block align {block} does not match {channels}x{bits} bits")
    return x.reshape(-1, channels), rate


def resample(x: np.ndarray, rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D signal by FFT (any ratio; low-passes when decimating)."""
    if rate == new_rate or len(x) == 0:
        return x
    n = len(x)
    m = max(1, int(round(n * new_rate / rate)))
    spec = np.fft.rfft(x)
    keep = min(len(spec), m // 2 + 1)
    out = np.zeros(m // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    if m < n:  # soften the brick wall a little to limit ringing
        taper = max(1, keep // 20)
        out[keep - taper : keep] *= np.linspace(1.0, 0.0, taper, endpoint=False)
    return np.fft.irfft(out, m) * (m / n)


def read_wav(path: str | Path) -> np.ndarray:
    """Read a WAV file as 8 kHz mono int16 samples. Raises PromptError naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PromptError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    chunks = _chunks(data, p)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise PromptError(f"{p}: WAV file without fmt or data chunk")
    x, rate = _decode_samples(chunks[b"fmt "], chunks[b"data"], p)
    mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    mono = resample(mono, rate)
    return np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2")


def encode_frames(samples: np.ndarray, codec: int) -> tuple[bytes, ...]:
    """Split int16 8 kHz samples into 20 ms frames encoded for `codec`, padding with silence."""
    pad = -len(samples) % FRAME_SAMPLES
    pcm = np.concatenate((samples.astype("<i2"), np.zeros(pad, "<i2"))).tobytes()
    encoded = g711.encode(pcm, codec)
    return tuple(encoded[i : i + FRAME_SAMPLES] for i in range(0, len(encoded), FRAME_SAMPLES))


def load_prompt(path: str | Path, codec: int) -> Prompt:
    """Load and encode one WAV file (no cache)."""
    return Prompt(str(path), codec, encode_frames(read_wav(path), codec))


def _stamp(path: Path | str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclass(slots=True)
class Changes:
    """What one refresh found: prompts (re)loaded, files that failed to load (kept the old
    entries), and files gone (forgotten)."""

    loaded: dict[Path, tuple[Stamp, dict[int, Prompt]]] = field(default_factory=dict)
    failed: dict[Path, tuple[Stamp, str]] = field(default_factory=dict)
    removed: set[Path] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.loaded or self.failed or self.removed)


def load_changed(root: Path, known: dict[Path, Stamp], codecs: Iterable[int]) -> Changes:
    """Read every WAV under ``root`` (and every ``known`` file) whose stamp differs from
    ``known``. Touches nothing shared, so it can run in a worker thread. A file still being
    written (its stamp changed while it was read) is left for the next refresh."""
    out = Changes()
    by_name = {str(path): path for path in known}  # plain strings: a scan of every file
    for name in sorted({*_wavs(str(root)), *by_name}):  # each second stays cheap
        stamp = _stamp(name)
        old = by_name.get(name)
        if stamp is None:
            if old is not None:
                out.removed.add(old)
            continue
        if old is not None and known[old] == stamp:
            continue
        path = old or Path(name)
        try:
            samples = read_wav(path)
            prompts = {c: Prompt(str(path), c, encode_frames(samples, c)) for c in codecs}
        except PromptError as exc:
            if _stamp(path) == stamp:
                out.failed[path] = (stamp, str(exc))
            continue
        if _stamp(path) == stamp:
            out.loaded[path] = (stamp, prompts)
    return out


def _wavs(root: str) -> Iterator[str]:
    """Every ``*.wav`` file under ``root`` (as ``Path.rglob`` finds them)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".wav"):
                yield os.path.join(folder, name)


class PromptCache:
    """Encoded prompts by (path, codec) for every codec in ``codecs``.

    `get("welcome", "pl", 8)` reads `<root>/pl/welcome.wav`; a name with a directory part or a
    `.wav` suffix is a path (relative to root unless absolute). ``refresh()`` (at start, then
    every second from ``watch()``) loads new and changed files off the loop; ``get`` reads a
    file itself only when no refresh has seen it yet (a file outside root, or one added since
    the last refresh).
    """

    def __init__(self, root_dir: str | Path, codecs: Iterable[int] = (g711.PCMU, g711.PCMA)) -> None:
        self.root = Path(root_dir)
        self.codecs = tuple(codecs)
        self._cache: dict[tuple[Path, int], Prompt] = {}
        self._stamps: dict[Path, Stamp] = {}

    def resolve(self, name_or_path: str, language: str | None = None) -> Path:
        """A path as given (absolute, or relative with ``.wav``), else a prompt name
        (``welcome``, ``numbers/1``): ``<root>/<language>/<name>.wav`` first, then
        ``<root>/<name>.wav`` for language-neutral sounds (beep, hold music)."""
        p = Path(name_or_path)
        if p.is_absolute():
            return p
        if p.suffix.lower() == ".wav":
            return self.root / p
        common = self.root / f"{name_or_path}.wav"
        if language:
            own = self.root / language / f"{name_or_path}.wav"
            if own.is_file() or not common.is_file():
                return own  # (when neither exists, the error names the language's file)
        return common

    def get(self, name_or_path: str, language: str | None = None, codec: int = g711.PCMU) -> Prompt:
        """The encoded prompt; raises PromptError if it is missing or unreadable."""
        path = self.resolve(name_or_path, language)
        key = (path, codec)
        prompt = self._cache.get(key)
        if prompt is None:
            stamp = _stamp(path)
            if stamp is None or not path.is_file():
                raise PromptError(f"{path}: prompt not found")
            samples = read_wav(path)
            for c in {*self.codecs, codec}:
                self._cache[(path, c)] = Prompt(str(path), c, encode_frames(samples, c))
            self._stamps[path] = stamp
            prompt = self._cache[key]
        return prompt

    async def refresh(self) -> Changes:
        """Load new and changed files in a worker thread, then swap their entries in."""
        known = dict(self._stamps)
        changes = await asyncio.get_running_loop().run_in_executor(
            None, load_changed, self.root, known, self.codecs)
        for path, (stamp, prompts) in changes.loaded.items():
            for codec, prompt in prompts.items():
                self._cache[(path, codec)] = prompt
            self._stamps[path] = stamp
            if known:
                log.info("prompt_loaded", path=str(path),
                         seconds=round(next(iter(prompts.values())).duration, 2))
        if changes.loaded and not known:
            log.info("prompts_loaded", files=len(changes.loaded), directory=str(self.root))
        for path, (stamp, error) in changes.failed.items():
            self._stamps[path] = stamp  # not retried until the file changes again
            log.error("prompt_load_failed", path=str(path), error=error,
                      kept="the previous version stays in use")
        for path in changes.removed:
            self._stamps.pop(path, None)
            for key in [k for k in self._cache if k[0] == path]:
                del self._cache[key]
            log.info("prompt_removed", path=str(path))
        return changes

    async def watch(self, interval: float = 1.0) -> None:
        """Refresh every ``interval`` seconds, for ever."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except OSError as exc:
                log.error("prompt_refresh_failed", error=str(exc))

    def __len__(self) -> int:
        return len(self._cache)
