"""Answering-machine detection from the first seconds of audio (pure).

Energy and cadence over 20 ms frames of 8 kHz signed 16-bit audio, after Asterisk's
``app_amd`` parameters: a long initial silence, a long greeting, too many words or one very
long word mean a machine; a short greeting followed by silence means a person.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
FRAME_SAMPLES = 160  #: 20 ms at 8 kHz


class AmdDecision(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    NOTSURE = "notsure"


@dataclass(frozen=True, slots=True, kw_only=True)
class AmdConfig:
    """Asterisk ``amd.conf`` parameters (milliseconds; ``silence_threshold`` is mean |x|)."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 3
    maximum_word_length: int = 5000
    silence_threshold: int = 256


@dataclass(frozen=True, slots=True)
class AmdResult:
    decision: AmdDecision
    cause: str  #: Asterisk's AMDCAUSE word: HUMAN, INITIALSILENCE, LONGGREETING, MAXWORDS...
    confidence: float  #: 0..1
    analysed_ms: int
    words: int
    greeting_ms: int


class AmdDetector:
    """Feed 20 ms frames; :attr:`result` is set once a decision is reached."""

    def __init__(self, config: AmdConfig | None = None) -> None:
        self.cfg = config or AmdConfig()
        self.result: AmdResult | None = None
        self._t = 0
        self._silence = 0
        self._voice = 0  # current run of voiced frames, ms
        self._greeting = 0  # voiced time since the first word, ms
        self._words = 0
        self._in_word = False
        self._started = False

    def _done(self, decision: AmdDecision, cause: str, confidence: float) -> AmdResult:
        self.result = AmdResult(decision, cause, round(min(max(confidence, 0.0), 1.0), 3),
                                self._t, self._words, self._greeting)
        return self.result

    def feed(self, frame: np.ndarray) -> AmdResult | None:
        """One frame of int16 samples; returns the result when decided (then keeps it)."""
        if self.result is not None:
            return self.result
        c = self.cfg
        self._t += FRAME_MS
        energy = float(np.abs(frame.astype(np.int32)).mean()) if frame.size else 0.0
        if energy < c.silence_threshold:
            self._silence += FRAME_MS
            if self._silence >= c.between_words_silence:
                self._in_word = False
                self._voice = 0
            if not self._started and self._silence >= c.initial_silence:
                return self._done(AmdDecision.MACHINE, "INITIALSILENCE", 0.6)
            if self._started and self._silence >= c.after_greeting_silence:
                # the shorter the greeting, the surer: "hello" is ~0.5 s, a machine 2+ s
                conf = 0.5 + 0.5 * (1 - self._greeting / c.greeting)
                return self._done(AmdDecision.HUMAN, "HUMAN", conf)
        else:
            self._silence = 0
            self._voice += FRAME_MS
            if self._started:
                self._greeting += FRAME_MS
            if self._voice >= c.min_word_length and not self._in_word:
                self._in_word = True
                self._started = True
                self._words += 1
                self._greeting += self._voice - FRAME_MS
                if self._words >= c.maximum_number_of_words:
                    return self._done(AmdDecision.MACHINE, "MAXWORDS", 0.7 + 0.05 * self._words)
            if self._voice >= c.maximum_word_length:
                return self._done(AmdDecision.MACHINE, "MAXWORDLENGTH", 0.8)
            if self._started and self._greeting >= c.greeting:
                over = self._greeting / c.greeting
                return self._done(AmdDecision.MACHINE, "LONGGREETING", 0.6 + 0.2 * over)
        if self._t >= c.total_analysis_time:
            return self._done(AmdDecision.NOTSURE, "TOOLONG", 0.3)
        return None


def detect(samples: np.ndarray, config: AmdConfig | None = None) -> AmdResult:
    """Classify the start of an answered call (8 kHz int16); NOTSURE if the audio runs out."""
    det = AmdDetector(config)
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        result = det.feed(samples[start:start + FRAME_SAMPLES])
        if result is not None:
            return result
    return det._done(AmdDecision.NOTSURE, "TOOSHORT", 0.2)
