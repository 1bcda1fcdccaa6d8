"""The SQLite store as a subscriber of the bus.

:class:`StoreSink` turns each typed event into the write the call path used to make itself:
CDRs (``calls``), a call's timeline (``call_events``), the ``queue_log``, ``agent_states``,
``registrations`` and the ``audit`` trail. The bus runs handlers synchronously inside ``publish``, so a row is written
at the moment the event happens (a CDR is inserted when the call starts, as before). A failed
write raises into the bus, which logs it; the publisher never sees it.

Not here: the dialer's attempt rows (written before the INVITE leaves, a crash-safety
guarantee, so they stay direct) and the campaign, contact and supervisor session tables, which
belong to their own components.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, cast

from callcenter.events.bus import (
    AcdWatchdog,
    AgentStateChanged,
    AuditChanged,
    CallAnswered,
    CallbackAttempt,
    CallbackEvent,
    CallbackResult,
    CallDisposition,
    CallEnded,
    CallHold,
    CallRecording,
    CallStarted,
    CallTransferred,
    Dtmf,
    Event,
    IvrStep,
    LegEnded,
    QueueConnected,
    QueueEntered,
    QueueLeft,
    QueueMember,
    QueueRingNoAnswer,
    RegistrationChanged,
    SupervisorStep,
)
from callcenter.store.db import Store
from callcenter.store.records import CallRecord, Direction


class StoreSink:
    """``bus.subscribe(StoreSink(store))``: events in, rows out."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writers: dict[type[Event], Callable[[Any], None]] = {
            CallStarted: self._call_started,
            CallAnswered: self._call_answered,
            CallDisposition: self._call_disposition,
            CallEnded: self._call_ended,
            CallRecording: self._call_recording,
            CallHold: self._call_hold,
            CallTransferred: self._call_transferred,
            LegEnded: self._leg_ended,
            Dtmf: self._dtmf,
            IvrStep: self._ivr_step,
            SupervisorStep: self._supervisor_step,
            QueueEntered: self._queue_entered,
            QueueConnected: self._queue_connected,
            QueueRingNoAnswer: self._queue_ring_no_answer,
            QueueLeft: self._queue_left,
            QueueMember: self._queue_member,
            AcdWatchdog: self._watchdog,
            AgentStateChanged: self._agent_state,
            RegistrationChanged: self._registration,
            CallbackAttempt: self._callback,
            CallbackResult: self._callback,
            AuditChanged: self._audit,
        }

    def __call__(self, event: Event) -> None:
        writer = self._writers.get(type(event))
        if writer is not None:
            writer(event)

    # -- calls -------------------------------------------------------------------------------

    def _call_started(self, e: CallStarted) -> None:
        self.store.start_call(CallRecord(
            id=e.call_id, sip_call_id=e.sip_call_id, direction=cast(Direction, e.direction),
            caller=e.caller, called=e.called, source=e.source, start=e.ts, line=e.line,
            codec=e.codec,
        ))

    def _call_answered(self, e: CallAnswered) -> None:
        if e.agent is None:
            self.store.update_call(e.call_id, answer=e.ts)
        else:
            self.store.add_call_event(e.call_id, e.ts, "connected", {"agent": e.agent})

    def _call_ended(self, e: CallEnded) -> None:
        quality = {k: v for k, v in (("rtp_lost_pct", e.rtp_lost_pct),
                                     ("rtp_jitter_ms", e.rtp_jitter_ms), ("trunk", e.trunk),
                                     ("trunk_call_id", e.trunk_call_id),
                                     ("sip_call_id", e.sip_call_id)) if v is not None}
        self.store.finish_call(e.call_id, end=e.ts if e.end is None else e.end, hangup_cause=e.cause, hangup_side=e.side,
                               sip_status=e.sip_status, digits=e.digits,
                               hold_seconds=e.hold_seconds, agent=e.agent, queue=e.queue,
                               **quality)

    def _call_disposition(self, e: CallDisposition) -> None:
        with contextlib.suppress(KeyError):  # a call without a CDR has nowhere to note it
            self.store.update_call(e.call_id, disposition=e.name)
        self.store.add_call_event(e.call_id, e.ts, "disposition", {
            "agent": e.agent, "queue": e.queue, "code": e.code, "name": e.name})

    def _call_recording(self, e: CallRecording) -> None:
        with contextlib.suppress(KeyError):  # a call without a CDR has nowhere to note it
            self.store.update_call(e.call_id, recording=e.path)

    def _call_hold(self, e: CallHold) -> None:
        self.store.add_call_event(e.call_id, e.ts, "hold", {"party": e.party, "on": e.on})

    def _call_transferred(self, e: CallTransferred) -> None:
        self.store.add_call_event(e.call_id, e.ts, "transferred", {
            "transferee": e.transferee, "target": e.target, "transferor": e.transferor,
            "by": e.by, "kind": e.kind,
        })

    def _leg_ended(self, e: LegEnded) -> None:
        """``left``: a user who talked on the call left it (the call may go on)."""
        if e.agent is not None:
            self.store.add_call_event(e.call_id, e.ts, "left", {"agent": e.agent})

    def _dtmf(self, e: Dtmf) -> None:
        self.store.add_call_event(e.call_id, e.ts, "dtmf", {"digit": e.digit})
        if e.digits:
            self.store.update_call(e.call_id, digits=e.digits)

    def _ivr_step(self, e: IvrStep) -> None:
        self.store.add_call_event(e.call_id, e.ts, e.step, dict(e.data))

    def _supervisor_step(self, e: SupervisorStep) -> None:
        self.store.add_call_event(e.call_id, e.ts, e.step, {
            "session": e.session, "supervisor": e.supervisor, "agent": e.agent, "mode": e.mode,
        })

    # -- ACD ---------------------------------------------------------------------------------

    def _queue_entered(self, e: QueueEntered) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=e.call_id, event="enter",
                             position=e.position)

    def _queue_connected(self, e: QueueConnected) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=e.call_id, event="connect",
                             agent=e.agent, wait=e.wait)

    def _queue_ring_no_answer(self, e: QueueRingNoAnswer) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=e.call_id, event="ringnoanswer",
                             agent=e.agent, detail=e.detail)

    def _queue_left(self, e: QueueLeft) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=e.call_id, event=e.reason,
                             agent=e.agent, position=e.position, wait=e.wait, talk=e.talk,
                             hung_up_by=e.hung_up_by, detail=e.detail)

    def _queue_member(self, e: QueueMember) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id="NONE", event=e.verb,
                             agent=e.agent, detail=e.reason)

    def _callback(self, e: CallbackEvent) -> None:
        """``callback_attempt`` / ``callback_<outcome>`` in the queue log, per attempt."""
        verb = "callback_attempt" if isinstance(e, CallbackAttempt) else f"callback_{e.outcome}"
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=f"callback-{e.callback_id}",
                             event=verb, agent=e.agent or None, detail=e.state)

    def _audit(self, e: AuditChanged) -> None:
        self.store.log_audit(ts=e.ts, who=e.who, action=e.action, object=e.object,
                             detail=dict(e.detail))

    def _watchdog(self, e: AcdWatchdog) -> None:
        self.store.log_queue(ts=e.ts, queue=e.queue, call_id=e.call_id, event="watchdog",
                             agent=e.agent, detail=f"{e.what} {e.stuck_for:.1f}s")

    def _agent_state(self, e: AgentStateChanged) -> None:
        self.store.log_agent_state(ts=e.ts, agent=e.agent, old=e.old, new=e.new,
                                   reason=e.reason)

    # -- registrations -----------------------------------------------------------------------

    def _registration(self, e: RegistrationChanged) -> None:
        if e.expired:  # the table logs REGISTER requests; an expiry is not one
            return
        self.store.log_registration(ts=e.ts, user=e.user, contact=e.contact, source=e.source,
                                    expires=e.expires if e.registered else 0,
                                    user_agent=e.user_agent)
