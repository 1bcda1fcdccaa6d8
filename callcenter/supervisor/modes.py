"""Supervision modes as mix matrices (pure).

Members of a supervised call's mix are the caller, the agent and one or more supervisors, each
with a mode. ``matrix(roles)[listener][source]`` is 1 when ``listener`` hears ``source``:

- listen: the supervisor hears caller and agent; nobody hears the supervisor;
- whisper: as listen, and the agent hears the supervisor;
- barge: everybody hears everybody.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np


class Mode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class Role(StrEnum):
    CALLER = "caller"
    AGENT = "agent"


KEYS = {"4": Mode.LISTEN, "5": Mode.WHISPER, "6": Mode.BARGE}
"""Keys a supervisor presses to switch mode during a session (as with Asterisk ChanSpy)."""

CODES = {"*81": Mode.LISTEN, "*82": Mode.WHISPER, "*83": Mode.BARGE}
"""Feature codes (followed by the agent's number) that start a session."""


def hears(listener: Role | Mode, source: Role | Mode) -> bool:
    """Whether a member with role/mode ``listener`` hears one with role/mode ``source``."""
    if isinstance(source, Role):
        return True  # caller and agent are heard by everybody else
    if source is Mode.BARGE:
        return True
    if source is Mode.WHISPER:
        return listener is Role.AGENT
    return False


def matrix(members: Sequence[Role | Mode]) -> np.ndarray:
    """The mix matrix (listener x source, zero diagonal) for members given by role, or by
    mode for supervisors."""
    n = len(members)
    m = np.zeros((n, n), dtype=np.int32)
    for i, listener in enumerate(members):
        for j, source in enumerate(members):
            if i != j and hears(listener, source):
                m[i, j] = 1
    return m
