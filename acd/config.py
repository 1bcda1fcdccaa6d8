"""Queue and agent configuration: plain frozen dataclasses, keyword-only, checked on creation."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class InvalidSetting(ValueError):
    """A queue or agent configuration that cannot work (names the object and the field)."""


class EngineDefault(enum.Enum):
    """A queue setting left to the engine's own (constructor) value."""

    TOKEN = "engine default"


ENGINE_DEFAULT = EngineDefault.TOKEN


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """An agent's place in one queue.

    ``tier``: 1 is offered calls at once; tier ``t`` only once a call has waited
    ``(t - 1) * queue.tier_wait`` seconds (when the queue sets ``tier_wait``).
    ``penalty``: among eligible agents only those with the lowest penalty are ranked
    (Asterisk's meaning).
    """

    queue: str
    tier: int = 1
    penalty: int = 0

    def __post_init__(self) -> None:
        if self.tier < 1:
            raise InvalidSetting(f"membership of queue {self.queue!r}: tier must be >= 1")
        if self.penalty < 0:
            raise InvalidSetting(f"membership of queue {self.queue!r}: penalty must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """An agent (a SIP user).

    ``logged_in``: a static member, logged in from the start (it is offered calls once its
    phone registers). ``registered``/``reachable``: the initial flags (the simulator starts
    agents registered; the live side starts them unregistered and reports REGISTERs).
    """

    id: str
    queues: tuple[Membership, ...] = ()
    skills: Mapping[str, int] = field(default_factory=dict)
    logged_in: bool = False
    registered: bool = False
    reachable: bool = True

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidSetting("agent: id must not be empty")
        names = [m.queue for m in self.queues]
        if len(set(names)) != len(names):
            raise InvalidSetting(f"agent {self.id!r}: a queue is listed twice")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """A queue.

    Times are seconds. ``None`` turns a feature off (no max wait, no periodic announcement...).
    ``required_skills`` apply to every call of the queue, in addition to the call's own.
    ``callback_key``: the key that leaves a callback request keeping the caller's place.
    ``overflow``: the queue a call moves to on max wait (and when it finds or is left with
    nobody staffed); ``timeout_destination``/``empty_destination`` are passed through to the
    live side in :class:`~acd.actions.ExitQueue` otherwise.
    ``auto_pause_after``: pause an agent who missed this many of the queue's rings in a row
    (``None``: never; ``ENGINE_DEFAULT``: the engine's ``auto_pause_after``).
    """

    name: str
    strategy: str = "longest-idle-agent"
    ring_timeout: float = 15.0
    retry: float = 5.0  # after every eligible agent missed a call, wait before trying them again
    wrapup: float = 0.0
    max_wait: float | None = None
    announce_position: bool = True  # on entry
    announce_every: float | None = 60.0
    join_empty: bool = True
    leave_when_empty: bool = False
    callback_key: str | None = "1"
    overflow: str | None = None
    timeout_destination: str | None = None
    empty_destination: str | None = None
    required_skills: Mapping[str, int] = field(default_factory=dict)
    tier_wait: float | None = None
    whisper: str | None = None  # announcement the agent hears before the caller (a prompt name)
    ring_in_use: bool = False  # offer calls to agents whose phone is busy with another call
    weight: int = 0  # when one agent could take calls from several queues, higher goes first
    sl_seconds: float = 20.0
    auto_pause_after: int | None | EngineDefault = ENGINE_DEFAULT

    def __post_init__(self) -> None:
        def bad(what: str) -> InvalidSetting:
            return InvalidSetting(f"queue {self.name!r}: {what}")

        if not self.name:
            raise InvalidSetting("queue: name must not be empty")
        if self.ring_timeout <= 0:
            raise bad("ring_timeout must be > 0")
        for key in ("retry", "wrapup", "sl_seconds"):
            if getattr(self, key) < 0:
                raise bad(f"{key} must be >= 0")
        for key in ("max_wait", "announce_every", "tier_wait"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise bad(f"{key} must be > 0 (or None to turn it off)")
        if self.callback_key is not None and (
            len(self.callback_key) != 1 or self.callback_key not in "0123456789*#"
        ):
            raise bad("callback_key must be one of 0-9 * #")
        n = self.auto_pause_after
        if isinstance(n, int) and n < 1:
            raise bad("auto_pause_after must be >= 1 (or None to turn it off)")
        if self.overflow == self.name:
            raise bad("overflow must name another queue")
