"""What the engine asks for, and what it reports: frozen dataclasses returned by ``handle``.

Commands (the live side carries them out over SIP and media): :class:`RingAgent`,
:class:`CancelRing`, :class:`DropAgentLeg`, :class:`Bridge`, :class:`Announce`,
:class:`PlayHoldMusic`, :class:`ExitQueue`, :class:`CallMoved`, :class:`CallbackRequested`.
Records (store, publish, log): :class:`AgentStateChanged`, :class:`AgentInUse`,
:class:`QueueLogEntry`, :class:`WatchdogFired`, :class:`Ignored`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from acd.states import AgentState


class ExitReason(enum.Enum):
    TIMEOUT = "timeout"  # max wait passed
    JOIN_EMPTY = "join_empty"  # nobody staffed when the call arrived
    LEAVE_EMPTY = "leave_empty"  # the last staffed agent left while the call waited


class QueueEvent(enum.Enum):
    """Queue log verbs (Asterisk queue_log in spirit)."""

    ENTER = "enter"
    CONNECT = "connect"
    COMPLETE = "complete"
    ABANDON = "abandon"
    TIMEOUT = "timeout"
    EXIT_EMPTY = "exit_empty"
    TRANSFER = "transfer"
    ATTENDED_TRANSFER = "attendedtransfer"  #: the agent talked to the target first
    RING_NO_ANSWER = "ringnoanswer"
    CALLBACK = "callback"
    ADD_MEMBER = "addmember"  # an agent logged in to the queue (call "NONE"), Asterisk's verbs
    REMOVE_MEMBER = "removemember"
    PAUSE = "pause"  # detail: the reason
    UNPAUSE = "unpause"


@dataclass(frozen=True, slots=True)
class RingAgent:
    """Ring ``agent``'s phone for ``call``; report RingAnswered or RingFailed (after ``timeout``
    at most). ``callback``: the caller is not on the line; dial ``caller`` once the agent
    answers (see :class:`Bridge`)."""

    agent: str
    call: str
    queue: str
    timeout: float
    caller: str = ""
    callback: bool = False


@dataclass(frozen=True, slots=True)
class CancelRing:
    """Stop ringing ``agent`` for ``call`` (CANCEL the INVITE); no answer is expected."""

    agent: str
    call: str
    reason: str


@dataclass(frozen=True, slots=True)
class DropAgentLeg:
    """An answer came too late (the call is gone or went to another agent): hang up on
    ``agent`` with a short apology."""

    agent: str
    call: str
    reason: str


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect ``agent`` (who answered) and ``call``; play ``whisper`` to the agent first when set.
    With ``callback`` the caller is dialed now (at ``caller``) and connected when answered."""

    agent: str
    call: str
    queue: str
    whisper: str | None = None
    callback: bool = False
    caller: str = ""


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the caller the position and the estimated wait (``None``: no honest estimate yet),
    then go back to music on hold."""

    call: str
    queue: str
    position: int
    estimated_wait: float | None


@dataclass(frozen=True, slots=True)
class PlayHoldMusic:
    call: str
    queue: str


@dataclass(frozen=True, slots=True)
class ExitQueue:
    """The call leaves the queue unanswered; send it to ``destination`` (None: hang up politely)."""

    call: str
    queue: str
    reason: ExitReason
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class CallMoved:
    """The call overflowed from ``from_queue`` to ``to_queue`` (the engine moved it already)."""

    call: str
    from_queue: str
    to_queue: str
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller asked to be called back at ``caller``; the entry keeps its place. Confirm and
    hang up the caller's leg: the engine rings an agent with ``callback=True`` when its turn
    comes and ignores the caller's hang-up meanwhile."""

    call: str
    queue: str
    caller: str
    position: int
    entered: float = 0.0  #: engine time the call first entered a queue (its place)


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    time: float
    agent: str
    old: AgentState
    new: AgentState
    reason: str = ""  # pause reason, "auto" for auto-pause, the input that caused it otherwise


@dataclass(frozen=True, slots=True)
class AgentInUse:
    """The agent's phone started (``in_use``) or ended its calls the ACD did not place: a
    flag beside the state, so no :class:`AgentStateChanged`."""

    time: float
    agent: str
    in_use: bool


@dataclass(frozen=True, slots=True)
class QueueLogEntry:
    """One row of the queue log. ``wait``, ``talk`` in seconds; ``position`` 1-based."""

    time: float
    queue: str
    call: str
    event: QueueEvent
    agent: str | None = None
    position: int | None = None
    wait: float | None = None
    talk: float | None = None
    hung_up_by: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WatchdogFired:
    """Something was stuck past its bound and was freed (``what``: "ringing" or "on_call")."""

    time: float
    agent: str
    call: str
    what: str
    stuck_for: float


@dataclass(frozen=True, slots=True)
class Ignored:
    """An input that no longer applies (a race, e.g. an answer after the caller hung up);
    log it, nothing else to do."""

    event: object
    reason: str


Action = (
    RingAgent | CancelRing | DropAgentLeg | Bridge | Announce | PlayHoldMusic | ExitQueue
    | CallMoved | CallbackRequested | AgentStateChanged | AgentInUse | QueueLogEntry
    | WatchdogFired | Ignored
)
