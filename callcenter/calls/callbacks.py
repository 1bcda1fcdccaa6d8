"""Callback requests worked by the server (the rules are ``acd.callbacks``; this is the I/O).

Every request is a ``callbacks`` row first (the IVR callback node, a queue's callback key, the
API). Each second the due ones (time come, the queue's ``callback.schedule`` open) enter their
ACD queue as calls with their original entry time, so an agent gets each where the caller
would have been answered. When an agent answers, the agent hears the whisper, then the
customer is dialled (a registered user's phone, else through the queue's callback trunk); the
attempt is written before the INVITE leaves and its outcome after, with the retry the queue's
config asks for. A restart finds the rows again; an attempt cut short counts for nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from acd.callbacks import FINAL, Outcome, Pending, State, after_attempt, due, sip_outcome
from callcenter.calls import flows
from callcenter.calls.call import Call, Leg, LegState
from callcenter.events import bus as events

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.services import CallServices
    from callcenter.config import Config
    from callcenter.store.callbacks import CallbackStore
    from ivr.schedule import Schedule

log = structlog.get_logger("callbacks")
TICK = 1.0


class CallbackError(ValueError):
    """A request that cannot be changed (unknown, finished, being dialled)."""


class CallbackWorker:
    """See the module docstring; ``schedule(name)`` finds a dialplan schedule."""

    def __init__(self, services: CallServices, *, cfg: Config, store: CallbackStore,
                 queues: QueueRunner, schedule: Callable[[str], Schedule | None]) -> None:
        self.services = services
        self.cfg = cfg
        self.store = store
        self.queues = queues
        self.schedule = schedule
        self._queued: set[int] = set()  # in the ACD now, or being dialled
        self._task: asyncio.Task[None] | None = None
        queues.callbacks = self
        store.on_book = lambda id: self._publish(events.CallbackRequested, store.get(id))

    def wall(self) -> float:
        """Unix time on the server's clock (``--clock`` shifts it as it shifts schedules)."""
        return self.services.clock.now().timestamp()

    async def start(self) -> None:
        wall = self.wall()
        for row in self.store.pending():
            if row["status"] == State.DIALING:  # the server stopped during an attempt
                for attempt in self.store.open_attempts(row["id"]):
                    self.store.end_attempt(attempt, Outcome.INTERRUPTED, wall)
                self._settle(row, Outcome.INTERRUPTED, wall)
        self._task = asyncio.ensure_future(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("callback_tick_failed")
            await asyncio.sleep(TICK)

    def is_open(self, queue: str) -> bool:
        q = self.cfg.queue(queue)
        name = q.callback.schedule if q is not None else None
        if name is None:
            return True
        schedule = self.schedule(name)
        if schedule is None:
            log.warning("callback_schedule_unknown", queue=queue, schedule=name)
            return True
        return schedule.is_open(self.services.clock.now())

    def tick(self) -> None:
        """Queue the due requests; take waiting ones out of a queue that closed."""
        for id in [i for i in self._queued if (r := self.store.get(i)) is not None
                   and not self.is_open(r["queue"])]:
            if self.queues.drop_callback(id):
                self._queued.discard(id)
        wall, now = self.wall(), self.services.now()
        rows = {r["id"]: r for r in self.store.pending() if r["status"] == State.OPEN}
        pending = [Pending(i, r["queue"], r["entered"] or 0.0, r["next_at"] or 0.0)
                   for i, r in rows.items()]
        for p in due(pending, wall, self.is_open, self._queued):
            row = rows[p.id]
            if self.queues.queue_callback(p.id, p.queue, row["number"], now - (wall - p.entered),
                                          language=row["language"] or "pl"):
                self._queued.add(p.id)
                log.info("callback_queued", id=p.id, queue=p.queue, number=row["number"])
            else:
                self.store.update(p.id, status=State.FAILED, outcome="unknown_queue",
                                  updated=wall)

    # ------------------------------------------------------------------ the ACD's side

    def requested(self, call: str, queue: str, number: str, entered: float,
                  language: str) -> int:
        """A queued caller pressed the callback key: store it (the ACD keeps it queued)."""
        wall = self.wall()
        id = self.book(queue, number, wall - (self.services.now() - entered), caller=number,
                       call_id=self.queues.call_id_of(call), language=language)
        self._queued.add(id)
        return id

    def book(self, queue: str, number: str, entered: float, *, at: float | None = None,
             caller: str = "", call_id: str = "", language: str = "pl",
             booked_by: str = "") -> int:
        return self.store.book(queue=queue, number=number, entered=entered, at=at, caller=caller,
                               call_id=call_id, language=language, booked_by=booked_by,
                               requested_at=self.services.clock.now().isoformat())

    async def dial(self, callback_id: int, agent_leg: Leg) -> Leg | None:
        """The agent took the request: dial the customer, write the attempt and its outcome."""
        row = self.store.get(callback_id)
        if row is None:
            return None
        svc, queue = self.services, self.cfg.queue(row["queue"])
        settings = queue.callback if queue is not None else None
        number, agent = row["number"], agent_leg.party
        attempt = self.store.start_attempt(callback_id, agent, self.wall())
        row = self.store.get(callback_id) or row
        self._publish(events.CallbackAttempt, row)
        target = self._target(number, settings.trunk if settings else None)
        leg: Leg | None = None
        if target is not None:
            call = Call(caller=agent, called=number, source=f"callback:{row['queue']}",
                        direction="outbound", queue=row["queue"], agent=agent)
            log.info("callback_dial", id=callback_id, number=number, agent=agent)
            self._record(call)
            leg = await svc.b2bua.dial_unless(
                agent_leg.ended, call, **target,
                from_user=(settings.caller_id if settings else "") or "callcenter",
                timeout=settings.ring_timeout if settings else 40.0)
            if leg is not None and leg.state is LegState.ANSWERED:
                svc.answered(call, None)
        status = int(leg.sip_status or 0) if leg is not None else 0
        outcome = (Outcome.INTERRUPTED if leg is None and target is not None
                   else sip_outcome(status, leg is not None and leg.state is LegState.ANSWERED))
        wall = self.wall()
        self.store.end_attempt(attempt, outcome, wall, status)
        self._settle(row, outcome, wall)
        self._queued.discard(callback_id)
        return leg

    def released(self, callback_id: int) -> None:
        """The agent hung up before the customer was dialled (in the whisper): no attempt
        was made, so the request is queued again at the next tick, keeping its place."""
        self._queued.discard(callback_id)
        log.info("callback_released", id=callback_id)

    def _record(self, call: Call) -> None:
        """The customer leg's CDR, started before the INVITE leaves (the dialer's way)."""
        call.started_at = time.time()
        call.recorded = True
        self.services.publish(events.CallStarted(
            ts=call.started_at, call_id=call.id, caller=call.caller, called=call.called,
            source=call.source, direction="outbound"))

    def _target(self, number: str, trunk_name: str | None) -> dict[str, Any] | None:
        """A registered user's phone, else the trunk (the named one, or the first)."""
        bindings = self.services.registrar.contacts(number, self.services.now(),
                                                    reachable_only=True)
        if bindings:
            b = bindings[0]
            return {"target_uri": b.contact, "dest": b.source, "transport": b.transport,
                    "party": number}
        trunk = self.cfg.trunk(trunk_name) if trunk_name else next(iter(self.cfg.trunks), None)
        if trunk is None:
            log.warning("callback_no_trunk", number=number)
            return None
        return flows.trunk_target(trunk, number, self.cfg.trunks)

    def _settle(self, row: dict[str, Any], outcome: Outcome, wall: float) -> None:
        q = self.cfg.queue(row["queue"])
        retries, delay = (q.callback.retries, q.callback.retry_delay) if q else (0, 0.0)
        nxt = after_attempt(outcome, int(row["attempts"] or 0), retries=retries,
                            retry_delay=delay, now=wall)
        fields = {"status": nxt.state, "attempts": nxt.attempts, "outcome": outcome,
                  "updated": wall}
        if nxt.next_at is not None:
            fields["next_at"] = nxt.next_at
        self.store.update(row["id"], **fields)
        log.info("callback_result", id=row["id"], outcome=outcome, state=nxt.state,
                 attempts=nxt.attempts, next_at=nxt.next_at)
        self._publish(events.CallbackResult, self.store.get(row["id"]))

    # ------------------------------------------------------------------ the API's side

    def reschedule(self, id: int, at: float) -> dict[str, Any]:
        """Move an open request to ``at`` (out of its queue until then)."""
        self._changeable(id)
        self.queues.drop_callback(id)
        self._queued.discard(id)
        self.store.update(id, status=State.OPEN, next_at=at, updated=self.wall())
        return self._changed(id)

    def cancel(self, id: int) -> dict[str, Any]:
        self._changeable(id)
        self.queues.drop_callback(id)
        self._queued.discard(id)
        self.store.update(id, status=State.CANCELLED, updated=self.wall())
        return self._changed(id)

    def _changeable(self, id: int) -> None:
        row = self.store.get(id)
        if row is None:
            raise KeyError(id)
        if row["status"] in FINAL:
            raise CallbackError(f"callback {id} is {row['status']}")
        if row["status"] == State.DIALING or (id in self._queued and not self._waiting(id)):
            raise CallbackError(f"callback {id} is being dialled")

    def pending(self) -> dict[str, int]:
        return self.store.counts()

    def _waiting(self, id: int) -> bool:
        return self.queues.callback_waiting(id)

    def _changed(self, id: int) -> dict[str, Any]:
        row = self.store.get(id)
        assert row is not None
        self._publish(events.CallbackChanged, row)
        return row

    def _publish(self, kind: type[events.CallbackEvent], row: dict[str, Any] | None) -> None:
        if row is not None:
            self.services.publish(kind(
                callback_id=row["id"], queue=row["queue"], number=row["number"],
                state=row["status"], attempts=int(row["attempts"] or 0), agent=row["agent"] or "",
                outcome=row["outcome"] or "", next_at=row["next_at"]))
