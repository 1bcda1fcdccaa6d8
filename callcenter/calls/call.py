"""Calls and legs: a B2BUA joins a caller leg to the IVR, a queue or an agent leg.

A ``Leg`` is one SIP dialog with one media channel; a ``Call`` is what a user thinks of as
one call (the caller's leg plus the legs the server places for it) and owns the call record.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from callcenter.sip.dialog import Dialog
from callcenter.sip.events import TxKey
from callcenter.sip.message import Request, Response
from callcenter.sip.sdp import NegotiatedMedia, SessionDescription

if TYPE_CHECKING:
    from callcenter.sip.stack import ServerRequest

Address = tuple[str, int]


class Flag(asyncio.Event):
    """An ``asyncio.Event`` that also hands out plain futures: waiting for the first of
    several things (a leg's end, its ACK, a key) then needs no task per thing."""

    def __init__(self) -> None:
        super().__init__()
        self._futures: list[asyncio.Future[bool]] = []

    def waiter(self) -> asyncio.Future[bool]:
        """A future done when the flag is set (cancel it when no longer wanted)."""
        fut = asyncio.get_running_loop().create_future()
        if self.is_set():
            fut.set_result(True)
            return fut
        if len(self._futures) >= 16:  # a long-lived leg's many waits, most of them cancelled
            self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(fut)
        return fut

    def set(self) -> None:
        super().set()
        futures, self._futures = self._futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(True)


def fired(event: asyncio.Event) -> asyncio.Future[Any]:
    """A future done once ``event`` is set: a ``Flag``'s waiter, else a task that waits."""
    return event.waiter() if isinstance(event, Flag) else asyncio.ensure_future(event.wait())


class LegState(Enum):
    INCOMING = "incoming"  # INVITE received, not answered
    DIALING = "dialing"  # INVITE sent, no answer yet
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class HangupCause(StrEnum):
    NORMAL = "normal_clearing"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELLED = "cancelled"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    ACK_TIMEOUT = "ack_timeout"
    MEDIA_FAILED = "media_failed"  #: the media offer/answer failed (a bad SDP answer)
    MEDIA_FAILURE = "media_failure"  #: the media worker carrying the call died
    RTP_TIMEOUT = "rtp_timeout"
    FAILED = "failed"
    SHUTDOWN = "shutdown"


class _LegCall:
    """``Leg.call``: held strongly until both the leg and its call have ended, weakly after
    (``detach``), so a finished call (its legs in ``Call.legs``, each leg's call) is freed by
    reference counting instead of waiting for the cyclic garbage collector. Whatever keeps a
    leg past that and needs its call keeps the call (or its id) itself."""

    def __get__(self, leg: Leg | None, owner: type | None = None) -> Call:
        if leg is None:
            raise AttributeError("call")  # Leg.call: no class-level value (no default)
        call = leg._call or (leg._call_ref() if leg._call_ref else None)
        if call is None:
            raise ReferenceError("the call of an ended leg is gone")
        return call

    def __set__(self, leg: Leg, call: Call) -> None:
        leg._call_ref = weakref.ref(call)
        leg._call = call


@dataclass(eq=False)
class Leg:
    """One SIP dialog of a call, with its media channel."""

    _call: Call | None = field(default=None, init=False, repr=False)
    _call_ref: weakref.ref[Call] | None = field(default=None, init=False, repr=False)
    call: Call
    direction: str  # "inbound" (they called us) or "outbound" (we called them)
    peer: Address  # where in-dialog requests go (the source of their signalling)
    transport: str
    party: str  # who is on this leg: a user name or a number
    channel: Any = None  # media.engine.Channel
    dialog: Dialog | None = None
    state: LegState = LegState.INCOMING
    media: NegotiatedMedia | None = None
    local_sdp: SessionDescription | None = None
    invite: ServerRequest | None = None  # the pending inbound INVITE, until answered
    ended: Flag = field(default_factory=Flag)
    acked: Flag = field(default_factory=Flag)
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    sdp_version: int = 1
    local_tag: str = ""  # our tag in this leg's dialog (To for inbound, From for outbound)
    sip_status: int = 0  # final status of an outbound leg's INVITE (408 on timeout)
    outbound_invite: Request | None = None  # the INVITE we sent (for CANCEL)
    outbound_key: TxKey | None = None  # its client transaction
    outbound_future: asyncio.Future[Response] | None = None  # its final response
    #: set at the first 1xx to our INVITE: only then may it be CANCELled (RFC 3261 §9.1)
    provisional: Flag = field(default_factory=Flag)
    #: our re-INVITE on this leg awaits its final response (theirs meanwhile gets a 491)
    reinviting: bool = False
    #: our SDP offer went out in a 2xx (late offer, or a re-INVITE without SDP): the answer
    #: comes in the ACK (RFC 3264 §4, RFC 3261 §13.2.1)
    offer_in_2xx: bool = False
    #: transferred away (RFC 3515): its BYE ends this leg only, never the call
    released: bool = False
    #: when this party put the call on hold (its re-INVITE sendonly/inactive), else None
    held_since: float | None = None
    trunk: str = ""  #: the trunk this leg's call goes through (counts to its max_channels)
    #: the session refresh (re-INVITE) due next on this answered leg
    refresh_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def codec(self) -> str:
        return self.media.codec if self.media else "PCMU"

    def detach(self) -> None:
        """The leg and its call have ended: from now on the leg refers to the call weakly."""
        self._call = None


Leg.call = _LegCall()  # type: ignore[assignment]  # the field, kept as _LegCall says


@dataclass(eq=False)
class Call:
    """A call as the user sees it, with its call record fields."""

    caller: str
    called: str
    source: str  # "trunk:pstn" or "user:1001"
    direction: str = "inbound"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    legs: list[Leg] = field(default_factory=list)
    digits: str = ""
    line: str | None = None
    hangup_cause: HangupCause | None = None
    hangup_side: str | None = None
    #: True while a flow (IVR, queue) owns the caller: a BYE from a leg the server placed
    #: (an agent) then ends only that leg and the flow goes on (e.g. to the survey)
    flow_owned: bool = False
    recorded: bool = False  # a CDR row exists for this call
    started_at: float | None = None  # wall-clock start (CDR)
    answered_at: float | None = None  # wall-clock answer (CDR)
    recording: str | None = None  # path of the call's recording, if any
    #: the ACD queue the caller was last queued in (set by the QueueRunner), else None
    queue: str | None = None
    language: str | None = None  #: that queue's prompts' language (its hold music's too)
    agent: str | None = None  #: the queue agent who took it (set by the QueueRunner), else None
    #: transfers so far; each sets the ``handover`` it replaces, so the flow that bridged the
    #: call lets go of its legs (no unbridge, no hang-up): the transfer owns them now
    transfers: int = 0
    transferred_to: str = ""  #: the last transfer's target ("user:1002", "queue:sales")
    attended: bool = False  #: the last transfer was attended (the target talked to first)
    handover: Flag = field(default_factory=Flag)
    hold_seconds: float = 0.0  #: time its parties spent on hold, holds ended so far
    done: Flag = field(default_factory=Flag)

    @property
    def caller_leg(self) -> Leg | None:
        return self.legs[0] if self.legs else None

    @property
    def customer(self) -> str:
        """The customer's number: who called us, or whom we called (a campaign or callback)."""
        return self.called if self.direction == "outbound" else self.caller

    def hand_over(self, target: str, *, attended: bool = False) -> None:
        """A transfer to ``target`` takes the call: wake whoever waits on ``handover``."""
        old, self.handover = self.handover, Flag()
        self.transfers += 1
        self.transferred_to, self.attended = target, attended
        old.set()

    def held(self, now: float) -> float:
        """Seconds on hold so far, the holds still on counted up to ``now``."""
        return self.hold_seconds + sum(now - x.held_since for x in self.legs
                                       if x.held_since is not None)

    def other(self, leg: Leg) -> Leg | None:
        return next((x for x in self.legs if x is not leg and x.state is not LegState.ENDED), None)
