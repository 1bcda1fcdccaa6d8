"""Audio checks for tests: WAV <-> numpy, G.711 decoding tables, RMS, correlation, Goertzel."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import g711

Samples = npt.NDArray[np.float64]
ULAW_TABLE = np.array(g711.ULAW_DECODE, dtype=np.int16)
ALAW_TABLE = np.array(g711.ALAW_DECODE, dtype=np.int16)
#: RMS (full scale = 1.0) below which a signal counts as silence; G.711 idle noise is ~1e-4.
SILENCE_RMS = 0.003


def read_wav(path: Path | str) -> tuple[Samples, int]:
    """Mono float samples in [-1, 1) and the sample rate (stereo is averaged)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit WAV is supported")
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        channels, rate = w.getnchannels(), w.getframerate()
    if channels > 1:
        raw = raw.reshape(-1, channels).mean(axis=1)
    return raw / 32768.0, rate


def write_wav(path: Path | str, samples: Samples, rate: int = 8000) -> Path:
    """Write mono float samples as 16-bit PCM."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return Path(path)


def decode_g711(data: bytes, codec: str) -> Samples:
    """G.711 bytes ('PCMU' or 'PCMA') -> float samples."""
    table = ULAW_TABLE if codec.upper() == "PCMU" else ALAW_TABLE
    return table[np.frombuffer(data, dtype=np.uint8)].astype(np.float64) / 32768.0


def rms(samples: Samples) -> float:
    """Root mean square (0.0 for an empty signal)."""
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def active_rms(samples: Samples, frame: int = 160) -> float:
    """RMS over the 20 ms frames that are not silent: speech with pauses still scores high."""
    n = len(samples) // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].reshape(n, frame)
    per_frame = np.sqrt(np.mean(np.square(frames), axis=1))
    loud = per_frame[per_frame > SILENCE_RMS]
    return float(np.sqrt(np.mean(np.square(loud)))) if len(loud) else 0.0


def max_correlation(a: Samples, b: Samples, max_lag: int = 16000) -> float:
    """Peak normalised cross-correlation of b against a over lags 0..max_lag (either way)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    spec = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    corr = np.fft.irfft(spec, n)
    lags = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]]) if max_lag < n // 2 else corr
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.max(np.abs(lags)) / norm) if norm else 0.0


def goertzel_power(samples: Samples, freq: float, rate: int = 8000) -> float:
    """Power of one frequency in a block (Goertzel), normalised by the block length."""
    coeff = 2.0 * np.cos(2.0 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = float(x) + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / max(1, len(samples)) ** 2


def tone_present(samples: Samples, freq: float, rate: int = 8000, *, ratio: float = 0.1) -> bool:
    """True when freq carries at least `ratio` of the block's energy (pure tone: about 0.25)."""
    energy = float(np.mean(np.square(samples))) if len(samples) else 0.0
    return energy > 0 and goertzel_power(samples, freq, rate) / energy >= ratio


def make_speech_wav(
    path: Path | str, text: str, *, voice: str = "en-us", pad_seconds: float = 0.0
) -> Path:
    """Speak text with espeak-ng, resample to 8 kHz mono 16-bit with sox (-3 dBFS)."""
    path = Path(path)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(
                f"{tool} is needed to make test prompts (tests/run.sh installs it)"
            )
    speech = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "160", "--stdout", text],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    cmd = [
        "sox",
        "-V1",
        "-t",
        "wav",
        "-",
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        str(path),
        "norm",
        "-3",
    ]
    if pad_seconds:
        cmd += ["pad", "0", str(pad_seconds)]
    subprocess.run(cmd, input=speech, check=True, capture_output=True, timeout=30)
    return path


def make_tone_wav(
    path: Path | str,
    freqs: tuple[float, ...],
    seconds: float,
    amplitude: float = 0.3,
    rate: int = 8000,
) -> Path:
    """A sum of sines (e.g. a DTMF pair) as 16-bit mono WAV."""
    t = np.arange(int(seconds * rate)) / rate
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) * (amplitude / max(1, len(freqs)))
    return write_wav(path, np.asarray(signal, dtype=np.float64), rate)


def loop_wav(src: Path | str, dst: Path | str, seconds: float, gap: float = 0.5) -> Path:
    """Repeat a WAV (with a short gap) until it lasts `seconds`: a source that never runs out."""
    samples, rate = read_wav(src)
    unit = np.concatenate([samples, np.zeros(int(gap * rate))])
    reps = int(np.ceil(seconds * rate / len(unit)))
    return write_wav(dst, np.tile(unit, reps)[: int(seconds * rate)], rate)


def best_match(reference: Samples, recording: Samples) -> float:
    """How well the reference appears somewhere in the recording: the peak, over all offsets,
    of the correlation normalised by the energy of the recording window under the reference.
    1.0 is an exact (scaled) copy; unrelated speech or noise stays well below 0.5."""
    n, m = len(reference), len(recording)
    if n == 0 or m == 0:
        return 0.0
    if m < n:
        reference, recording, n, m = recording, reference, m, n
    size = 1 << int(np.ceil(np.log2(n + m)))
    num = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    num = num[: m - n + 1]
    energy = np.concatenate([[0.0], np.cumsum(np.square(recording))])
    window = energy[n:] - energy[: m - n + 1]
    ref_energy = float(np.sum(np.square(reference)))
    valid = window > ref_energy * 1e-3
    if not np.any(valid) or ref_energy == 0:
        return 0.0
    return float(np.max(np.abs(num[valid]) / np.sqrt(window[valid] * ref_energy)))
