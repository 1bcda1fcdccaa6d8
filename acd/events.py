"""What the engine is told: frozen dataclasses, one per happening, fed to ``AcdEngine.handle``.

The time of each event is the ``now`` passed with it, never a field. Agents and calls are
named by strings (the SIP user, the call id of the caller's leg).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from acd.config import AgentConfig, QueueConfig

DIGITS = frozenset("0123456789*#ABCD")


class RingFailure(enum.Enum):
    NO_ANSWER = "no_answer"  # the ring timeout passed (counts towards auto-pause)
    BUSY = "busy"  # 486/600: skipped for this call, not counted
    REJECTED = "rejected"  # 603 or declined on the phone (counts towards auto-pause)
    UNREACHABLE = "unreachable"  # 408/480/503, transport error: marks the agent unreachable


class HungUpBy(enum.Enum):
    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class CallArrived:
    """A caller enters ``queue``. Higher ``priority`` is served first (by entry time within a
    priority); ``skills`` maps skill to the minimum level the agent needs.

    ``callback``: a callback request, not a caller on the line (no music, no announcements, no
    time-out); ``entered`` (engine time, maybe in the past) keeps the place of the call it
    stands for: it is offered where that caller would have been had they stayed."""

    call: str
    queue: str
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    caller: str = ""
    callback: bool = False
    entered: float | None = None


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left before being connected (while waiting or while an agent rang)."""

    call: str


@dataclass(frozen=True, slots=True)
class CallbackCancelled:
    """A waiting callback request is taken out (cancelled, or moved to another time)."""

    call: str


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """The caller pressed a key while queued."""

    call: str
    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DIGITS:
            raise ValueError(f"KeyPressed: digit must be one of 0-9 * # A-D, got {self.digit!r}")


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    """Into every queue of the agent, or ``queue`` only (Asterisk's QueueAdd): a logged-out
    agent who logs into one queue is logged out of its others."""

    agent: str
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    """Out of every queue, or ``queue`` only (QueueRemove); out of the last queue it is in is
    out of all. Takes effect at once, or after the current call when on one."""

    agent: str
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class MemberAdded:
    """The agent joins ``queue`` at run time (its log-in state is unchanged); ignored when it
    is already a member."""

    agent: str
    queue: str
    tier: int = 1
    penalty: int = 0


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """The agent leaves ``queue``: a ring for one of its calls is cancelled, a call in
    progress goes on to its end, no new ones are offered; ignored for a non-member."""

    agent: str
    queue: str


@dataclass(frozen=True, slots=True)
class MemberChanged:
    """A member's tier or penalty changes (a ring in progress goes on); ignored for a
    non-member."""

    agent: str
    queue: str
    tier: int = 1
    penalty: int = 0


@dataclass(frozen=True, slots=True)
class AgentSkills:
    """The agent's skill levels are replaced (they count from the next offer)."""

    agent: str
    skills: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class AgentAdded:
    """A new agent at run time (a reload), with its memberships; one removed before comes
    back. Ignored for an agent already there."""

    cfg: AgentConfig


@dataclass(frozen=True, slots=True)
class AgentRemoved:
    """The agent leaves every queue (a ring is cancelled, a call in progress goes on to its
    end), is logged out at once or after that call, and is offered nothing more."""

    agent: str


@dataclass(frozen=True, slots=True)
class QueueConfigured:
    """A queue is added, or its settings are replaced: the calls waiting keep their places
    (and the timers they already have); the new settings apply from the next offer."""

    cfg: QueueConfig


@dataclass(frozen=True, slots=True)
class QueueRemoved:
    """The queue takes no new calls; those in it are still served by its members, and it is
    gone once the last has left."""

    queue: str


@dataclass(frozen=True, slots=True)
class AgentPaused:
    """Takes effect at once, or after the current call when on one; ``reason`` is free text
    (a reason code from ``*43<digits>``)."""

    agent: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentUnpaused:
    agent: str


@dataclass(frozen=True, slots=True)
class AgentRegistered:
    agent: str


@dataclass(frozen=True, slots=True)
class AgentUnregistered:
    """The last binding expired or was removed."""

    agent: str


@dataclass(frozen=True, slots=True)
class AgentReachability:
    """The phone answers OPTIONS again (``True``) or stopped answering (``False``)."""

    agent: str
    reachable: bool


@dataclass(frozen=True, slots=True)
class AgentDeviceInUse:
    """The agent's phone is busy with a call the ACD did not place (ring-in-use off skips it)."""

    agent: str
    in_use: bool


@dataclass(frozen=True, slots=True)
class RingAnswered:
    """The agent's phone answered the ring for ``call``."""

    agent: str
    call: str


@dataclass(frozen=True, slots=True)
class RingFailed:
    agent: str
    call: str
    reason: RingFailure = RingFailure.NO_ANSWER


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A connected call ended."""

    call: str
    hung_up_by: HungUpBy = HungUpBy.CALLER


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """The agent transferred a connected call to ``target``; the agent goes to wrap-up."""

    call: str
    target: str
    attended: bool = False  #: the agent talked to the target first (queue log)


@dataclass(frozen=True, slots=True)
class WrapUpEnded:
    """The agent ends wrap-up early (the engine's timer ends it otherwise)."""

    agent: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: fire due timers. Send it at ``engine.next_deadline()`` (early is harmless)."""


Event = (
    CallArrived | CallerHungUp | CallbackCancelled | KeyPressed | AgentLoggedIn | AgentLoggedOut
    | MemberAdded | MemberRemoved | MemberChanged | AgentSkills | AgentAdded | AgentRemoved
    | QueueConfigured | QueueRemoved | AgentPaused
    | AgentUnpaused | AgentRegistered | AgentUnregistered | AgentReachability | AgentDeviceInUse
    | RingAnswered | RingFailed | CallEnded | CallTransferred | WrapUpEnded | Tick
)
