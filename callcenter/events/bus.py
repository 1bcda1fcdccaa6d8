"""Typed events and the in-process bus every component publishes to.

An event is a frozen dataclass with a dotted ``type`` ("call.started", "queue.enter", ...) and
a wall-clock ``ts``. ``event.to_dict()`` is the JSON payload every sink sends: the fields plus
``"schema": SCHEMA`` and ``"type"``. Adding a field is compatible; renaming or removing one
bumps :data:`SCHEMA`.

Handlers are plain callables run synchronously, in subscription order, inside ``publish``; a
handler that raises is logged and the others still run. Sinks that do I/O (MQTT, the web
stream) only enqueue in their handler and do the work in their own task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import structlog

SCHEMA = 1

log = structlog.get_logger("events")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event: ``ts`` is unix time (seconds)."""

    type: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: ``schema``, ``type`` and the fields."""
        out: dict[str, Any] = {"schema": SCHEMA, "type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out


# ------------------------------------------------------------------------------------ calls


@dataclass(frozen=True, kw_only=True)
class CallStarted(Event):
    """A call reached us (after routing and codec checks)."""

    type: ClassVar[str] = "call.started"
    call_id: str
    caller: str
    called: str
    source: str  # trunk:<name> | user:<user> | queue:<name>
    direction: str  # inbound | outbound | internal
    line: str | None = None
    sip_call_id: str = ""  #: Call-ID of the leg that created the call
    codec: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallAnswered(Event):
    """The call was answered: by us (IVR, ``agent`` None) or by ``agent``."""

    type: ClassVar[str] = "call.answered"
    call_id: str
    agent: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallEnded(Event):
    """The last leg of the call ended."""

    type: ClassVar[str] = "call.ended"
    call_id: str
    cause: str
    side: str  # caller | callee | system
    #: when its last leg ended (the CDR's end); ``ts`` is when the record closed: later by
    #: the wait for a media worker's final figures, so the call's events stay in ts order
    end: float | None = None
    duration: float | None = None
    digits: str = ""
    sip_status: int | None = None  #: final SIP status of the call (None when never answered)
    rtp_lost_pct: float | None = None  #: the caller's RTP lost, % of expected (None: no RTP)
    rtp_jitter_ms: float | None = None  #: its interarrival jitter at the end (RFC 3550)
    hold_seconds: float = 0.0  #: time its parties spent on hold (re-INVITE sendonly/inactive)
    agent: str | None = None  #: the queue agent who took it (CDR ``agent``)
    queue: str | None = None  #: the ACD queue it was last queued in (CDR ``queue``)
    trunk: str | None = None  #: the trunk that carried the call (after any failover)
    trunk_call_id: str | None = None  #: the Call-ID of the call's leg on that trunk
    #: the Call-ID of the leg that created the call, when a failover replaced that leg
    sip_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallDisposition(Event):
    """A queue agent coded an inbound call: ``code`` and its ``name`` (the queue's
    ``dispositions``), after the call; the store sink writes it to the CDR."""

    type: ClassVar[str] = "call.disposition"
    call_id: str
    agent: str
    queue: str
    code: str
    name: str


@dataclass(frozen=True, kw_only=True)
class CallRecording(Event):
    """The call is being recorded to ``path``."""

    type: ClassVar[str] = "call.recording"
    call_id: str
    path: str


@dataclass(frozen=True, kw_only=True)
class CallHold(Event):
    """``party`` put the call on hold (``on``) or resumed it, by re-INVITE."""

    type: ClassVar[str] = "call.hold"
    call_id: str
    party: str
    on: bool


@dataclass(frozen=True, kw_only=True)
class CallTransferred(Event):
    """``transferee`` was sent to ``target`` (user:<u>, queue:<q>, line:<n>) by ``transferor``
    (None from the API) through ``by`` (refer, dtmf, api); the call keeps its id."""

    type: ClassVar[str] = "call.transferred"
    call_id: str
    transferee: str
    target: str
    transferor: str | None = None
    by: str = "refer"
    kind: str = "blind"  #: blind, or attended (the transferor talked to the target first)


@dataclass(frozen=True, kw_only=True)
class LegAdded(Event):
    """A leg joined a call: the caller's (inbound) or one we dialled (outbound)."""

    type: ClassVar[str] = "leg.added"
    call_id: str
    party: str
    direction: str


@dataclass(frozen=True, kw_only=True)
class LegEnded(Event):
    """A leg left its call (the call may go on: a user a transfer reached hung up)."""

    type: ClassVar[str] = "leg.ended"
    call_id: str
    party: str
    direction: str
    sip_status: int | None = None
    #: the user whose phone this leg was, when it talked on the call (``call.answered``
    #: named it): the end of that user's part of the call
    agent: str | None = None


@dataclass(frozen=True, kw_only=True)
class Dtmf(Event):
    """The caller pressed a key (RFC 4733, SIP INFO or in-band)."""

    type: ClassVar[str] = "call.dtmf"
    call_id: str
    digit: str
    digits: str = ""  #: every key of the call so far, this one last


@dataclass(frozen=True, kw_only=True)
class IvrStep(Event):
    """One IVR engine event: ``step`` is ivr_node, ivr_choice, ivr_end, ... (the
    ``call_events`` type), ``data`` its details (node, key, target, reason...)."""

    type: ClassVar[str] = "ivr.step"
    call_id: str
    step: str
    data: Mapping[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ ACD


@dataclass(frozen=True, kw_only=True)
class QueueEntered(Event):
    type: ClassVar[str] = "queue.enter"
    call_id: str
    queue: str
    position: int | None = None


@dataclass(frozen=True, kw_only=True)
class QueueConnected(Event):
    """An agent answered the queued call; ``wait`` seconds after it entered."""

    type: ClassVar[str] = "queue.connect"
    call_id: str
    queue: str
    agent: str | None
    wait: float | None = None


@dataclass(frozen=True, kw_only=True)
class QueueRingNoAnswer(Event):
    type: ClassVar[str] = "queue.ringnoanswer"
    call_id: str
    queue: str
    agent: str | None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class QueueLeft(Event):
    """The call is done with the queue: ``reason`` is the queue log verb (complete, transfer,
    abandon, timeout, exit_empty, callback)."""

    type: ClassVar[str] = "queue.leave"
    call_id: str
    queue: str
    reason: str
    agent: str | None = None
    wait: float | None = None
    talk: float | None = None
    hung_up_by: str | None = None
    position: int | None = None
    detail: str = ""  #: e.g. the transfer target, the exit reason, the overflow queue


@dataclass(frozen=True, kw_only=True)
class QueueMember(Event):
    """An agent's change in one queue: ``verb`` addmember (logged in to it), removemember,
    pause (``reason``: the pause reason's name) or unpause; a queue log row with call NONE."""

    type: ClassVar[str] = "queue.member"
    queue: str
    agent: str
    verb: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AcdWatchdog(Event):
    """The ACD freed ``agent``, stuck ``what`` (ringing, on_call) for ``stuck_for`` seconds."""

    type: ClassVar[str] = "queue.watchdog"
    call_id: str
    queue: str
    agent: str
    what: str
    stuck_for: float


@dataclass(frozen=True, kw_only=True)
class QueueStatus(Event):
    """A queue's live figures (the object of GET /api/queues); retained on MQTT."""

    type: ClassVar[str] = "queue.status"
    queue: str
    stats: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AgentStateChanged(Event):
    type: ClassVar[str] = "agent.state"
    agent: str
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AgentStatus(Event):
    """An agent's current state and figures (the object of GET /api/agents); retained."""

    type: ClassVar[str] = "agent.status"
    agent: str
    status: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AgentOffer(Event):
    """An agent's phone is about to ring for a customer: the screen pop. ``why``: ``kind``
    (queue, transfer, callback, campaign, preview) and what that kind knows (``callback_id``,
    ``campaign`` and the contact's ``fields``); ``queue`` "" when no queue rings. The customer
    card (None for an unknown caller) and their latest contacts, this call first (its IVR
    path, keys and collected digits)."""

    type: ClassVar[str] = "agent.offer"
    call_id: str  #: the customer's call ("" for a booked callback before it is dialled)
    agent: str
    queue: str
    caller: str  #: the customer's number
    customer: Mapping[str, Any] | None = None
    recent: Sequence[Mapping[str, Any]] = ()
    why: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CrmLooked(Event):
    """The CRM was asked about a caller: ``outcome`` ok, cached, not_found, error or timeout."""

    type: ClassVar[str] = "crm.lookup"
    call_id: str
    outcome: str
    seconds: float = 0.0


# ------------------------------------------------------------------------------------ other


@dataclass(frozen=True, kw_only=True)
class SupervisorStep(Event):
    """A supervisor joined, changed mode on, or left a call: ``step`` is supervisor_joined,
    supervisor_mode or supervisor_left (the ``call_events`` type)."""

    type: ClassVar[str] = "supervisor.step"
    call_id: str
    step: str
    session: str
    supervisor: str
    agent: str | None
    mode: str


@dataclass(frozen=True, kw_only=True)
class RegistrationChanged(Event):
    """A binding was added (``expires`` > 0) or removed/expired (``expires`` 0)."""

    type: ClassVar[str] = "registration"
    user: str
    contact: str
    registered: bool
    source: str = ""
    expires: int = 0
    user_agent: str | None = None
    expired: bool = False  #: removed by the registrar's timer, not by a REGISTER


@dataclass(frozen=True, kw_only=True)
class TrunkRegistration(Event):
    """Our registration at a carrier came up, was refreshed or failed (``state`` "failed",
    ``auth_failed`` when the carrier refused our credentials)."""

    type: ClassVar[str] = "trunk.registration"
    trunk: str
    state: str
    status: int | None = None
    reason: str = ""
    expires: int = 0
    auth_failed: bool = False


@dataclass(frozen=True, kw_only=True)
class CampaignChanged(Event):
    """A dialer campaign started, paused, progressed or finished."""

    type: ClassVar[str] = "campaign.changed"
    campaign: str
    state: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CallbackEvent(Event):
    """A callback request (the ``callbacks`` row ``callback_id``) and its ``state`` after this
    step: ``callback.requested``, ``callback.attempt`` (an agent took it, the customer is
    dialled), ``callback.result`` (the attempt's ``outcome``), ``callback.changed`` (moved or
    cancelled through the API)."""

    type: ClassVar[str] = "callback"
    callback_id: int
    queue: str
    number: str
    state: str
    attempts: int = 0
    agent: str = ""
    outcome: str = ""
    next_at: float | None = None


class CallbackRequested(CallbackEvent):
    type: ClassVar[str] = "callback.requested"


class CallbackAttempt(CallbackEvent):
    type: ClassVar[str] = "callback.attempt"


class CallbackResult(CallbackEvent):
    type: ClassVar[str] = "callback.result"


class CallbackChanged(CallbackEvent):
    type: ClassVar[str] = "callback.changed"


@dataclass(frozen=True, kw_only=True)
class AuditChanged(Event):
    """An administrator changed something: ``who`` (the API token's name, or its role; for
    a reload also "SIGHUP" or "file change"), ``action`` ("member.added", "member.removed",
    "config.reloaded"), ``object`` ("queue/support/member/1001", "config") and ``detail``;
    the store sink writes it to the ``audit`` table."""

    type: ClassVar[str] = "audit.changed"
    who: str
    action: str
    object: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def _event_classes(base: type[Event] = Event) -> list[type[Event]]:
    """Every class below ``base``, the shared bases (``CallbackEvent``) among them."""
    return [c for sub in base.__subclasses__() for c in (sub, *_event_classes(sub))]


#: every event class by its ``type``: those nothing derives from (not the shared bases)
EVENT_TYPES: dict[str, type[Event]] = {c.type: c for c in _event_classes() if not c.__subclasses__()}

Handler = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out of events to subscribed handlers."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self.published = 0
        self.handler_errors = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for every event from now on; returns an unsubscribe."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every handler; a failing handler never stops the publisher."""
        self.published += 1
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                self.handler_errors += 1
                log.exception("event_handler_failed", event_type=event.type,
                              handler=getattr(handler, "__qualname__", repr(handler)))
