"""The live ACD: the pure ``acd`` engine carried out over SIP and media.

``QueueRunner`` owns one :class:`acd.AcdEngine`. Everything that happens (a caller enters, a
phone registers, an agent answers, a timer is due) becomes an engine event; the actions that
come back are carried out here: ring an agent's phones (``B2BUA.dial_fork``), cancel, whisper,
bridge, announce the position and estimated wait over music on hold, hand the caller back to
the IVR with an outcome. Queue log entries, watchdog firings and agent state changes go to
``listeners`` (the event bus, whose store sink writes them to SQLite).

The engine is fed from one place (``_feed``) and never re-entered: actions that need to talk
to the network run as tasks and report back through ``_feed`` later. The ring timer belongs to
this side (``dial(timeout=ring_timeout)``); every other timer is the engine's, re-armed after
each event at ``engine.next_deadline()``.

The agent's phone is dialled as a call of its own (source ``queue:<name>``), so a BYE from the
agent ends only that leg: the caller goes back to the IVR (e.g. the survey).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from acd import AcdEngine, AgentState
from acd import actions as act
from acd import events as ev
from acd.engine import AcdError
from callcenter.calls import acd_config, flows
from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.calls.services import Offer
from callcenter.events.bus import CallDisposition, Event
from callcenter.media.g711 import PCMA, PCMU
from callcenter.media.prompts import Prompt, PromptCache, PromptError
from ivr.say import SayError, say_digits, say_position, say_wait_time

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.config import Config
    from callcenter.sip.registrar import Registrar

log = structlog.get_logger("acd")

SYNC_INTERVAL = 2.0  # seconds between checks of the registrar (expired bindings)
FEATURE_LANGUAGE = "pl"
_FAILURES = {
    486: ev.RingFailure.BUSY, 600: ev.RingFailure.BUSY, 603: ev.RingFailure.REJECTED,
    480: ev.RingFailure.UNREACHABLE, 503: ev.RingFailure.UNREACHABLE,
}
_LOGGED_IN = set(AgentState) - {AgentState.LOGGED_OUT}
_CONFIRM = {"login": "agent_logged_in", "logout": "agent_logged_out", "pause": "agent_paused",
            "unpause": "agent_unpaused", "disposition": "thank_you"}
_CODES = {"*41": "login", "*42": "logout", "*43": "pause", "*44": "unpause", "*5": "disposition"}
DISPOSITION_WINDOW = 3600.0  # *5<code> codes the agent's queue call of the last hour


@dataclass(eq=False)
class _Entry:
    """One caller in a queue, as this side knows it."""

    id: str  # the engine's call id
    leg: Leg | None  # the caller's leg (ended after a callback request; None: a booked one)
    queue: str
    language: str
    caller: str
    outcome: asyncio.Future[str]
    rings: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # agent -> ring task
    agent_legs: dict[str, Leg] = field(default_factory=dict)  # agent -> answered leg
    callback: bool = False
    priority: int = 0
    callback_id: int | None = None  # the stored request a callback entry works
    about: dict[str, Any] = field(default_factory=dict)  # more for the screen pop's ``why``
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: the caller's call ("": a booked callback), whom the agent talks to, the call's source:
    #: kept here, as an ended leg refers to its call weakly (a finished call is freed at once)
    call_id: str = ""
    customer: str = ""
    source: str = ""


class CallbackDesk(Protocol):
    """Who keeps callback requests (stored, retried); see ``calls/callbacks.py``."""

    def requested(self, call: str, queue: str, number: str, entered: float,
                  language: str) -> int:
        """A queued caller asked to be called back (``entered``: engine time); its id."""

    async def dial(self, callback_id: int, agent_leg: Leg) -> Leg | None:
        """The agent took it: dial the customer; the answered leg, or None."""

    def released(self, callback_id: int) -> None:
        """The agent left before the customer was dialled: the request waits again."""

    def pending(self) -> dict[str, int]:
        """Requests not finished, per queue."""


class QueueRunner:
    """Queues and agents of ``cfg.queues`` live; see the module docstring."""

    def __init__(
        self, *, cfg: Config, b2bua: B2BUA, registrar: Registrar, prompts: PromptCache,
        now: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.b2bua = b2bua
        self.registrar = registrar
        self.prompts = prompts
        self.now = now
        self.engine: AcdEngine | None = None
        self.names = {u.user: u.name for u in cfg.users}
        self._entries: dict[str, _Entry] = {}
        self._seen: dict[str, tuple[bool, bool]] = {}  # agent -> (registered, reachable) told
        self._since: dict[str, float] = {}  # agent -> time of the last state change (now())
        self._claims: dict[str, int] = {}  # agent -> ``device_in_use`` calls not yet ended
        self._phone_legs: dict[str, dict[Leg, float]] = {}  # agent -> live legs: when added
        #: the agent calls of queue offers while the engine follows them (not "in use")
        self._offers: weakref.WeakSet[Call] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = 0
        self._offset = 0.0
        #: called with every action after it was carried out (the event bus listens here)
        self.listeners: list[Callable[[act.Action], None]] = []
        #: told how long each engine decision took (event name, seconds of CPU): /metrics
        self.on_decision: Callable[[str, float], None] | None = None
        self.callbacks: CallbackDesk | None = None  #: stores and dials callback requests
        self.publish: Callable[[Event], None] = lambda e: None  #: the event bus
        #: agent -> its last queue call (id, queue, source; not the call, which is freed once
        #: over) and the unix time it was connected
        self._last: dict[str, tuple[str, str, str, float]] = {}
        #: told (caller's call id or "", agent, queue, caller number) just before an agent's
        #: phone rings (the screen pop); returns the caller's name for the phone ("": none)
        self.on_offer: Offer | None = None  #: the screen pop (``CallServices.offer``)

    # ------------------------------------------------------------------ lifecycle

    def _build(self) -> AcdEngine:
        agents = acd_config.engine_agents(self.cfg)
        now = self.now()
        for a in agents:
            self._since[a.id] = now
        return AcdEngine(queues=[acd_config.engine_queue(q) for q in self.cfg.queues],
                         agents=agents, rng=random.Random(), now=now,
                         auto_pause_after=None)  # each queue says its own

    def reconfigure(self, cfg: Config, *, keep: Collection[tuple[str, str]] = ()) -> None:
        """A reloaded configuration, applied as a diff (``acd_config.changes``): callers keep
        their places, a removed agent finishes its call; ``keep``: the API's members."""
        assert self.engine is not None, "QueueRunner.start() first"
        old, self.cfg = self.cfg, cfg
        self.names = {u.user: u.name for u in cfg.users}
        for event in acd_config.changes(old, cfg, keep=keep):
            if isinstance(event, ev.AgentAdded):
                self._since[event.cfg.id] = self.now()
            try:
                self._feed(event)
            except (AcdError, ValueError):
                log.exception("acd_reconfigure_failed", acd_event=repr(event))
                continue
            if isinstance(event, ev.AgentAdded):
                self._sync(event.cfg.id, force=True)
            elif isinstance(event, ev.AgentRemoved):
                self._since.pop(event.agent, None)
                self._seen.pop(event.agent, None)
        log.info("acd_reconfigured", queues=self.engine.queue_names, agents=self.engine.agent_ids)

    async def start(self) -> None:
        self._offset = time.time() - self.now()
        self.engine = self._build()
        for agent in self.engine.agent_ids:
            self._sync(agent, force=True)
        self._spawn(self._housekeeping())
        log.info("acd_started", queues=self.engine.queue_names, agents=self.engine.agent_ids)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for entry in list(self._entries.values()):
            self._resolve(entry, "failed")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # let them end here: a task still pending when its loop closes is reported destroyed
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], entry: _Entry | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        bucket = entry.tasks if entry is not None else self._tasks
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        task.add_done_callback(_report_crash)
        return task

    async def _housekeeping(self) -> None:
        """Notice bindings that expired without a REGISTER (the app may not tell us)."""
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            if self.engine is not None:
                for agent in self.engine.agent_ids:
                    self._sync(agent)

    # ------------------------------------------------------------------ the engine

    def _feed(self, event: ev.Event) -> list[act.Action]:
        """Hand one event to the engine, carry out its actions, re-arm the timer."""
        assert self.engine is not None, "QueueRunner.start() first"
        started = time.perf_counter()
        actions = self.engine.handle(event, self.now())
        if self.on_decision is not None:
            self.on_decision(type(event).__name__, time.perf_counter() - started)
        for action in actions:
            try:
                self._carry_out(action)
                for listener in self.listeners:
                    listener(action)
            except Exception:
                log.exception("acd_action_failed", action=repr(action))
        self._arm()
        return actions

    def _arm(self) -> None:
        assert self.engine is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.engine.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - self.now()) + 0.001
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._feed(ev.Tick())

    def _carry_out(self, a: act.Action) -> None:
        if isinstance(a, act.QueueLogEntry):
            self._log_queue(a)
        elif isinstance(a, act.AgentStateChanged):
            self._agent_state(a)
        elif isinstance(a, act.RingAgent):
            entry = self._entries.get(a.call)
            if entry is not None:
                entry.rings[a.agent] = self._spawn(self._ring(entry, a), entry)
        elif isinstance(a, act.CancelRing):
            entry = self._entries.get(a.call)
            task = entry.rings.pop(a.agent, None) if entry else None
            log.info("ring_cancelled", agent=a.agent, call=a.call, reason=a.reason)
            if task is not None:
                task.cancel()
        elif isinstance(a, act.Bridge):
            entry = self._entries.get(a.call)
            if entry is not None:
                self._spawn(self._connect(entry, a), entry)
        elif isinstance(a, act.DropAgentLeg):
            self._drop_agent(a)
        elif isinstance(a, act.Announce):
            self._announce(a)
        elif isinstance(a, act.PlayHoldMusic):
            entry = self._entries.get(a.call)
            channel = entry.leg.channel if entry is not None and entry.leg else None
            if entry is not None and channel is not None and not channel.playing:
                self._hold(entry)
        elif isinstance(a, act.ExitQueue):
            entry = self._entries.get(a.call)
            if entry is not None:
                log.info("queue_exit", call=a.call, queue=a.queue, reason=a.reason.value)
                timeout = a.reason is act.ExitReason.TIMEOUT
                self._resolve(entry, "timeout" if timeout else "empty")
        elif isinstance(a, act.CallMoved):
            entry = self._entries.get(a.call)
            if entry is not None:
                entry.queue = a.to_queue
                if entry.leg is not None and not _gone(entry.leg):
                    entry.leg.call.queue = a.to_queue
            log.info("queue_overflow", call=a.call, frm=a.from_queue, to=a.to_queue,
                     reason=a.reason.value)
        elif isinstance(a, act.CallbackRequested):
            entry = self._entries.get(a.call)
            if entry is not None:
                entry.callback = True
                if self.callbacks is not None:
                    entry.callback_id = self.callbacks.requested(
                        a.call, a.queue, a.caller, a.entered, entry.language)
                self._spawn(self._confirm_callback(entry), entry)
        elif isinstance(a, act.WatchdogFired):
            log.warning("acd_watchdog", agent=a.agent, call=a.call, what=a.what,
                        stuck_for=round(a.stuck_for, 1))
        elif isinstance(a, act.Ignored):
            log.debug("acd_ignored", acd_event=repr(a.event), reason=a.reason)

    # ------------------------------------------------------------------ records

    def wall_time(self, t: float) -> float:
        """Unix time of engine time ``t`` (one offset, so records keep their order)."""
        return t + self._offset

    def call_id_of(self, engine_call: str) -> str:
        """The SIP-side call id of the engine's call id ``<call id>/<n>``."""
        entry = self._entries.get(engine_call)
        if entry is not None and entry.call_id:
            return entry.call_id
        return engine_call.partition("/")[0]

    def queue_of(self, engine_call: str) -> str:
        """The queue the engine's call is waiting in now ("" once it left)."""
        entry = self._entries.get(engine_call)
        return entry.queue if entry is not None else ""

    def _log_queue(self, a: act.QueueLogEntry) -> None:
        log.info("queue_log", queue=a.queue, call=a.call, verb=a.event.value, agent=a.agent,
                 position=a.position, wait=None if a.wait is None else round(a.wait, 2),
                 talk=None if a.talk is None else round(a.talk, 2), detail=a.detail or None)

    def _agent_state(self, a: act.AgentStateChanged) -> None:
        if a.agent in self._since:  # not a removed agent ending its last call
            self._since[a.agent] = a.time
        log.info("agent_state", agent=a.agent, old=a.old.value, new=a.new.value,
                 reason=a.reason)

    # ------------------------------------------------------------------ callers

    async def enqueue(
        self, leg: Leg, queue: str, *, priority: int = 0, skills: dict[str, int] | None = None,
        language: str = "pl", about: dict[str, Any] | None = None,
    ) -> str:
        """Queue the caller's (answered) leg; return the outcome when it leaves the queue:
        answered, hangup, timeout, empty, callback or failed. ``about`` joins the screen pop's
        ``why`` (a campaign contact's name and fields)."""
        if self.engine is None or queue not in self.engine.queue_names:
            log.warning("unknown_queue", queue=queue)
            return "failed"
        if leg.state is not LegState.ANSWERED:
            return "hangup"
        self._seq += 1
        call = leg.call
        entry = _Entry(
            id=f"{call.id}/{self._seq}", leg=leg, queue=queue, language=language,
            caller=call.caller, outcome=asyncio.get_running_loop().create_future(),
            priority=priority, about=dict(about or {}), call_id=call.id,
            customer=call.customer, source=call.source,
        )
        self._entries[entry.id] = entry
        call.queue, call.language = queue, language
        if leg.channel is not None:
            leg.channel.stop_playing()
        while not leg.dtmf.empty():  # keys pressed before the queue are not queue keys
            leg.dtmf.get_nowait()
        watch = self._spawn(self._watch_caller(entry), entry)
        try:
            self._feed(ev.CallArrived(call=entry.id, queue=queue, priority=priority,
                                      skills=skills or {}, caller=entry.caller))
        except AcdError:
            log.exception("enqueue_failed", queue=queue)
            self._resolve(entry, "failed")
        try:
            outcome = await entry.outcome
        finally:
            watch.cancel()
            if not entry.callback:
                self._entries.pop(entry.id, None)
        log.info("queue_outcome", queue=entry.queue, outcome=outcome)
        return outcome

    def priority_of(self, leg: Leg) -> int:
        """The priority ``leg``'s caller has in its queue now (0 when not queued)."""
        return next((e.priority for e in self._entries.values() if e.leg is leg), 0)

    def queue_callback(self, callback_id: int, queue: str, number: str, entered: float, *,
                       language: str = "pl") -> bool:
        """Queue a stored callback request as a call that entered at ``entered`` (engine
        time): offered where that caller would be now. False if the queue is unknown."""
        if self.engine is None or queue not in self.engine.queue_names:
            return False
        self._seq += 1
        entry = _Entry(id=f"callback-{callback_id}/{self._seq}", leg=None, queue=queue, language=language,
                       caller=number, outcome=asyncio.get_running_loop().create_future(),
                       callback=True, callback_id=callback_id, customer=number)
        self._entries[entry.id] = entry
        self._feed(ev.CallArrived(call=entry.id, queue=queue, caller=number, callback=True,
                                  entered=entered))
        return True

    def drop_callback(self, callback_id: int) -> bool:
        """Take a queued callback request out (cancelled): True if it was waiting."""
        entry = self._waiting_callback(callback_id)
        if entry is None:
            return False
        self._feed(ev.CallbackCancelled(call=entry.id))
        self._entries.pop(entry.id, None)
        return True

    def callback_waiting(self, callback_id: int) -> bool:
        """The request is queued and no agent has taken it."""
        return self._waiting_callback(callback_id) is not None

    def _waiting_callback(self, callback_id: int) -> _Entry | None:
        return next((e for e in self._entries.values() if e.callback_id == callback_id
                     and not e.agent_legs), None)

    def withdraw(self, leg: Leg, reason: str) -> bool:
        """Take ``leg``'s waiting call out of its queue as if the caller had left (the engine
        logs an abandon), without hanging up; ``enqueue`` then returns ``reason``. False if an
        agent has already answered it; True if it was withdrawn or was not queued."""
        for entry in list(self._entries.values()):
            if entry.leg is leg and not entry.outcome.done():
                if entry.agent_legs:
                    return False
                self._feed(ev.CallerHungUp(call=entry.id))
                self._resolve(entry, reason)
        return True

    def _resolve(self, entry: _Entry, outcome: str) -> None:
        if not entry.outcome.done():
            entry.outcome.set_result(outcome)
        channel = entry.leg.channel if entry.leg is not None else None
        if channel is not None and not channel.closed:
            channel.stop_playing()  # music on hold ends with the queue

    async def _watch_caller(self, entry: _Entry) -> None:
        """Keys and the hang-up of a waiting caller become engine events."""
        leg = entry.leg
        assert leg is not None
        while leg.state is LegState.ANSWERED and not entry.agent_legs:
            get = asyncio.ensure_future(leg.dtmf.get())
            ended = fired(leg.ended)
            try:
                await asyncio.wait({get, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                if not get.done():
                    get.cancel()
            if get.done() and not get.cancelled() and not entry.agent_legs:
                digit = get.result()
                if digit in ev.DIGITS and not entry.callback:
                    self._feed(ev.KeyPressed(call=entry.id, digit=digit))
        if leg.state is LegState.ENDED and not entry.agent_legs and not entry.callback:
            self._feed(ev.CallerHungUp(call=entry.id))
            self._resolve(entry, "hangup")

    def _prompt(self, name: str, language: str, leg: Leg) -> Prompt | None:
        codec = PCMA if leg.codec == "PCMA" else PCMU
        if "/" in name and not name.endswith(".wav"):  # numbers/4 -> <language>/numbers/4.wav
            name = f"{language}/{name}.wav"
        try:
            return self.prompts.get(name, language if "." not in name else None, codec)
        except PromptError as exc:
            log.warning("prompt_missing", error=str(exc))
            return None

    def music(self, queue: str | None) -> str:
        """A queue's hold music (``music:``), the default for a call from no queue."""
        q = self.cfg.queue(queue) if queue else None
        return q.music if q is not None else "hold_music"

    def _hold(self, entry: _Entry) -> None:
        if entry.leg is None:
            return
        channel = entry.leg.channel
        music = self._prompt(self.music(entry.queue), entry.language, entry.leg)
        if channel is not None and not channel.closed and music is not None:
            channel.play(music, loop=True, interruptible=False)

    def _announce(self, a: act.Announce) -> None:
        """Position, then the estimated wait (or just "please hold"), then music again."""
        entry = self._entries.get(a.call)
        if entry is None or entry.leg is None or entry.leg.channel is None \
                or entry.leg.channel.closed:
            return
        lang = entry.language
        try:
            names = say_position(a.position, lang)
            names += (say_wait_time(a.estimated_wait, lang) if a.estimated_wait is not None
                      else ["please_hold"])
        except SayError:
            names = ["please_hold"]
        prompts = [p for p in (self._prompt(n, lang, entry.leg) for n in names) if p]
        channel = entry.leg.channel
        channel.stop_playing()
        for prompt in prompts:
            channel.play(prompt)
        self._hold(entry)

    async def _confirm_callback(self, entry: _Entry) -> None:
        """The caller keeps the place and is called back: confirm, hang up, outcome callback."""
        leg = entry.leg
        assert leg is not None
        prompt = self._prompt("callback_booked", entry.language, leg)
        if leg.channel is not None and prompt is not None:
            leg.channel.stop_playing()
            await flows.play(leg, prompt)
        self._resolve(entry, "callback")
        if leg.state is not LegState.ENDED:
            await self.b2bua.hangup_call(leg.call, HangupCause.NORMAL, "system")

    # ------------------------------------------------------------------ agents' phones

    async def _ring(self, entry: _Entry, a: act.RingAgent) -> None:
        """Dial all the agent's phones at once; report RingAnswered or RingFailed (a cancel
        ends this silently)."""
        bindings = self.registrar.contacts(a.agent, self.now(), reachable_only=True)
        if not bindings:
            entry.rings.pop(a.agent, None)
            self._feed(ev.RingFailed(agent=a.agent, call=a.call,
                                     reason=ev.RingFailure.UNREACHABLE))
            return
        number, source = entry.customer, entry.source  # a campaign's: whom it called
        call = Call(caller=number, called=a.agent, source=f"queue:{a.queue}",
                    direction="outbound")
        self._offers.add(call)
        why: dict[str, Any] = (
            {"kind": "callback", "callback_id": entry.callback_id} if entry.callback
            else {"kind": "campaign", "campaign": source[9:]} if source.startswith("campaign:")
            else {"kind": "queue"}) | entry.about
        name, info = flows.screen_pop(self.on_offer, entry.call_id, a.agent, queue=a.queue,
                                      number=number, **why)
        log.info("ring_agent", agent=a.agent, call=a.call, queue=a.queue,
                 contact=bindings[0].contact, contacts=len(bindings), callback=a.callback)
        leg = await self.b2bua.dial_fork(
            call, bindings, party=a.agent, from_user=number or "anonymous",
            from_display=f"{name} ({a.queue})" if name else a.queue, timeout=a.timeout,
            info=info,
        )
        if entry.rings.get(a.agent) is not asyncio.current_task():
            await self.b2bua.hangup(leg)  # cancelled just as it was answered
            return
        del entry.rings[a.agent]
        if leg.state is LegState.ANSWERED:
            entry.agent_legs[a.agent] = leg
            self._feed(ev.RingAnswered(agent=a.agent, call=a.call))
            return
        status = int(leg.sip_status or 0)
        reason = _FAILURES.get(status, ev.RingFailure.NO_ANSWER)
        log.info("ring_failed", agent=a.agent, call=a.call, status=status, reason=reason.value)
        self._feed(ev.RingFailed(agent=a.agent, call=a.call, reason=reason))

    def _drop_agent(self, a: act.DropAgentLeg) -> None:
        entry = self._entries.get(a.call)
        leg = entry.agent_legs.pop(a.agent, None) if entry else None
        log.info("drop_agent_leg", agent=a.agent, call=a.call, reason=a.reason)
        if leg is not None:
            self._spawn(self.b2bua.hangup(leg))

    async def _connect(self, entry: _Entry, a: act.Bridge) -> None:
        """Whisper to the agent, bridge, wait for either side to hang up, report it."""
        agent_leg = entry.agent_legs.get(a.agent)
        if agent_leg is None:
            self._feed(ev.CallEnded(call=a.call, hung_up_by=ev.HungUpBy.SYSTEM))
            return
        if a.whisper:
            prompt = self._prompt(a.whisper, entry.language, agent_leg)
            if prompt is not None:
                await flows.play(agent_leg, prompt)
        caller_leg: Leg | None = entry.leg
        if a.callback:
            await self._play(agent_leg, entry.language, ["callback_whisper", f"queue_{a.queue}",
                                                         *_digits(entry.caller, entry.language)])
            caller_leg = await self._dial_back(entry, agent_leg)
        by = ev.HungUpBy.SYSTEM
        if caller_leg is not None and caller_leg.state is LegState.ANSWERED \
                and agent_leg.state is LegState.ANSWERED:
            caller_leg.channel.stop_playing()
            self.b2bua.media.bridge(caller_leg.channel, agent_leg.channel)
            calls = (caller_leg.call, agent_leg.call)  # held: their legs may end meanwhile
            for call in calls:
                call.agent, call.queue = a.agent, a.queue
            self._last[a.agent] = (calls[0].id, a.queue, calls[0].source, time.time())
            log.info("queue_connected", agent=a.agent, call=a.call, queue=a.queue)
            handovers = [x.handover for x in calls]
            await flows.until_first(caller_leg.ended, agent_leg.ended, *handovers)
            if any(h.is_set() for h in handovers):  # a transfer owns both legs now
                self._transferred(entry, a, calls[0].transferred_to or calls[1].transferred_to,
                                  calls[0].attended or calls[1].attended)
                return
            by = ev.HungUpBy.CALLER if _gone(caller_leg) else ev.HungUpBy.AGENT
        elif agent_leg.state is LegState.ENDED:
            by = ev.HungUpBy.AGENT
        elif caller_leg is None or caller_leg.state is LegState.ENDED:
            by = ev.HungUpBy.CALLER
        entry.agent_legs.pop(a.agent, None)
        self._feed(ev.CallEnded(call=a.call, hung_up_by=by))
        if agent_leg.state is not LegState.ENDED:
            await self.b2bua.hangup(agent_leg)
        if a.callback:
            self._entries.pop(entry.id, None)
            if caller_leg is not None and caller_leg.state is not LegState.ENDED:
                await self.b2bua.hangup(caller_leg)
            return
        assert entry.leg is not None
        if entry.leg.channel is not None and not entry.leg.channel.closed:
            self.b2bua.media.unbridge(entry.leg.channel)
        self._resolve(entry, "answered" if entry.leg.state is LegState.ANSWERED else "hangup")

    def _transferred(self, entry: _Entry, a: act.Bridge, target: str, attended: bool) -> None:
        """The connected call was transferred: queue_log TRANSFER, the agent is free, and
        the queue's caller leaves with outcome ``transferred`` (its legs untouched)."""
        leg = entry.agent_legs.pop(a.agent, None)
        if leg is not None:  # the engine lets go of it: a consultation on it is a call in use
            self._offers.discard(leg.call)
            self._in_use_changed(a.agent)
        self._feed(ev.CallTransferred(call=a.call, target=target, attended=attended))
        if a.callback:
            self._entries.pop(entry.id, None)
        if not entry.outcome.done():
            entry.outcome.set_result("transferred")

    async def _play(self, leg: Leg, language: str, names: list[str]) -> None:
        for name in names:
            prompt = self._prompt(name, language, leg)
            if prompt is not None and leg.state is LegState.ANSWERED:
                await flows.play(leg, prompt)

    async def _dial_back(self, entry: _Entry, agent_leg: Leg) -> Leg | None:
        """A callback's turn: the agent hears music while the request's keeper dials the
        customer."""
        music = self._prompt(self.music(entry.queue), entry.language, agent_leg)
        channel = agent_leg.channel
        if agent_leg.state is not LegState.ANSWERED:  # hung up in the whisper
            if self.callbacks is not None and entry.callback_id is not None:
                self.callbacks.released(entry.callback_id)
            return None
        if music is not None and channel is not None and not channel.closed:
            channel.play(music, loop=True)
        if self.callbacks is None or entry.callback_id is None:
            log.warning("callback_not_kept", call=entry.id)
            return None
        leg = await self.callbacks.dial(entry.callback_id, agent_leg)
        return leg if leg is not None and leg.state is LegState.ANSWERED else None

    # ------------------------------------------------------------------ registration

    def _sync(self, agent: str, *, force: bool = False) -> None:
        """Tell the engine whether the agent has a live (and a reachable) binding."""
        if self.engine is None or agent not in self._since:
            return
        now = self.now()
        bindings = self.registrar.contacts(agent, now)
        state = (bool(bindings), any(b.reachable for b in bindings))
        if not force and self._seen.get(agent) == state:
            return
        self._seen[agent] = state
        registered, reachable = state
        self._feed(ev.AgentRegistered(agent) if registered else ev.AgentUnregistered(agent))
        if registered:
            self._feed(ev.AgentReachability(agent, reachable))

    def registration_changed(self, user: str, registered: bool) -> None:
        """A REGISTER added or removed a binding of ``user`` (or one expired)."""
        self._sync(user, force=True)

    def reachability_changed(self, user: str, reachable: bool) -> None:
        """An OPTIONS qualify of one of ``user``'s bindings succeeded or failed."""
        self._sync(user, force=True)

    def device_in_use(self, agent: str, in_use: bool) -> None:
        """The agent's phone is about to start (or ended) a call the ACD did not place before
        any leg of it exists, e.g. a preview call of the dialer. Counted, so overlapping calls
        keep the agent in use; the legs themselves count too (``leg_changed``)."""
        if agent not in self._since:
            return
        count = max(0, self._claims.get(agent, 0) + (1 if in_use else -1))
        self._claims[agent] = count
        if not count:
            del self._claims[agent]
        self._in_use_changed(agent)

    def leg_changed(self, what: str, leg: Leg) -> None:
        """B2BUA hook (``added`` or ``ended``): a leg to or from an agent's phone, any call but
        a queue offer the engine follows (a direct call, a consultation, a conference, a
        transfer to the agent, a dial-out, a preview), makes the phone in use: queue calls
        skip the agent meanwhile (unless the queue has ``ring_in_use``). Trunk legs never
        count; a supervisor's legs are the supervisor's phone's."""
        if leg.trunk or leg.party not in self._since and leg.party not in self._phone_legs:
            return
        legs = self._phone_legs.setdefault(leg.party, {})
        if what == "added":
            legs[leg] = self.now()
        else:
            legs.pop(leg, None)
        if not legs:
            del self._phone_legs[leg.party]
        self._in_use_changed(leg.party)

    def _in_use_changed(self, agent: str) -> None:
        """Tell the engine when the agent's phone goes in use or free."""
        if self.engine is None or agent not in self._since:
            return
        in_use = agent in self._claims or any(
            x.state is not LegState.ENDED and x.call not in self._offers
            for x in self._phone_legs.get(agent, ()))
        if in_use != self.in_use(agent):
            log.info("agent_device_in_use", agent=agent, in_use=in_use)
            self._feed(ev.AgentDeviceInUse(agent, in_use))

    def in_use(self, agent: str) -> bool:
        """True while the agent's phone has a call the ACD did not place."""
        return self.engine is not None and agent in self._since and self.engine.in_use(agent)

    # ------------------------------------------------------------------ agent commands

    def agent_command(self, agent: str, command: str, reason: str = "",
                      queue: str | None = None) -> bool:
        """login, logout (of every queue, or ``queue`` only), pause (with reason: a code or
        name of ``pause_reasons``) or unpause; False when the agent's state does not allow it
        (already being in the target state counts as done). KeyError for an unknown agent,
        ValueError for an unknown queue or pause reason."""
        if self.engine is None or agent not in self._since:
            raise KeyError(agent)
        if queue is not None and (command not in ("login", "logout")
                                  or queue not in self.engine.queue_names):
            raise ValueError(f"unknown queue {queue!r}" if command in ("login", "logout")
                             else f"{command} takes no queue")
        event: ev.Event
        if command == "login":
            event, already = ev.AgentLoggedIn(agent, queue), _LOGGED_IN
        elif command == "logout":
            event, already = ev.AgentLoggedOut(agent, queue), {AgentState.LOGGED_OUT}
        elif command == "pause":
            event, already = ev.AgentPaused(agent, self.pause_reason(reason)), set()
        elif command == "unpause":
            event, already = ev.AgentUnpaused(agent), _LOGGED_IN - {AgentState.PAUSED}
        else:
            raise ValueError(f"unknown agent command {command!r}")
        before = self.engine.agent_state(agent)
        queues = self.engine.logged_in_queues(agent)
        actions = self._feed(event)
        if not any(isinstance(x, act.Ignored) and x.event is event for x in actions):
            return True
        if queue is not None:
            return (queue in queues) == (command == "login") and queue in self._members(agent)
        return before in already

    def restore(self, last: dict[str, tuple[str, str]],
                queues: dict[str, dict[str, bool]]) -> None:
        """Bring the agents back to where the store saw them last (after a restart): logged
        out, or logged in (to the queues they were in) and paused with the reason."""
        for agent, (state, reason) in last.items():
            if agent not in self._since:
                continue
            if state == AgentState.LOGGED_OUT.value:
                self._feed(ev.AgentLoggedOut(agent))
                continue
            member = self._members(agent)
            inside = [q for q in member if queues.get(agent, {}).get(q)] or member
            join: list[str | None] = [*inside] or [None]  # None: an agent of no queue
            for q in join:
                self._feed(ev.AgentLoggedIn(agent, q))
            for q in set(member) - set(inside):
                self._feed(ev.AgentLoggedOut(agent, q))
            if state == AgentState.PAUSED.value:
                self._feed(ev.AgentPaused(agent, reason))
        log.info("agents_restored", agents=len(last))

    def _members(self, agent: str) -> list[str]:
        assert self.engine is not None
        return [q for q in self.engine.queue_names if agent in self.engine.members(q)]

    def pause_reason(self, value: str) -> str:
        """The name of pause reason ``value`` (its code or its name; free text when no
        ``pause_reasons`` are configured); ValueError for one not configured."""
        reasons = self.cfg.pause_reasons
        if not value or not reasons or value in reasons.values():
            return value
        if value in reasons:
            return reasons[value]
        raise ValueError(f"unknown pause reason {value!r} (one of "
                         f"{', '.join(f'{k} {v}' for k, v in reasons.items())})")

    def dispose(self, agent: str, code: str, call_id: str | None = None) -> dict[str, str]:
        """The agent's disposition ``code`` of their last queue call of the hour (or of
        ``call_id``): published for the CDR. KeyError: no such call of the agent; ValueError:
        the queue has no such code."""
        last = self._last.get(agent)
        if last is None or time.time() - last[3] > DISPOSITION_WINDOW \
                or call_id not in (None, last[0]):
            raise KeyError(agent)
        call_id, queue = last[:2]
        q = self.cfg.queue(queue)
        name = q.dispositions.get(code) if q is not None else None
        if q is None or name is None:
            raise ValueError(f"queue {queue} has no disposition {code!r}")
        self.publish(CallDisposition(call_id=call_id, agent=agent, queue=q.name, code=code,
                                     name=name))
        log.info("disposition", agent=agent, call=call_id, queue=q.name, code=code, name=name)
        return {"call": call_id, "agent": agent, "queue": q.name, "code": code,
                "disposition": name}

    def _inbound_last(self, agent: str) -> bool:
        """The agent's last queue call of the hour is an inbound one (a campaign's goes to
        the dialer)."""
        last = self._last.get(agent)
        return last is not None and not last[2].startswith("campaign:") \
            and time.time() - last[3] <= DISPOSITION_WINDOW

    def change_member(self, agent: str, queue: str, *, add: bool | None, tier: int = 1,
                      penalty: int = 0) -> bool:
        """Add ``agent`` to ``queue`` (or remove it: a call in progress goes on; None: set
        its tier and penalty in place); False when it already is (is not) a member, KeyError
        for an unknown agent or queue."""
        if self.engine is None or agent not in self._since or self.cfg.queue(queue) is None:
            raise KeyError(agent)
        event: ev.Event = (ev.MemberAdded(agent, queue, tier, penalty) if add
                           else ev.MemberRemoved(agent, queue) if add is False
                           else ev.MemberChanged(agent, queue, tier, penalty))
        ok = not any(isinstance(x, act.Ignored) for x in self._feed(event))
        log.info({True: "queue_member_added", False: "queue_member_removed",
                  None: "queue_member_changed"}[add], agent=agent, queue=queue, changed=ok)
        return ok

    async def feature_code(self, leg: Leg, user: str, code: str) -> bool:
        """``*41`` log in, ``*42`` log out (``*41<n>``, ``*42<n>``: queue number n only, 1 =
        the first configured), ``*43[code]`` pause (with a ``pause_reasons`` code), ``*44``
        unpause, ``*5<code>`` disposition of the last inbound queue call: answer, confirm (or
        ``not_allowed``), hang up. False when ``code`` is not one of these (``*5`` after a
        campaign call is the dialer's)."""
        key = code[:2] if code.startswith("*5") else code[:3]
        command, arg = _CODES.get(key), code[len(key):]
        if command is None or (arg and not arg.isdigit()) or (command == "unpause" and arg) \
                or (command == "disposition" and not (arg and self._inbound_last(user))):
            return False
        try:
            if command == "disposition":
                ok = bool(self.dispose(user, arg))
            elif command in ("login", "logout") and arg:
                queues = self.cfg.queues
                n = int(arg)
                if not 1 <= n <= len(queues):
                    raise ValueError(f"no queue number {n}")
                ok = self.agent_command(user, command, queue=queues[n - 1].name)
            else:
                ok = self.agent_command(user, command, arg)
        except (KeyError, ValueError) as exc:
            log.info("feature_code_refused", user=user, code=code, error=str(exc))
            ok = False
        log.info("feature_code", user=user, code=code, command=command, ok=ok)
        self.b2bua.answer(leg)
        if await self.b2bua.confirmed(leg):
            prompt = self._prompt(_CONFIRM[command] if ok else "not_allowed", FEATURE_LANGUAGE,
                                  leg)
            if prompt is not None:
                await flows.play(leg, prompt)
        if leg.state is not LegState.ENDED:
            await self.b2bua.hangup_call(leg.call, HangupCause.NORMAL, "system")
        return True

    # ------------------------------------------------------------------ figures

    def queue_stats(self, queue: str | None = None) -> list[dict[str, Any]]:
        """Live figures of every queue (the JSON of GET /api/queues), or of ``queue`` only."""
        assert self.engine is not None
        now = self.now()
        out = []
        pending = self.callbacks.pending() if self.callbacks is not None else {}
        for name in self.engine.queue_names if queue is None else [queue]:
            s = self.engine.stats(name, now, agents=False)
            out.append({
                "name": name, "waiting": s.waiting, "longest_wait": round(s.longest_wait, 1),
                "offered": s.offered, "answered": s.answered, "abandoned": s.abandoned,
                "timed_out": s.timed_out, "exited_empty": s.exited_empty,
                "callbacks": s.callbacks, "callbacks_pending": pending.get(name, 0),
                "answered_within_sl": s.answered_within_target,
                "service_level": _round(s.service_level, 3), "asa": _round(s.asa, 1),
                "aht": _round(s.aht, 1),
                "sl_seconds": self.cfg.queue(name).sl_seconds,  # type: ignore[union-attr]
                "number": self.engine.queue_names.index(name) + 1,  # *41<number>, *42<number>
                "agents": self.engine.members(name),
                "callers": [{"call_id": e.call_id, "caller": e.caller,
                             "callback": e.callback}
                            for e in map(self._entries.get, self.engine.waiting(name))
                            if e is not None],
            })
        return out

    def agent_stats(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Every agent's state and figures (the JSON of GET /api/agents), or ``agent_id``'s."""
        assert self.engine is not None
        now = self.now()
        out = []
        for agent in self.engine.agent_ids if agent_id is None else [agent_id]:
            s = self.engine.agent_stats(agent, now)
            out.append({
                "id": agent, "name": self.names.get(agent, ""), "state": s.state.value,
                "time_in_state": round(now - self._since.get(agent, now), 1),
                "reason": s.pause_reason if s.state is AgentState.PAUSED else "",
                "registered": s.registered, "reachable": s.reachable,
                "in_use": s.in_use, "calls": s.calls,
                "talk_time": round(s.talk_time, 1), "missed_in_row": s.missed_in_row,
                "occupancy": _round(s.occupancy, 3),
                "queues": self.engine.logged_in_queues(agent),
                "call": self._agent_call(agent), "phone_call": self._phone_call(agent, now),
            })
        return out

    def _phone_call(self, agent: str, now: float) -> dict[str, Any] | None:
        """The latest live call on the agent's phone that no queue offer gave (``in_use``):
        ``kind`` direct, dial_out, transfer (to the agent), preview or callback; ``outgoing``
        (the agent or its campaign called), the ``other`` party's number, ``answered`` (the
        agent's leg) and ``seconds`` since the agent's leg came."""
        live = [(added, x) for x, added in self._phone_legs.get(agent, {}).items()
                if x.state is not LegState.ENDED and x.call not in self._offers]
        if not live:
            return None
        added, leg = max(reversed(live), key=lambda item: item[0])  # ties: the later leg
        call = leg.call
        placed = leg.direction == "inbound"  # the agent's phone sent the INVITE
        kind = call.source.partition(":")[0]
        kind = {"campaign": "preview", "callback": "callback"}.get(kind) or (
            "dial_out" if placed and call.direction == "outbound" else
            "transfer" if call.transfers and not placed else "direct")
        outgoing = placed or call.direction == "outbound"
        other = call.customer if call.direction == "outbound" else (
            call.called if placed else call.caller)
        return {"call_id": call.id, "kind": kind, "outgoing": outgoing, "other": other,
                "answered": leg.state is LegState.ANSWERED, "seconds": round(now - added, 1)}

    def _agent_call(self, agent: str) -> dict[str, Any] | None:
        """The queue call ringing or connected at ``agent`` (the customer's call id)."""
        for e in self._entries.values():
            if agent in e.rings or agent in e.agent_legs:
                return {"call_id": e.call_id, "caller": e.caller,
                        "queue": e.queue, "answered": agent in e.agent_legs}
        return None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("acd_task_failed", error=repr(task.exception()), exc_info=task.exception())


def _digits(number: str, language: str) -> list[str]:
    try:
        return say_digits(number.lstrip("+"), language)
    except SayError:
        return []


def _gone(leg: Leg) -> bool:
    """The leg has ended (a function, so a state checked before an await is read afresh)."""
    return leg.state is LegState.ENDED
