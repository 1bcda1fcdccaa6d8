"""Answering-machine detection on synthesised 8 kHz signals."""

from __future__ import annotations

import numpy as np

from callcenter.dialer.amd import AmdDecision, detect
from callcenter.dialer.runner import _AmdTap

RATE = 8000


def tone(ms: int, amp: int = 6000) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return (amp * np.sin(2 * np.pi * 300 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(
        np.int16)


def silence(ms: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.normal(0, 30, RATE * ms // 1000).astype(np.int16)


def test_hello_then_silence_is_human() -> None:
    r = detect(np.concatenate([silence(400), tone(500), silence(1500)]))
    assert r.decision is AmdDecision.HUMAN
    assert r.confidence > 0.6


def test_long_greeting_is_machine() -> None:
    words = [np.concatenate([tone(400), silence(150)]) for _ in range(8)]
    r = detect(np.concatenate([silence(300), *words, silence(1000)]))
    assert r.decision is AmdDecision.MACHINE
    assert r.cause in {"MAXWORDS", "LONGGREETING"}


def test_continuous_speech_is_machine() -> None:
    r = detect(np.concatenate([silence(200), tone(3000)]))
    assert r.decision is AmdDecision.MACHINE and r.cause == "LONGGREETING"


def test_dead_air_is_machine_and_short_audio_notsure() -> None:
    assert detect(silence(3000)).cause == "INITIALSILENCE"
    assert detect(silence(500)).decision is AmdDecision.NOTSURE


def test_the_campaign_tap_hears_from_the_answer_on() -> None:
    """The dialer listens from the INVITE on (a greeting that reaches the socket before the
    loop handles the 200 is heard) but early media before the answer is not the callee."""
    answered = [False]
    tap = _AmdTap(lambda: answered[0])
    for chunk in (tone(1000), silence(100)):  # ringback tone, early media: ignored
        tap(chunk.astype("<i2").tobytes())
    assert tap.result is None and tap.detector._t == 0
    answered[0] = True
    tap(np.concatenate([tone(500), silence(2500)]).astype("<i2").tobytes())
    assert tap.result is not None and tap.result.decision is AmdDecision.HUMAN
    assert tap.decided.is_set()
