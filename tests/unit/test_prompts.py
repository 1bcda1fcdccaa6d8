"""WAV prompt loading, resampling and the encoded-frame cache."""

from __future__ import annotations

import asyncio
import struct
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from callcenter.media import g711, prompts
from callcenter.media.prompts import PromptCache, PromptError, load_prompt, read_wav


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def dominant_freq(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def test_16bit_8khz_mono_is_read_exactly(tmp_path: Path) -> None:
    x = (sine(440, 8000, 0.5) * 32767).astype("<i2")
    y = read_wav(write_wav(tmp_path / "a.wav", x, 8000, 2))
    assert np.array_equal(x, y)


def test_8bit_stereo_44k1_becomes_8khz_mono(tmp_path: Path) -> None:
    left = sine(600, 44100, 1.0)
    right = sine(600, 44100, 1.0)
    st = np.stack((left, right), axis=1)
    u8 = np.clip(np.round(st * 127 + 128), 0, 255).astype(np.uint8)
    y = read_wav(write_wav(tmp_path / "b.wav", u8, 44100, 1, channels=2))
    assert len(y) == 8000
    assert abs(dominant_freq(y.astype(float)) - 600) < 10
    rms = np.sqrt(np.mean(y.astype(float) ** 2))
    assert 0.3 * 32768 < rms < 0.4 * 32768  # amplitude 0.5 -> RMS 0.354


def test_downsampling_removes_content_above_4khz(tmp_path: Path) -> None:
    x = ((sine(500, 48000, 1.0, 0.3) + sine(6000, 48000, 1.0, 0.3)) * 32767).astype("<i2")
    y = read_wav(write_wav(tmp_path / "c.wav", x, 48000, 2)).astype(float)
    spec = np.abs(np.fft.rfft(y))
    # 6 kHz would alias to 2 kHz without the low-pass
    assert spec[2000] < spec[500] * 0.01


def test_upsampling_16bit_from_6khz(tmp_path: Path) -> None:
    x = (sine(1000, 6000, 0.6) * 32767).astype("<i2")
    y = read_wav(write_wav(tmp_path / "d.wav", x, 6000, 2))
    assert len(y) == 4800
    assert abs(dominant_freq(y.astype(float)) - 1000) < 10


def test_frames_are_160_bytes_padded_with_silence(tmp_path: Path) -> None:
    x = (sine(440, 8000, 0.21) * 20000).astype("<i2")  # 1680 samples: 10.5 frames
    path = write_wav(tmp_path / "e.wav", x, 8000, 2)
    for codec in (g711.PCMU, g711.PCMA):
        prompt = load_prompt(path, codec)
        assert len(prompt.frames) == 11
        assert all(len(f) == 160 for f in prompt.frames)
        assert prompt.frames[-1][80:] == g711.silence(codec, 80)
        decoded = np.frombuffer(g711.decode(b"".join(prompt.frames), codec), "<i2")
        assert np.corrcoef(decoded[:1680], x)[0, 1] > 0.999
    assert prompt.duration == pytest.approx(0.22)


def _raw_wav(fmt_tag: int, bits: int, data: bytes, channels: int = 1) -> bytes:
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, 8000, 8000 * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_float32_and_24bit_pcm_are_read(tmp_path: Path) -> None:
    f = tmp_path / "f.wav"
    f.write_bytes(_raw_wav(3, 32, np.array([0.5, -0.25], "<f4").tobytes()))
    assert list(read_wav(f)) == [16384, -8192]
    p = tmp_path / "p24.wav"
    p.write_bytes(_raw_wav(1, 24, bytes.fromhex("0000400000e0")))
    assert list(read_wav(p)) == [16384, -8192]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_raw_wav(3, 24, bytes(6)), "24-bit float"),
        (_raw_wav(0x11, 4, bytes(8)), "unsupported WAV encoding"),
        (b"ID3\x03\x00 this is an mp3", "not a WAV"),
        (b"RIFF\x04\x00\x00\x00WAVE", "without fmt or data"),
    ],
)
def test_unreadable_files_raise_prompt_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(PromptError, match=message) as info:
        read_wav(path)
    assert str(path) in str(info.value)


def test_cache_lookup_by_language_and_path(tmp_path: Path) -> None:
    x = (sine(440, 8000, 0.1) * 20000).astype("<i2")
    (tmp_path / "pl").mkdir()
    write_wav(tmp_path / "pl" / "welcome.wav", x, 8000, 2)
    write_wav(tmp_path / "beep.wav", x, 8000, 2)
    cache = PromptCache(tmp_path)
    a = cache.get("welcome", "pl", g711.PCMA)
    assert a is cache.get("welcome", "pl", g711.PCMA)
    assert cache.get("pl/welcome.wav", None, g711.PCMA) is a
    assert cache.get("welcome", "pl", g711.PCMU).codec == g711.PCMU
    assert cache.get(str(tmp_path / "beep.wav"), "en", g711.PCMU).frames
    assert len(cache) == 4  # both codecs of welcome and beep
    with pytest.raises(PromptError, match="en/welcome.wav"):
        cache.get("welcome", "en", g711.PCMU)


def test_refresh_swaps_in_a_replaced_file_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A studio file replacing a prompt reaches the next get(); a call holding the old Prompt
    keeps its frames; the file is decoded in a worker thread, not on the loop's thread."""
    (tmp_path / "pl").mkdir()
    welcome = tmp_path / "pl" / "welcome.wav"
    write_wav(welcome, (sine(440, 8000, 0.5) * 20000).astype("<i2"), 8000, 2)
    write_wav(tmp_path / "beep.wav", (sine(1000, 8000, 0.1) * 20000).astype("<i2"), 8000, 2)
    threads: list[int] = []
    real_read = prompts.read_wav
    monkeypatch.setattr(prompts, "read_wav", lambda p: threads.append(threading.get_ident())
                        or real_read(p))
    cache = PromptCache(tmp_path)

    async def scenario() -> None:
        first = await cache.refresh()
        assert sorted(p.name for p in first.loaded) == ["beep.wav", "welcome.wav"]
        assert len(cache) == 4 and threading.get_ident() not in threads
        old = cache.get("welcome", "pl", g711.PCMU)
        assert not await cache.refresh()  # nothing changed: nothing read again
        n_reads = len(threads)

        replacement = tmp_path / "new.tmp"
        write_wav(replacement, (sine(1800, 48000, 2.0) * 20000).astype("<i2"), 48000, 2)
        replacement.replace(welcome)  # how an editor or `mv` saves it
        changes = await cache.refresh()
        assert list(changes.loaded) == [welcome] and len(threads) == n_reads + 1
        assert threading.get_ident() not in threads
        new = cache.get("welcome", "pl", g711.PCMU)
        assert new is not old and new.duration == pytest.approx(2.0)
        assert old.duration == pytest.approx(0.5)  # the call in progress keeps its frames
        pcm = np.frombuffer(g711.decode(b"".join(new.frames), g711.PCMU), "<i2")
        assert dominant_freq(pcm.astype(np.float64)) == pytest.approx(1800, abs=5)
        assert cache.get("welcome", "pl", g711.PCMA).duration == pytest.approx(2.0)

        welcome.write_bytes(b"RIFF....WAVEjunk")  # a broken save keeps the last good version
        assert list((await cache.refresh()).failed) == [welcome]
        assert cache.get("welcome", "pl", g711.PCMU) is new

        (tmp_path / "beep.wav").unlink()
        assert (await cache.refresh()).removed == {tmp_path / "beep.wav"}
        with pytest.raises(PromptError, match="beep.wav: prompt not found"):
            cache.get("beep", None, g711.PCMU)

    asyncio.run(scenario())
