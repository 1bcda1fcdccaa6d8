"""Preview mode: the agent sees the contact first and starts the call.

:class:`PreviewBook` is the pure reservation state machine, per campaign and contact::

    (free) --reserve--> preview --dial--> dialing --done--> (free)
                           |  \\--skip / preview_seconds over--> (free)

A reservation lives in memory only (the contact stays ``new`` / ``retry_at`` in the
database), so a restart simply frees it. :class:`PreviewDesk` is the live side used by the
API: it picks the next eligible contact (window, DNC, retry time), and on ``dial`` writes the
attempt before any INVITE, rings the agent's registered phone, then, once the agent answers
(hearing hold music), dials the contact through the trunk and bridges the two. The runner
calls an agent's own due callbacks the same way (:meth:`PreviewDesk.callback`). While the
agent's phone is on such a call the ACD counts it as in use, so queue calls do not ring it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from callcenter.calls import flows
from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.dialer.compliance import failed_outcome
from callcenter.dialer.flight import Flight, Live
from callcenter.media.g711 import PCMA, PCMU
from callcenter.media.prompts import PromptError

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.services import CallServices
    from callcenter.dialer.campaigns import CampaignStore

log = structlog.get_logger("dialer.preview")

AGENT_RING = 30.0  #: seconds the agent's own phone rings before the attempt fails


class PreviewError(Exception):
    """A preview request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Reservation:
    """A contact held for one agent."""

    campaign: str
    contact_id: int
    agent: str
    until: float  #: wall time the hold ends (while ``state`` is ``preview``)
    contact: dict[str, Any]
    state: str = "preview"  #: preview | dialing
    attempt: int | None = None


class PreviewBook:
    """Reservations of contacts for agents (pure: every method takes the time)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], Reservation] = {}

    def expire(self, now: float) -> list[Reservation]:
        """Free the ``preview`` holds whose time is over; returns them."""
        gone = [r for r in self._held.values() if r.state == "preview" and r.until <= now]
        for r in gone:
            del self._held[(r.campaign, r.contact_id)]
        return gone

    def agents(self) -> set[str]:
        """Agents holding a contact (previewed or being dialled) in any campaign."""
        return {r.agent for r in self._held.values()}

    def held_ids(self, campaign: str) -> set[int]:
        """Contacts of ``campaign`` held (previewed or being dialled)."""
        return {cid for (name, cid) in self._held if name == campaign}

    def of_agent(self, campaign: str, agent: str, now: float) -> Reservation | None:
        """The agent's current ``preview`` hold in ``campaign``."""
        self.expire(now)
        return next((r for r in self._held.values() if r.campaign == campaign
                     and r.agent == agent and r.state == "preview"), None)

    def get(self, campaign: str, contact_id: int, now: float) -> Reservation | None:
        self.expire(now)
        return self._held.get((campaign, contact_id))

    def reserve(self, campaign: str, agent: str, contact: dict[str, Any], now: float,
                seconds: float) -> Reservation:
        """Hold ``contact`` for ``agent`` for ``seconds``; one hold per agent and contact."""
        self.expire(now)
        key = (campaign, int(contact["id"]))
        if key in self._held:
            raise PreviewError(409, f"contact {contact['id']} is already reserved")
        if self.of_agent(campaign, agent, now) is not None:
            raise PreviewError(409, f"agent {agent} already previews a contact")
        r = Reservation(campaign, key[1], agent, now + seconds, contact)
        self._held[key] = r
        return r

    def hold(self, campaign: str, agent: str, contact: dict[str, Any], now: float) -> Reservation:
        """Hold ``contact`` for ``agent`` straight in ``dialing`` (a callback for its owner)."""
        key = (campaign, int(contact["id"]))
        if key in self._held:
            raise PreviewError(409, f"contact {contact['id']} is already reserved")
        r = Reservation(campaign, key[1], agent, now, contact, state="dialing")
        self._held[key] = r
        return r

    def take(self, campaign: str, contact_id: int, agent: str | None, now: float) -> Reservation:
        """``preview -> dialing`` (by its own agent when ``agent`` is given)."""
        r = self.get(campaign, contact_id, now)
        if r is None:
            raise PreviewError(404, f"contact {contact_id} is not reserved (or its time is over)")
        if agent is not None and agent != r.agent:
            raise PreviewError(409, f"contact {contact_id} is reserved for agent {r.agent}")
        if r.state != "preview":
            raise PreviewError(409, f"contact {contact_id} is already being dialled")
        r.state = "dialing"
        return r

    def release(self, campaign: str, contact_id: int, now: float, *,
                agent: str | None = None) -> Reservation:
        """Skip: free a ``preview`` hold."""
        r = self.get(campaign, contact_id, now)
        if r is None:
            raise PreviewError(404, f"contact {contact_id} is not reserved")
        if agent is not None and agent != r.agent:
            raise PreviewError(409, f"contact {contact_id} is reserved for agent {r.agent}")
        if r.state != "preview":
            raise PreviewError(409, f"contact {contact_id} is being dialled")
        del self._held[(campaign, contact_id)]
        return r

    def done(self, campaign: str, contact_id: int) -> None:
        """The dial of a held contact ended."""
        self._held.pop((campaign, contact_id), None)


def view(r: Reservation, now: float) -> dict[str, Any]:
    """A reservation as the API shows it: the contact with its fields."""
    c = r.contact
    return {"id": r.contact_id, "campaign": r.campaign, "number": c["number"],
            "name": c.get("name", ""), "fields": json.loads(c.get("fields") or "{}"),
            "attempts": c.get("attempts", 0), "state": r.state, "agent": r.agent,
            "reserved_seconds": max(0.0, round(r.until - now, 1)), "attempt": r.attempt}


class Dialer(Protocol):
    """What the desk uses of the ``CampaignRunner`` that owns it."""

    services: CallServices
    queues: QueueRunner
    store: CampaignStore
    live: dict[str, Live]
    calls: dict[str, tuple[Live, Call]]  #: Call.id -> campaign calls going on
    dialling: bool  #: False while the server drains

    def may_call(self, live: Live, contact: dict[str, Any], utc: Any) -> bool: ...
    def publish(self, name: str, state: str, data: dict[str, Any]) -> None: ...
    def spawn(self, coro: Any) -> asyncio.Task[Any]: ...
    async def dial_contact(self, live: Live, flight: Flight, call: Call) -> asyncio.Task[Leg]: ...
    def close_attempt(self, live: Live, flight: Flight, call: Call, outcome: str,
                      extra: dict[str, Any], **log_fields: Any) -> None: ...


class PreviewDesk:
    """The live preview mode of a ``CampaignRunner`` (see the module docstring)."""

    def __init__(self, runner: Dialer) -> None:
        self.runner = runner
        self.book = PreviewBook()

    def _campaign(self, name: str) -> Live:
        live = self.runner.live.get(name)
        if live is None:
            raise PreviewError(404, f"no campaign {name!r}")
        if live.cfg.mode != "preview":
            raise PreviewError(409, f"campaign {name!r} is not in preview mode")
        return live

    def reserve(self, name: str, agent: str) -> dict[str, Any]:
        """The agent's next contact, held ``preview_seconds`` (the same one if already held)."""
        live = self._campaign(name)
        runner, c, wall = self.runner, live.cfg, time.time()
        if runner.store.state(name) != "running":
            raise PreviewError(409, f"campaign {name!r} is paused")
        held = self.book.of_agent(name, agent, wall)
        if held is not None:
            return view(held, wall)
        taken = self.book.held_ids(name)
        utc = runner.services.clock.now()
        for contact in runner.store.due(name, wall, len(taken) + 200):
            if contact["id"] in taken:
                continue
            if not runner.may_call(live, contact, utc):
                continue
            r = self.book.reserve(name, agent, contact, wall, c.preview_seconds)
            log.info("preview_reserved", campaign=name, agent=agent, contact=r.contact_id)
            runner.publish(name, "preview", {"agent": agent, "contact": r.contact_id})
            return view(r, wall)
        raise PreviewError(404, "no contact to preview now")

    def skip(self, name: str, contact_id: int, agent: str | None = None) -> dict[str, Any]:
        """Release the hold; the contact is eligible again at once."""
        self._campaign(name)
        r = self.book.release(name, contact_id, time.time(), agent=agent)
        log.info("preview_skipped", campaign=name, agent=r.agent, contact=contact_id)
        out = view(r, time.time())
        out["state"] = "released"
        return out

    def dial(self, name: str, contact_id: int, agent: str | None = None) -> dict[str, Any]:
        """Write the attempt and start the call (agent's phone first, then the contact)."""
        live = self._campaign(name)
        if not self.runner.dialling:
            raise PreviewError(503, "the server is draining: it places no new calls")
        runner, svc, wall = self.runner, self.runner.services, time.time()
        r = self.book.get(name, contact_id, wall)
        if r is not None and not svc.registrar.contacts(r.agent, svc.now(), reachable_only=True):
            raise PreviewError(409, f"agent {r.agent} has no registered phone")
        r = self.book.take(name, contact_id, agent, wall)
        self._start(live, r, runner.store.contact(contact_id) or r.contact, wall)
        return view(r, wall)

    def callback(self, live: Live, contact: dict[str, Any], agent: str) -> int:
        """Call an owned callback for its (free) agent: the agent's phone first, as ``dial``.
        Returns the attempt id."""
        wall = time.time()
        r = self.book.hold(live.cfg.name, agent, contact, wall)
        flight = self._start(live, r, contact, wall, callback=True)
        self.runner.publish(live.cfg.name, "callback_dialing", {
            "attempt": flight.attempt, "contact": contact["id"], "number": contact["number"],
            "agent": agent})
        return flight.attempt

    def _start(self, live: Live, r: Reservation, contact: dict[str, Any], wall: float, *,
               callback: bool = False) -> Flight:
        """Write the attempt (before any INVITE), mark the agent's phone in use for the ACD,
        start the call task; returns the flight."""
        runner = self.runner
        try:
            attempt = runner.store.begin_attempt(contact, wall)
        except ValueError as exc:
            self.book.done(r.campaign, r.contact_id)
            raise PreviewError(409, str(exc)) from None
        r.attempt = attempt
        flight = Flight(attempt=attempt, contact=contact, started=runner.services.now(),
                        agent=r.agent, callback=callback)
        live.flights[attempt] = flight
        live.dials += 1
        runner.queues.device_in_use(r.agent, True)  # until _call ends: no queue call rings it
        runner.spawn(self._call(live, flight, r))
        return flight

    async def _call(self, live: Live, flight: Flight, r: Reservation) -> None:
        runner, c = self.runner, live.cfg
        number = flight.contact["number"]
        call = Call(caller=c.caller_id, called=number, source=f"campaign:{c.name}",
                    direction="outbound")
        runner.calls[call.id] = (live, call)
        outcome, extra = "failed", dict[str, Any]()
        try:
            outcome = await self._legs(live, flight, call, extra)
        except asyncio.CancelledError:
            live.flights.pop(flight.attempt, None)
            self.book.done(c.name, r.contact_id)
            raise  # shutting down: recovered as interrupted at the next start
        except Exception:
            log.exception("preview_call_failed", campaign=c.name, number=number)
        finally:
            runner.calls.pop(call.id, None)
            runner.queues.device_in_use(r.agent, False)
            if any(x.state is not LegState.ENDED for x in call.legs):
                with contextlib.suppress(Exception):
                    await runner.services.b2bua.hangup_call(call, HangupCause.NORMAL, "system")
        self.book.done(c.name, r.contact_id)
        runner.close_attempt(live, flight, call, outcome, extra, preview=not flight.callback,
                             callback=flight.callback)

    async def _legs(self, live: Live, flight: Flight, call: Call, extra: dict[str, Any]) -> str:
        """Ring the agent, then the contact; bridge them. Returns the attempt's outcome."""
        runner, svc, c = self.runner, self.runner.services, live.cfg
        agent, number = flight.agent, flight.contact["number"]
        assert agent is not None  # a preview flight is reserved for its agent
        bindings = svc.registrar.contacts(agent, svc.now(), reachable_only=True)
        if not bindings:
            log.warning("preview_agent_unreachable", campaign=c.name, agent=agent)
            return "failed"
        contact = flight.contact
        name, info = flows.screen_pop(svc.offer, call, agent, "callback" if flight.callback
                                else "preview", campaign=c.name, contact=contact.get("name", ""),
                                fields=json.loads(contact.get("fields") or "{}"))
        phone = await svc.b2bua.dial_fork(call, bindings, party=agent, from_user=number,
                                          from_display=name or c.name, info=info,
                                          timeout=AGENT_RING)
        if phone.state is not LegState.ANSWERED or phone.channel is None:
            log.info("preview_agent_no_answer", campaign=c.name, agent=agent,
                     status=getattr(phone, "sip_status", 0))
            return "failed"
        with contextlib.suppress(PromptError):
            phone.channel.play(svc.prompts.get("hold_music", None,
                                               PCMA if phone.codec == "PCMA" else PCMU),
                               loop=True, replace=True)
        flight.started = svc.now()
        dial = await runner.dial_contact(live, flight, call)
        agent_gone = fired(phone.ended)
        await asyncio.wait({dial, agent_gone}, return_when=asyncio.FIRST_COMPLETED)
        if not dial.done():  # the agent hung up while the contact rang
            dial.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dial
            extra["sip_status"] = 487
            return "failed"
        agent_gone.cancel()
        leg: Leg = dial.result()
        status = int(getattr(leg, "sip_status", 0) or 0)
        extra["sip_status"] = status
        if leg.state is not LegState.ANSWERED:
            live.stats.on_dial_result(False)
            return failed_outcome(status, svc.now() - flight.started)
        flight.answered_at = flight.bridged_at = svc.now()
        extra["answered"] = time.time()
        live.stats.on_dial_result(True, flight.answered_at - flight.started)
        if phone.state is not LegState.ANSWERED or phone.channel is None or leg.channel is None:
            live.ledger.record(time.time(), abandoned=True)
            return "abandoned"
        phone.channel.stop_playing()
        # the contact's channel first: a recording has the contact left, the agent right
        svc.b2bua.media.bridge(leg.channel, phone.channel)
        svc.answered(call, phone)
        flight.bridged.set()
        live.ledger.record(time.time(), abandoned=False)
        runner.publish(c.name, "connected", {
            "attempt": flight.attempt, "agent": agent, "number": number,
            "name": flight.contact.get("name", ""),
            "fields": json.loads(flight.contact.get("fields") or "{}")})
        ends = {fired(phone.ended), fired(leg.ended)}
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        for task in ends:
            task.cancel()
        live.stats.on_talk(svc.now() - flight.bridged_at)
        return "answered"
