"""What the dialer keeps of a campaign and of each attempt in progress (runner and preview desk)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callcenter.config import Campaign
    from callcenter.dialer.compliance import AbandonLedger, CallingWindow, RedialGuard, RetryPolicy
    from callcenter.dialer.pacing import Pacer, Stats


@dataclass(eq=False)
class Flight:
    """One attempt in progress."""

    attempt: int
    contact: dict[str, Any]
    started: float  # loop time
    answered_at: float | None = None
    bridged: asyncio.Event = field(default_factory=asyncio.Event)
    agent: str | None = None
    bridged_at: float | None = None
    callback: bool = False  #: an owned callback, dialled for its agent
    #: answering-machine detection, listening from the INVITE on (it hears only after answer)
    amd: Any = None


@dataclass(eq=False)
class Live:
    """A campaign's live state."""

    cfg: Campaign
    pacer: Pacer
    stats: Stats
    ledger: AbandonLedger
    guard: RedialGuard
    window: CallingWindow
    policy: RetryPolicy
    running: bool = False
    flights: dict[int, Flight] = field(default_factory=dict)
    dials: int = 0
