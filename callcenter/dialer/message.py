"""A message left on a detected answering machine: wait for the greeting's end, then play.

The greeting is over after :data:`GREETING_END_SILENCE` of silence (frames quieter than the
AMD silence threshold, or no audio at all), waiting at most :data:`MAX_GREETING_WAIT`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import numpy as np
import structlog

from callcenter.calls import flows
from callcenter.calls.call import Leg, LegState
from callcenter.dialer.amd import AmdConfig
from callcenter.media.g711 import PCMA, PCMU
from callcenter.media.prompts import PromptError

if TYPE_CHECKING:
    from callcenter.media.prompts import PromptCache

log = structlog.get_logger("dialer")

GREETING_END_SILENCE = 1.0  #: seconds of silence that end a machine's greeting
MAX_GREETING_WAIT = 20.0  #: play the message after this long even if the greeting goes on


class SilenceWatch:
    """A channel listener: the time the callee last made a sound."""

    def __init__(self, threshold: float = AmdConfig().silence_threshold,
                 now: float | None = None) -> None:
        self.threshold = threshold
        self.last_voice = time.monotonic() if now is None else now

    def feed(self, pcm: bytes, now: float) -> None:
        if len(pcm) >= 2:
            level = float(np.abs(np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
                                 .astype(np.int32)).mean())
            if level > self.threshold:
                self.last_voice = now

    def __call__(self, pcm: bytes) -> None:
        self.feed(pcm, time.monotonic())

    def quiet_for(self, now: float) -> float:
        return now - self.last_voice


async def leave_message(prompts: PromptCache, leg: Leg, prompt: str, language: str) -> bool:
    """Wait for the greeting's end, play ``prompt``; True if it was played to the end."""
    channel = leg.channel
    if channel is None or leg.state is not LegState.ANSWERED:
        return False
    try:
        encoded = prompts.get(prompt, language, PCMA if leg.codec == "PCMA" else PCMU)
    except PromptError as exc:
        log.error("machine_message_missing", error=str(exc))
        return False
    watch = SilenceWatch()
    channel.add_listener(watch)
    start = time.monotonic()
    try:
        while leg.state is LegState.ANSWERED:
            now = time.monotonic()
            if watch.quiet_for(now) >= GREETING_END_SILENCE or now - start >= MAX_GREETING_WAIT:
                break
            await asyncio.sleep(0.05)
    finally:
        channel.remove_listener(watch)
    if leg.state is not LegState.ANSWERED:
        return False
    waited = round(time.monotonic() - start, 2)
    channel.stop_playing()
    await flows.play(leg, encoded)
    played = leg.state is LegState.ANSWERED
    log.info("machine_message", number=leg.party, played=played, waited=waited)
    return played
