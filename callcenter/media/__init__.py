"""Media plane: RTP/RTCP, G.711, DTMF, prompts, recording and the engine with one 20 ms clock."""

from .engine import Channel, ChannelStats, EngineStats, MediaEngine, MediaError, PlayOutcome
from .prompts import Prompt, PromptCache, PromptError

__all__ = [
    "Channel",
    "ChannelStats",
    "EngineStats",
    "MediaEngine",
    "MediaError",
    "PlayOutcome",
    "Prompt",
    "PromptCache",
    "PromptError",
]
