"""The live dialer: campaigns from config dialled through a trunk into their ACD queue.

Every second, for each running campaign, :class:`CampaignRunner` builds a
:class:`PacingSnapshot` (the queue's agents from the ACD, its own calls ringing and waiting)
and asks the campaign's pacer how many lines to dial. Contacts are taken oldest first, skipping
the do-not-call list, contacts outside the calling window (in their own time zone) and, in the
predictive and power modes, numbers abandoned in the last 72 hours.

One attempt: the row is written (contact ``dialing``) before the INVITE leaves; the call rings
at least 15 s; an answer (after optional answering-machine detection) is queued with the
campaign's priority; if no agent is connected within 2 s the call is *abandoned*: the caller
hears the recorded information message, the call ends, and the abandon ledger (24 h / 30 days,
rebuilt from the attempts table at start) counts it. Pausing stops new dials at once.

Callbacks an agent scheduled for themselves (or another agent) are not paced: each tick, in
every mode, a due callback whose owner is logged in to the campaign's queue, registered and
free is called like a preview call (the owner's phone first, then the contact); one whose
owner was not free for ``callback_grace`` seconds after its time goes to anyone
(:mod:`callbacks`). Calls of a campaign with ``record: true`` are recorded once bridged to an
agent (:meth:`CampaignRunner.records`, asked by the recording policy); the path is stored
on the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Collection, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from acd import actions as act
from callcenter.calls import flows
from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.dialer.amd import AmdDecision, AmdDetector, AmdResult
from callcenter.dialer.callbacks import pick_callbacks, plan_callback
from callcenter.dialer.campaigns import CampaignStore, calling_window, retry_policy
from callcenter.dialer.compliance import (
    DAY,
    REDIAL_BLOCK_SECONDS,
    AbandonLedger,
    RedialGuard,
    failed_outcome,
    ring_timeout,
)
from callcenter.dialer.flight import Flight, Live
from callcenter.dialer.message import leave_message
from callcenter.dialer.numbers import timezone_for
from callcenter.dialer.pacing import ABANDON_GRACE, Pacer, PacingSnapshot, Stats, make_pacer
from callcenter.dialer.preview import PreviewDesk
from callcenter.events import bus as events
from callcenter.media.g711 import PCMA, PCMU
from callcenter.media.prompts import PromptError

if TYPE_CHECKING:
    import sqlite_utils

    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.services import CallServices
    from callcenter.config import Config
    from callcenter.config.models import Campaign

log = structlog.get_logger("dialer")

TICK = 1.0
ABANDON_PROMPT = "abandon_message"
MAX_PER_TICK = 20
DISPOSITION_WINDOW = 3600.0  # *5<code> applies to the agent's campaign call of the last hour
class _AmdTap:
    """A channel listener during detection: decoded frames to the detector."""

    def __init__(self, *, answered: bool = True) -> None:
        self.answered = answered  #: frames before the answer (early media) are not the callee
        self.channel: Any = None  #: the channel listened to (a media engine channel)
        self.detector = AmdDetector()
        self.result: AmdResult | None = None
        self.decided = asyncio.Event()
        self._buf = b""

    def listen(self, channel: Any) -> None:
        self.channel = channel
        channel.add_listener(self)

    def on_answer(self, leg: Leg) -> None:
        """The callee's 2xx is in: what follows is the callee (the B2BUA's answer hook)."""
        self.answered = True
        if leg.channel is not None and leg.channel is not self.channel:  # a failover's leg
            self.listen(leg.channel)

    def __call__(self, pcm: bytes) -> None:
        if self.result is not None or not self.answered:
            return
        self._buf += pcm
        while len(self._buf) >= 320 and self.result is None:
            frame = np.frombuffer(self._buf[:320], dtype="<i2")
            self._buf = self._buf[320:]
            self.result = self.detector.feed(frame)
            if self.result is not None:
                self.decided.set()


class CampaignRunner:
    """Runs ``cfg.campaigns`` on the application's B2BUA and ACD; see the module docstring."""

    def __init__(
        self, services: CallServices, *, cfg: Config, db: sqlite_utils.Database,
        queues: QueueRunner,
    ) -> None:
        self.services = services
        self.b2bua = services.b2bua
        self.cfg = cfg
        self.queues = queues
        self.store = CampaignStore(db)
        self.live: dict[str, Live] = {}
        self._by_call: dict[str, Flight] = {}
        self.calls: dict[str, tuple[Live, Call]] = {}  #: Call.id -> campaign calls going on
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pacing: asyncio.Task[Any] | None = None  #: the loop that places calls
        self.dialling = True  #: False once draining: no call is placed, a preview dial neither
        for c in cfg.campaigns:
            self.live[c.name] = _new_live(c)
        queues.listeners.append(self._on_acd_action)
        self.preview = PreviewDesk(self)  # preview mode: the agent starts each call

    def reconfigure(self, cfg: Config) -> None:
        """A reloaded configuration: new campaigns join (paused unless ``autostart``),
        changed ones take their new settings for the next dial (their figures, abandon ledger
        and calls in progress stay), removed ones place no more calls."""
        self.cfg = cfg
        for name in set(self.live) - {c.name for c in cfg.campaigns}:
            del self.live[name]  # its calls in progress hold their own reference
        for c in cfg.campaigns:
            live = self.live.get(c.name)
            if live is None:
                live = self.live[c.name] = _new_live(c)
                self.store.set_state(c.name, "running" if c.autostart else "paused",
                                     only_if_new=True)
                live.running = self.store.state(c.name) == "running"
            elif live.cfg != c:
                if (live.cfg.mode, live.cfg.ratio) != (c.mode, c.ratio):
                    live.pacer = _pacer(c)
                live.cfg, live.window, live.policy = c, calling_window(c), retry_policy(c)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Close attempts a crash left open, rebuild the abandon figures, start the loop."""
        wall = time.time()
        for live in self.live.values():
            c = live.cfg
            interrupted = self.store.recover(c, wall)
            if interrupted:
                log.warning("attempts_interrupted", campaign=c.name, attempts=interrupted)
            self.store.set_state(c.name, "running" if c.autostart else "paused",
                                 only_if_new=True)
            live.running = self.store.state(c.name) == "running"
            for t, abandoned, number in self.store.person_answers(c.name, wall - 30 * DAY):
                live.ledger.record(t, abandoned=abandoned)
                if abandoned and wall - t < REDIAL_BLOCK_SECONDS:
                    live.guard.record_abandon(number, t)
        self._pacing = self.spawn(self._loop())
        log.info("dialer_started", campaigns={n: x.running for n, x in self.live.items()})

    def stop_dialling(self) -> None:
        """Place no more calls (a drain): the calls in progress go on to their end."""
        self.dialling = False
        if self._pacing is not None:
            self._pacing.cancel()

    async def close(self) -> None:
        """Stop dialling; attempts still open are closed as interrupted at the next start."""
        for task in list(self._tasks):
            task.cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report_crash)
        return task

    async def _loop(self) -> None:
        while True:
            for live in self.live.values():
                try:
                    self._tick(live)
                except Exception:
                    log.exception("dialer_tick_failed", campaign=live.cfg.name)
            await asyncio.sleep(TICK)

    # ------------------------------------------------------------------ control

    def set_running(self, name: str, running: bool) -> None:
        """Start or pause a campaign (pausing lets calls in progress finish)."""
        live = self.live[name]
        live.running = running
        self.store.set_state(name, "running" if running else "paused")
        log.info("campaign_state", campaign=name, state="running" if running else "paused")
        self.publish(name, "running" if running else "paused", {})

    def publish(self, name: str, state: str, data: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.services.publish(events.CampaignChanged(campaign=name, state=state, data=data))

    # ------------------------------------------------------------------ pacing

    def _snapshot(self, live: Live, now: float, wall: float) -> PacingSnapshot:
        queues = self.queues
        members: list[str] = next(
            (q["agents"] for q in queues.queue_stats() if q["name"] == live.cfg.queue), [])
        free = paused = 0
        talking: list[float] = []
        wrapping: list[float] = []
        for a in queues.agent_stats():
            if a["id"] not in members or not (a["registered"] and a["reachable"]):
                continue
            state, t = a["state"], float(a["time_in_state"])
            if state == "available" and a.get("in_use"):  # on a call the queue did not give
                talking.append(t)
            elif state == "available":
                free += 1
            elif state in ("on_call", "ringing"):
                talking.append(t)
            elif state == "wrap_up":
                wrapping.append(t)
            elif state == "paused":
                paused += 1
        flights = live.flights.values()
        c = live.cfg
        answered_24h, _ = live.ledger.counts_24h(wall)
        return PacingSnapshot(
            now=now, free_agents=free, talking=tuple(talking), wrapping=tuple(wrapping),
            ringing=tuple(now - f.started for f in flights if f.answered_at is None),
            waiting=sum(1 for f in flights if f.answered_at is not None
                        and not f.bridged.is_set()),
            paused_agents=paused, estimates=live.stats.estimates(),
            abandon_rate_24h=live.ledger.rate_24h(wall),
            abandon_rate_30d=live.ledger.rate_30d(wall), answered_24h=answered_24h,
            limit=c.abandon_limit, max_ring=ring_timeout(c.ring_timeout), max_lines=c.max_lines,
        )

    def _tick(self, live: Live) -> None:
        c = live.cfg
        stored = self.store.state(c.name)  # the CLI may have changed it
        live.running = stored == "running"
        if not live.running:
            return
        self._callbacks(live, time.time())
        if c.mode == "preview":
            self.preview.book.expire(time.time())
            return  # never auto-dial: the agent starts the call (PreviewDesk.dial)
        now, wall = self.services.now(), time.time()
        n = min(live.pacer.lines_to_dial(self._snapshot(live, now, wall)), MAX_PER_TICK)
        if n <= 0:
            return
        utc = self.services.clock.now()
        predictive = c.mode in ("predictive", "power")
        placed = 0
        for contact in self.store.due(c.name, wall, n * 4 + 100):
            if placed >= n:
                break
            number = contact["number"]
            if not self.may_call(live, contact, utc):
                continue
            if not live.guard.may_dial(number, wall, predictive=predictive):
                continue
            attempt = self.store.begin_attempt(contact, wall)  # before the INVITE leaves
            flight = Flight(attempt=attempt, contact=contact, started=now)
            live.flights[attempt] = flight
            live.dials += 1
            placed += 1
            self.spawn(self._attempt(live, flight))

    # ------------------------------------------------------------------ callbacks

    def _free_agents(self, live: Live) -> set[str]:
        """Agents of the campaign's queue who could take a callback now: logged in,
        registered, reachable, available, not on a call the queue did not give (in use)."""
        queues = self.queues
        members: list[str] = next(
            (q["agents"] for q in queues.queue_stats() if q["name"] == live.cfg.queue), [])
        busy = self.preview.book.agents()
        return {a["id"] for a in queues.agent_stats()
                if a["id"] in members and a["state"] == "available" and a["registered"]
                and a["reachable"] and not a.get("in_use") and a["id"] not in busy}

    def _callbacks(self, live: Live, wall: float) -> None:
        """Call the due callbacks whose owner is free; release those that waited too long."""
        c = live.cfg
        due = self.store.owned_due(c.name, wall)
        if not due:
            return
        pick = pick_callbacks(due, self._free_agents(live), wall, c.callback_grace)
        for contact in pick.release:
            if self.store.release_owner(contact["id"], wall):
                log.info("callback_released", campaign=c.name, contact=contact["id"],
                         owner=contact["owner"], due=contact["next_at"])
                self.publish(c.name, "callback_released", {
                    "contact": contact["id"], "number": contact["number"],
                    "owner": contact["owner"]})
        utc = self.services.clock.now()
        for contact, agent in pick.dial:
            if not self.may_call(live, contact, utc):
                continue
            if not self.services.registrar.contacts(agent, self.services.now(), reachable_only=True):
                continue
            attempt = self.preview.callback(live, contact, agent)
            log.info("callback_dialing", campaign=c.name, contact=contact["id"], agent=agent,
                     attempt=attempt)

    # ------------------------------------------------------------------ recording

    def records(self, call: Call) -> bool:
        """True when ``call`` is a call of a campaign with ``record: true`` (the recording
        policy asks when the call is bridged to an agent)."""
        live = self.calls.get(call.id)
        return live is not None and live[0].cfg.record

    def may_call(self, live: Live, contact: dict[str, Any], utc: Any) -> bool:
        """Not on the do-not-call list (else marked ``dnc``) and inside the calling window in
        the contact's own time zone at ``utc`` (the server clock's now)."""
        c, number = live.cfg, contact["number"]
        if self.store.is_dnc(number, c.name):
            self.store.mark_dnc(contact["id"])
            log.info("contact_dnc", campaign=c.name, number=number)
            return False
        tz = contact["timezone"] or timezone_for(number) or c.timezone
        return live.window.may_call(tz, utc)

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, live: Live, flight: Flight) -> None:
        c = live.cfg
        svc = self.services
        number = flight.contact["number"]
        call = Call(caller=c.caller_id, called=number, source=f"campaign:{c.name}",
                    direction="outbound")
        self.calls[call.id] = (live, call)
        outcome, extra = "failed", {}
        try:
            dial = await self.dial_contact(live, flight, call)
            leg = await dial
            status = int(getattr(leg, "sip_status", 0) or 0)
            extra["sip_status"] = status
            if leg.state is not LegState.ANSWERED:
                live.stats.on_dial_result(False)
                outcome = failed_outcome(status, svc.now() - flight.started)
                log.info("dial_failed", campaign=c.name, number=number, status=status,
                         outcome=outcome)
            else:
                outcome = await self._answered(live, flight, leg, extra)
        except asyncio.CancelledError:
            live.flights.pop(flight.attempt, None)
            raise  # shutting down: the attempt stays open and is recovered as interrupted
        except Exception:
            log.exception("attempt_failed", campaign=c.name, number=number)
        finally:
            self._by_call.pop(call.id, None)
            self.calls.pop(call.id, None)
            if any(x.state is not LegState.ENDED for x in call.legs):
                with contextlib.suppress(Exception):
                    await svc.b2bua.hangup_call(call, HangupCause.NORMAL, "system")
        self.close_attempt(live, flight, call, outcome, extra)

    def close_attempt(self, live: Live, flight: Flight, call: Call, outcome: str,
                      extra: dict[str, Any], **log_fields: Any) -> None:
        """Write the attempt's end (outcome, recording, ...) and move its contact."""
        c = live.cfg
        number = flight.contact["number"]
        if call.recording:
            extra["recording"] = call.recording
        live.flights.pop(flight.attempt, None)
        move = self.store.finish_attempt(flight.attempt, outcome, live.policy, time.time(),
                                         agent=flight.agent, **extra)
        log.info("attempt_done", campaign=c.name, number=number, outcome=outcome,
                 contact_state=move.state, agent=flight.agent, **log_fields)
        self.publish(c.name, "attempt", {"attempt": flight.attempt, "number": number,
                                          "outcome": outcome, "contact": move.state})

    async def dial_contact(self, live: Live, flight: Flight, call: Call) -> asyncio.Task[Leg]:
        """Dial the contact through the campaign's trunk; once the INVITE is out, store its
        Call-ID with the attempt and start the CDR. Returns the dial task (the leg)."""
        c, svc = live.cfg, self.services
        trunk = self.cfg.trunk(c.trunk)
        assert trunk is not None
        number = flight.contact["number"]
        tap = flight.amd = _AmdTap(answered=False) if c.amd else None
        dial = asyncio.ensure_future(svc.b2bua.dial(
            call, **flows.trunk_target(trunk, number, self.cfg.trunks), from_user=c.caller_id,
            from_display=c.caller_name, timeout=ring_timeout(c.ring_timeout),
            on_answer=tap.on_answer if tap else None))
        await asyncio.sleep(0)  # the INVITE is built and sent on the task's first step
        leg = next((x for x in call.legs if x.party == number), None)
        if tap is not None and leg is not None and leg.channel is not None:
            # listening from the INVITE on (a media worker forwards audio once told to, which
            # would come too late for a greeting at once), heard from the 2xx on
            tap.listen(leg.channel)
        self._record(flight, call)
        dial.add_done_callback(partial(self._carried, flight, call))
        return dial

    def _carried(self, flight: Flight, call: Call, dial: asyncio.Future[Leg]) -> None:
        """The dial is over: the attempt keeps the Call-ID and trunk of the leg that carried
        the call (a failover's, not the first trunk's)."""
        if dial.cancelled() or dial.exception() is not None:
            return
        leg = dial.result()
        if leg.outbound_invite is not None:
            self.store.set_call_ids(flight.attempt, leg.outbound_invite.call_id, call.id,
                                    leg.trunk or None)

    def _record(self, flight: Flight, call: Call) -> None:
        """Store the INVITE's Call-ID with the attempt and start the CDR."""
        number = flight.contact["number"]
        leg = next((x for x in call.legs if x.party == number), None)
        invite = getattr(leg, "outbound_invite", None)
        if invite is None:
            return
        self.store.set_call_ids(flight.attempt, invite.call_id, call.id,
                                getattr(leg, "trunk", "") or None)
        start = time.time()
        self.services.publish(events.CallStarted(
            ts=start, call_id=call.id, caller=call.caller, called=call.called,
            source=call.source, direction="outbound", sip_call_id=invite.call_id))
        call.recorded = True
        call.started_at = start

    async def _answered(
        self, live: Live, flight: Flight, leg: Leg, extra: dict[str, Any]
    ) -> str:
        """AMD (optional), then the queue; abandoned if no agent within 2 s."""
        c = live.cfg
        svc = self.services
        flight.answered_at = svc.now()
        extra["answered"] = time.time()
        live.stats.on_dial_result(True, flight.answered_at - flight.started)
        if getattr(leg.call, "recorded", False):
            svc.answered(leg.call, None)
        if c.amd:
            result = await self._detect(leg, flight.amd)
            if result is not None:
                extra["amd"] = result.decision.value
                extra["amd_confidence"] = result.confidence
                if result.decision is AmdDecision.MACHINE:
                    log.info("answering_machine", campaign=c.name, number=leg.party,
                             cause=result.cause)
                    if c.machine_message and await leave_message(
                            svc.prompts, leg, c.machine_message, c.language):
                        extra["message_left"] = True
                    return "machine"
            flight.answered_at = svc.now()  # the 2 s count from the end of the greeting
        if leg.state is LegState.ENDED:
            live.ledger.record(time.time(), abandoned=True)
            return "abandoned"
        self._by_call[leg.call.id] = flight
        contact = {"contact": flight.contact.get("name", ""),
                   "fields": json.loads(flight.contact.get("fields") or "{}")}
        queued = asyncio.ensure_future(self.queues.enqueue(
            leg, c.queue, priority=c.priority, language=c.language, about=contact))
        bridged = fired(flight.bridged)
        await asyncio.wait({queued, bridged}, timeout=ABANDON_GRACE,
                           return_when=asyncio.FIRST_COMPLETED)
        bridged.cancel()
        if not flight.bridged.is_set() and self._withdraw(leg):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await queued
            return await self._abandon(live, leg)
        live.ledger.record(time.time(), abandoned=False)
        self.publish(c.name, "connected", {
            "attempt": flight.attempt, "agent": flight.agent, "number": leg.party,
            "name": contact["contact"], "fields": contact["fields"]})
        outcome = await queued
        if flight.bridged_at is not None:
            live.stats.on_talk(svc.now() - flight.bridged_at)
            queue = self.cfg.queue(c.queue)
            live.stats.on_wrapup(max(queue.wrapup if queue else 0.0, 0.1))
        log.info("campaign_call_done", campaign=c.name, number=leg.party, agent=flight.agent,
                 queue_outcome=outcome)
        return "answered"

    async def _detect(self, leg: Leg, tap: _AmdTap | None) -> AmdResult | None:
        """Answering-machine detection on the first seconds of the callee's audio."""
        channel = leg.channel
        if channel is None:
            return None
        if tap is None or tap.channel is None:
            tap = _AmdTap()
            tap.listen(channel)
        cfg = tap.detector.cfg
        ended = fired(leg.ended)
        decided = fired(tap.decided)
        try:
            await asyncio.wait({ended, decided}, timeout=cfg.total_analysis_time / 1000 + 1.0,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            decided.cancel()
            channel.remove_listener(tap)
        return tap.result

    def _withdraw(self, leg: Leg) -> bool:
        """Take a call no agent answered out of the queue; False if an agent just got it."""
        return self.queues.withdraw(leg, "abandoned")

    async def _abandon(self, live: Live, leg: Leg) -> str:
        """No agent within 2 s: the information message, then hang up."""
        c = live.cfg
        live.ledger.record(time.time(), abandoned=True)
        live.guard.record_abandon(leg.party, time.time())
        log.warning("call_abandoned", campaign=c.name, number=leg.party,
                    rate_24h=round(live.ledger.rate_24h(time.time()), 4))
        if leg.state is LegState.ANSWERED and leg.channel is not None:
            codec = PCMA if leg.codec == "PCMA" else PCMU
            try:
                prompt = self.services.prompts.get(ABANDON_PROMPT, c.language, codec)
            except PromptError as exc:
                log.error("abandon_message_missing", error=str(exc))
            else:
                leg.channel.stop_playing()
                await flows.play(leg, prompt)
        return "abandoned"

    def _on_acd_action(self, action: act.Action) -> None:
        """ACD listener: a campaign call was bridged to an agent."""
        if isinstance(action, act.Bridge):
            flight = self._by_call.get(action.call.partition("/")[0])
            if flight is not None and not flight.bridged.is_set():
                flight.agent = action.agent
                flight.bridged_at = self.services.now()
                flight.bridged.set()
                self.store.update_attempt(flight.attempt, agent=action.agent)

    # ------------------------------------------------------------------ dispositions

    def dispose(self, name: str, attempt_id: int, code: str, *, callback_at: Any = None,
                callback_to: Any = None) -> dict[str, Any]:
        """Apply disposition ``code`` of campaign ``name`` to an attempt; returns the contact.

        ``callback_at`` (ISO 8601 local time in the campaign's time zone, or unix seconds) and
        ``callback_to`` (``same``, ``anyone`` or an agent id; default: the disposition's own
        ``callback_to``) schedule a non-final one (:func:`callbacks.plan_callback`); a bad
        value raises :class:`callbacks.CallbackError` (a ValueError)."""
        live = self.live[name]
        disp = live.cfg.dispositions.get(code)
        if disp is None:
            by_name = {d.name: k for k, d in live.cfg.dispositions.items()}
            if code not in by_name:
                raise ValueError(f"unknown disposition {code!r} (codes: "
                                 f"{', '.join(f'{k}={d.name}' for k, d in live.cfg.dispositions.items())})")
            code = by_name[code]
            disp = live.cfg.dispositions[code]
        attempt = self.store.attempt(attempt_id)
        if attempt is None or attempt["campaign"] != name:
            raise KeyError(attempt_id)
        callback = plan_callback(
            callback_at, callback_to, default_to=disp.callback_to, retry=disp.retry,
            final=disp.final or disp.dnc, took=attempt["agent"], agents=self._agents(),
            wall=time.time(), local_now=self.services.clock.now(), tz=live.cfg.timezone)
        contact = self.store.dispose(attempt_id, code, disp.name, final=disp.final, dnc=disp.dnc,
                                     retry=disp.retry, callback=callback)
        log.info("disposition", campaign=name, attempt=attempt_id, code=code,
                 disposition=disp.name, contact_state=contact["state"],
                 callback_at=contact["callback_at"], owner=contact["owner"])
        self.publish(name, "disposition", {"attempt": attempt_id, "disposition": disp.name,
                                            "number": contact["number"]})
        if callback is not None and contact["callback_at"] is not None:
            self.publish(name, "callback", {
                "attempt": attempt_id, "contact": contact["id"], "number": contact["number"],
                "at": contact["callback_at"], "owner": contact["owner"]})
        return contact

    def _agents(self) -> Collection[str]:
        """Agent ids a callback may be scheduled for."""
        engine = self.queues.engine
        if engine is not None:
            return set(engine.agent_ids)
        return {u.user for u in self.cfg.users}

    async def feature_code(self, leg: Leg, user: str, code: str) -> bool:
        """``*5<code>``: the agent's disposition of their last campaign call. False when
        ``code`` is not a disposition code."""
        digits = code[2:]
        if not code.startswith("*5") or not digits.isdigit():
            return False
        attempt = self.store.last_attempt_of_agent(user, time.time() - DISPOSITION_WINDOW)
        ok = False
        if attempt is not None and attempt["campaign"] in self.live:
            try:
                self.dispose(attempt["campaign"], attempt["id"], digits)
                ok = True
            except (KeyError, ValueError) as exc:
                log.info("disposition_refused", user=user, code=code, error=str(exc))
        log.info("disposition_code", user=user, code=code, ok=ok,
                 attempt=attempt["id"] if attempt else None)
        self.b2bua.answer(leg)
        if await self.b2bua.confirmed(leg):
            codec = PCMA if leg.codec == "PCMA" else PCMU
            with contextlib.suppress(PromptError):
                await flows.play(leg, self.services.prompts.get(
                    "thank_you" if ok else "not_allowed", "pl", codec))
        if leg.state is not LegState.ENDED:
            await self.b2bua.hangup_call(leg.call, HangupCause.NORMAL, "system")
        return True

    # ------------------------------------------------------------------ figures

    def summary(self) -> list[dict[str, Any]]:
        """Every campaign's state and progress (the JSON of GET /api/campaigns)."""
        wall = time.time()
        out = []
        for name, live in self.live.items():
            c = live.cfg
            answered_24h, abandoned_24h = live.ledger.counts_24h(wall)
            answered_30d, abandoned_30d = live.ledger.counts_30d(wall)
            prog = self.store.progress(name)
            out.append({
                "name": name, "state": "running" if live.running else "paused",
                "mode": c.mode, "queue": c.queue, "trunk": c.trunk, **prog,
                "dispositions": {code: d.name for code, d in c.dispositions.items()},
                "answered": prog["outcomes"]["answered"] + prog["outcomes"]["abandoned"],
                "abandoned": prog["outcomes"]["abandoned"],
                "in_flight": len(live.flights),
                "abandon_limit": c.abandon_limit,
                "abandon_rate_24h": round(live.ledger.rate_24h(wall), 4),
                "abandon_rate_30d": round(live.ledger.rate_30d(wall), 4),
                "answered_24h": answered_24h, "abandoned_24h": abandoned_24h,
                "answered_30d": answered_30d, "abandoned_30d": abandoned_30d,
                "callbacks": [{"contact": r["id"], "number": r["number"], "name": r["name"],
                               "at": r["callback_at"], "due": r["next_at"],
                               "owner": r["owner"]} for r in self.store.callbacks(name)],
                "calls": [{"attempt": f.attempt, "number": f.contact["number"],
                           "name": f.contact.get("name", ""), "agent": f.agent,
                           "callback": f.callback,
                           "state": "connected" if f.bridged.is_set() else
                           ("answered" if f.answered_at is not None else "ringing"),
                           "fields": json.loads(f.contact.get("fields") or "{}")}
                          for f in live.flights.values()],
            })
        return out


def _new_live(c: Campaign) -> Live:
    return Live(cfg=c, pacer=_pacer(c), stats=Stats(), ledger=AbandonLedger(),
                guard=RedialGuard(), window=calling_window(c), policy=retry_policy(c))


def _pacer(c: Campaign) -> Pacer:
    options = {"ratio": c.ratio} if c.mode == "power" else {}
    return make_pacer("progressive" if c.mode == "preview" else c.mode,  # never asked: _tick
                      **options)


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("dialer_task_failed", error=repr(task.exception()), exc_info=task.exception())
