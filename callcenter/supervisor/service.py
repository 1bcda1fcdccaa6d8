"""Supervisor sessions on live calls, and the call recording policy.

A session joins a supervisor's leg to an agent's call: the caller's and the agent's channels
leave their bridge and, with the supervisor's, go into a mix on the media clock whose matrix
follows each supervisor's mode (``modes.matrix``). When the last supervisor leaves, the two are
bridged again. Sessions start from a feature code (``*81/*82/*83<agent>``, keys 4/5/6 switch
mode) or from the HTTP API (the server calls the supervisor's phone). Every session is a row of
``supervisor_sessions`` and a ``supervisor.step`` event on the bus (the store sink adds it to
the supervised call's ``call_events``).

Recording: when a bridge starts (``MediaEngine.on_bridge``) and the policy says so (every
call, or calls of listed queues), the caller's channel records a stereo WAV: what the caller
says on the left, what the caller hears (the agent, and a supervisor only in barge) on the
right. Its path is published (``call.recording``) and lands in the CDR's ``recording`` column.
The recording follows the caller through transfers: one file per call, which goes on (hold
music and a queue's wait included) while the caller's leg lives and a transfer has the call.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
import structlog

from callcenter.calls import flows
from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.events.bus import CallRecording, SupervisorStep
from callcenter.media.engine import Channel, MediaError, Mix
from callcenter.media.g711 import PCMA, PCMU
from callcenter.media.prompts import PromptError
from callcenter.supervisor.log import SessionLog
from callcenter.supervisor.modes import CODES, KEYS, Mode, Role, matrix

if TYPE_CHECKING:
    from callcenter.calls.services import CallServices
    from callcenter.config import Config

log = structlog.get_logger("supervisor")

PROMPT_LANGUAGE = "pl"
NOT_ON_CALL_PROMPT = "agent_not_on_call"


class SupervisorError(Exception):
    """A session cannot be started or changed; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class Session:
    """One supervisor on one agent's (or one call's) conversation."""

    supervisor: str
    agent: str | None
    mode: Mode
    origin: str  # feature_code | api
    call_id: str | None = None  # a specific call (API), else the agent's current one
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    leg: Leg | None = None
    conference: Conference | None = None
    state: str = "starting"  # starting, dialing, waiting, active, ended
    start: float = field(default_factory=time.time)
    joined: float | None = None
    modes: list[dict[str, Any]] = field(default_factory=list)
    result: str = ""
    ended_by: str = ""
    joined_event: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def to_dict(self) -> dict[str, Any]:
        conf = self.conference
        return {
            "id": self.id, "supervisor": self.supervisor, "agent": self.agent,
            "call": conf.call_id if conf else self.call_id, "mode": self.mode.value,
            "state": self.state, "origin": self.origin, "start": self.start,
            "joined": self.joined, "modes": self.modes, "result": self.result or None,
            "ended_by": self.ended_by or None,
        }


@dataclass(eq=False)
class Conference:
    """A supervised conversation: the caller's and agent's legs and the sessions on them."""

    caller: Leg
    agent: Leg
    sessions: list[Session] = field(default_factory=list)
    mix: Mix | None = None
    watcher: asyncio.Task[None] | None = None
    #: the caller's and the agent's calls, held: an ended leg refers to its call weakly
    calls: tuple[Call, Call] = field(init=False)

    def __post_init__(self) -> None:
        self.calls = (self.caller.call, self.agent.call)

    @property
    def call_id(self) -> str:
        """The call record the conversation belongs to (the caller's call)."""
        return self.calls[0].id


@dataclass
class Recorded:
    """Whom a recorded caller talks to, and the call's transfer count when bridged to it."""

    partner: Leg
    transfers: int
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class SupervisorService:
    """Feature codes ``*81``-``*83``, API sessions, and the recording policy."""

    def __init__(
        self, services: CallServices, *, cfg: Config, db: sqlite_utils.Database,
        campaign_records: Callable[[Call], bool] = lambda call: False,
    ) -> None:
        """``campaign_records(call)``: the call is one of a campaign with ``record: true``."""
        self.services = services
        self.b2bua = services.b2bua
        self.media = services.b2bua.media
        self.reconfigure(cfg)
        self.campaign_records = campaign_records
        self.log = SessionLog(db)
        self.sessions: dict[str, Session] = {}
        self.conferences: dict[Leg, Conference] = {}  # agent leg -> conference
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recorded: dict[Leg, Recorded] = {}  #: a recording caller's leg -> its partner
        self.media.on_bridge.append(self._on_bridge)

    def reconfigure(self, cfg: Config) -> None:
        """Take (a reloaded) configuration: sessions in progress go on."""
        self.cfg = cfg.supervisor
        self.recording = cfg.recording
        self.recordings_base = Path(cfg.database).parent  # for a relative recording.directory
        self.members = {q.name: {m.user for m in q.members} for q in cfg.queues}
        self.roles = {u.user: u.role for u in cfg.users}

    # ------------------------------------------------------------------ entry points

    async def feature_code(self, leg: Leg, user: str, code: str) -> bool:
        """``*81<agent>`` listen, ``*82<agent>`` whisper, ``*83<agent>`` barge. False when
        ``code`` is not one of these."""
        mode = CODES.get(code[:3])
        if mode is None:
            return False
        agent = code[3:]
        session = Session(supervisor=user, agent=agent, mode=mode, origin="feature_code",
                          leg=leg)
        problem = self._refusal(user, agent)
        b2bua = self.b2bua
        b2bua.answer(leg)
        if problem is not None:
            log.info("supervisor_refused", user=user, agent=agent, mode=mode.value,
                     reason=problem)
            self._log_start(session)
            self._finish(session, "refused", "system", hangup=False)
            if await b2bua.confirmed(leg):
                await self._say(leg, "not_allowed")
            await self._hangup(leg)
            return True
        if not await b2bua.confirmed(leg):
            return True
        await self._run(session)
        return True

    def start_api(self, supervisor: str, mode: str, *, agent: str | None = None,
                  call_id: str | None = None) -> Session:
        """Call the supervisor's phone and join the agent's (or the given) call when answered."""
        try:
            m = Mode(mode)
        except ValueError:
            raise SupervisorError(422, f"mode must be one of {', '.join(Mode)}") from None
        if self.roles.get(supervisor) != "supervisor":
            raise SupervisorError(403, f"{supervisor!r} is not a user with role supervisor")
        if bool(agent) == bool(call_id):
            raise SupervisorError(422, "give either agent or call")
        target = self._find(agent, call_id)
        if call_id and target is None:
            raise SupervisorError(404, f"no live conversation in call {call_id!r}")
        if agent:
            problem = self._refusal(supervisor, agent)
            if problem is not None:
                raise SupervisorError(403, problem)
            if target is None and not self.cfg.wait_for_call:
                raise SupervisorError(409, f"agent {agent} is not on a call")
        elif target is not None:
            agent = target[1].party
            problem = self._refusal(supervisor, agent)
            if problem is not None:
                raise SupervisorError(403, problem)
        bindings = self.services.registrar.contacts(supervisor, self.services.now(),
                                                    reachable_only=True)
        if not bindings:
            raise SupervisorError(409, f"supervisor {supervisor}'s phone is not registered")
        session = Session(supervisor=supervisor, agent=agent, mode=m, origin="api",
                          call_id=call_id)
        self._spawn(self._run_api(session, bindings[0]))
        return session

    def set_mode(self, session_id: str, mode: str) -> Session:
        session = self._live(session_id)
        try:
            m = Mode(mode)
        except ValueError:
            raise SupervisorError(422, f"mode must be one of {', '.join(Mode)}") from None
        self._switch(session, m)
        return session

    def end(self, session_id: str) -> Session:
        session = self._live(session_id)
        self._finish(session, "ended", "api")
        return session

    def list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.sessions.values()]

    def get(self, session_id: str) -> dict[str, Any] | None:
        live = self.sessions.get(session_id)
        if live is not None:
            return live.to_dict()
        return next((r for r in self.log.recent(1000) if r["id"] == session_id), None)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            self._finish(session, "ended", "system")
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ policy

    def _refusal(self, user: str, agent: str) -> str | None:
        """Why ``user`` may not supervise ``agent``, or None."""
        if self.roles.get(user) != "supervisor":
            return "not a supervisor"
        if agent not in self.roles or agent == user:
            return "unknown agent"
        allowed = self.cfg.queues.get(user)
        if allowed is not None:
            queues = {name for name, users in self.members.items() if agent in users}
            if not queues & set(allowed):
                return "agent not in the supervisor's queues"
        return None

    # ------------------------------------------------------------------ finding calls

    def _leg_of(self, channel: Channel) -> Leg | None:
        return self.b2bua.leg_of(channel)

    def _find(self, agent: str | None, call_id: str | None) -> tuple[Leg, Leg] | None:
        """(caller leg, agent leg) of the agent's (or the call's) bridged conversation."""
        for conf in self.conferences.values():
            if (agent and conf.agent.party == agent) or (call_id and call_id in (
                    conf.calls[0].id, conf.calls[1].id)):
                return conf.caller, conf.agent
        candidates: list[Leg] = []
        for leg in self.b2bua.live_legs.values():  # queue and campaign agent legs too
            if leg.state is not LegState.ANSWERED or leg.channel is None \
                    or leg.channel.peer is None:
                continue
            if agent and leg.party != agent:
                continue
            if call_id and leg.call.id != call_id:
                continue
            candidates.append(leg)
        # the agent is the leg the server placed (outbound), the caller the one bridged to it
        candidates.sort(key=lambda x: x.direction != "outbound")
        for leg in candidates:
            other = self._leg_of(leg.channel.peer)
            if other is not None and other.state is LegState.ANSWERED:
                if call_id and not agent and leg.direction != "outbound":
                    leg, other = other, leg
                return other, leg
        return None

    # ------------------------------------------------------------------ sessions

    async def _run_api(self, session: Session, binding: Any) -> None:
        session.state = "dialing"
        self.sessions[session.id] = session
        self._log_start(session)
        call = Call(caller="supervisor", called=session.supervisor, source="api:supervisor",
                    direction="outbound")
        b2bua = self.b2bua
        leg = await b2bua.dial(
            call, target_uri=binding.contact, dest=binding.source,
            transport=binding.transport, party=session.supervisor, from_user="supervisor",
            from_display=f"{session.mode.value} {session.agent or session.call_id}",
        )
        if leg.state is not LegState.ANSWERED:
            self._finish(session, "no_answer", "supervisor", hangup=False)
            return
        session.leg = leg
        if session.state == "ended":  # deleted while ringing
            await self._hangup(leg)
            return
        await self._run(session)

    async def _run(self, session: Session) -> None:
        """Join (or wait for) the conversation, follow mode keys until somebody leaves."""
        leg = session.leg
        assert leg is not None
        if session.id not in self.sessions:
            self.sessions[session.id] = session
            self._log_start(session)
        target = self._find(session.agent, session.call_id)
        if target is not None:
            self._join(session, *target)
        elif session.call_id or not self.cfg.wait_for_call:
            log.info("agent_not_on_call", supervisor=session.supervisor, agent=session.agent)
            await self._say(leg, NOT_ON_CALL_PROMPT)
            self._finish(session, "not_on_call", "system")
            return
        else:
            session.state = "waiting"
            log.info("supervisor_waiting", supervisor=session.supervisor, agent=session.agent)
        deadline = asyncio.get_running_loop().time() + self.cfg.wait_timeout
        while leg.state is LegState.ANSWERED and session.state != "ended":
            timeout = 1.0
            if session.state == "waiting":
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    await self._say(leg, NOT_ON_CALL_PROMPT)
                    self._finish(session, "timeout", "system")
                    return
                timeout = min(timeout, remaining)
            digit = await flows.next_digit(leg, timeout)
            if digit in KEYS:
                self._switch(session, KEYS[digit])
        if session.state != "ended":
            self._finish(session, "ended", "supervisor")

    def _join(self, session: Session, caller: Leg, agent: Leg) -> None:
        conf = self.conferences.get(agent)
        if conf is None:
            conf = Conference(caller=caller, agent=agent)
            self.conferences[agent] = conf
            conf.watcher = self._spawn(self._watch(conf))
        conf.sessions.append(session)
        session.conference = conf
        session.agent = agent.party
        session.state = "active"
        session.joined = time.time()
        session.joined_event.set()
        try:
            self._remix(conf)
        except MediaError:
            log.exception("supervisor_mix_failed")
            self._finish(session, "failed", "system")
            return
        call = conf.calls[0]
        queue = self._queue_of(call) or ""
        self.log.update(session.id, call_id=call.id, joined=session.joined, queue=queue,
                        agent=agent.party)
        self._call_event(call, "supervisor_joined", session)
        log.info("supervisor_joined", session=session.id, supervisor=session.supervisor,
                 agent=agent.party, mode=session.mode.value, call_id=call.id)

    def _remix(self, conf: Conference) -> None:
        media = self.media
        active = [(s, s.leg) for s in conf.sessions if s.leg is not None
                  and s.leg.channel is not None and not s.leg.channel.closed]
        channels = [conf.caller.channel, conf.agent.channel, *(leg.channel for _, leg in active)]
        m = matrix([Role.CALLER, Role.AGENT, *(s.mode for s, _ in active)])
        if conf.mix is not None and conf.mix.active and conf.mix.channels == channels:
            media.set_matrix(conf.mix, m)
        else:
            conf.mix = media.mix(channels, m)

    def _switch(self, session: Session, mode: Mode) -> None:
        if mode is session.mode:
            return
        session.mode = mode
        session.modes.append({"mode": mode.value, "at": time.time()})
        self.log.update(session.id, modes=session.modes)
        log.info("supervisor_mode", session=session.id, supervisor=session.supervisor,
                 mode=mode.value)
        conf = session.conference
        if conf is not None and session.state == "active":
            self._remix(conf)
            self._call_event(conf.calls[0], "supervisor_mode", session)

    def _leave(self, session: Session) -> None:
        """Take the session out of its conference; the last one out re-bridges the call."""
        conf = session.conference
        if conf is None or session not in conf.sessions:
            return
        conf.sessions.remove(session)
        self._call_event(conf.calls[0], "supervisor_left", session)
        if conf.sessions:
            self._remix(conf)
            return
        self._dissolve(conf)
        caller, agent = conf.caller, conf.agent
        if caller.state is LegState.ANSWERED and agent.state is LegState.ANSWERED \
                and not caller.channel.closed and not agent.channel.closed:
            self.media.bridge(caller.channel, agent.channel)

    def _dissolve(self, conf: Conference) -> None:
        self.conferences.pop(conf.agent, None)
        if conf.mix is not None and conf.mix.active:
            self.media.unmix(conf.mix)
        conf.mix = None
        if conf.watcher is not None and conf.watcher is not asyncio.current_task():
            conf.watcher.cancel()

    async def _watch(self, conf: Conference) -> None:
        """Caller or agent gone: every supervisor on the conversation is hung up."""
        waits = [fired(conf.caller.ended),
                 fired(conf.agent.ended)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        side = _who_left(conf)
        self._dissolve(conf)
        for session in list(conf.sessions):
            conf.sessions.remove(session)
            self._finish(session, "ended", side)

    def _finish(self, session: Session, result: str, ended_by: str, *,
                hangup: bool = True) -> None:
        if session.state == "ended":
            return
        session.state = "ended"
        session.result, session.ended_by = result, ended_by
        self._leave(session)
        self.sessions.pop(session.id, None)
        session.done.set()
        self.log.update(session.id, end=time.time(), result=result, ended_by=ended_by,
                        modes=session.modes)
        log.info("supervisor_session_ended", session=session.id, supervisor=session.supervisor,
                 agent=session.agent, result=result, ended_by=ended_by)
        leg = session.leg
        if hangup and leg is not None and leg.state is not LegState.ENDED:
            self._spawn(self._hangup(leg))

    # ------------------------------------------------------------------ recording

    def _on_bridge(self, a: Channel, b: Channel) -> None:
        """A conversation started (``a`` the caller's channel, ``b`` the agent's): record it
        if the policy says so, and bring in supervisors waiting for the agent."""
        caller, agent = self._leg_of(a), self._leg_of(b)
        if caller is None or agent is None:
            return
        self._record(caller, agent)
        waiting = [s for s in self.sessions.values()
                   if s.state == "waiting" and s.agent in (agent.party, caller.party)]
        for session in waiting:
            if session.agent == caller.party and session.agent != agent.party:
                self._join(session, agent, caller)
            else:
                self._join(session, caller, agent)

    def _record(self, caller: Leg, agent: Leg) -> None:
        call = caller.call
        recorded = self._recorded.get(caller)
        if recorded is not None:  # bridged again (a transfer): the recording goes on
            recorded.partner, recorded.transfers = agent, call.transfers
            recorded.changed.set()
        if getattr(call, "recording", None) is not None:
            return
        rec = self.recording
        if not rec.calls:
            queue = self._queue_of(call)
            campaign = self.campaign_records(call)
            if not campaign and (queue is None or queue not in rec.queues):
                return
        directory = rec.directory
        if not directory.is_absolute():
            directory = self.recordings_base / directory
        path = directory / time.strftime("%Y-%m-%d") / f"{call.id}.wav"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            caller.channel.start_recording(path, stereo=True)
        except OSError:
            log.exception("recording_failed", path=str(path))
            return
        call.recording = str(path)
        log.info("recording_started", call_id=call.id, path=str(path), agent=agent.party)
        self.services.publish(CallRecording(call_id=call.id, path=str(path)))
        self._recorded[caller] = Recorded(agent, call.transfers)
        self._spawn(self._stop_recording(caller))

    async def _stop_recording(self, caller: Leg) -> None:
        """The conversation is over when either leaves (the caller may stay, e.g. a survey),
        unless a transfer took the call since the partner was bridged: then the recording
        goes on with the caller's next partner."""
        rec = self._recorded[caller]
        try:
            while not caller.ended.is_set():
                rec.changed.clear()
                partner = rec.partner
                await flows.until_first(caller.ended, partner.ended, rec.changed)
                if rec.changed.is_set() or caller.ended.is_set():
                    continue
                if caller.call.transfers == rec.transfers:
                    break
                await flows.until_first(caller.ended, rec.changed)  # the next partner
        finally:
            del self._recorded[caller]
        if caller.channel is not None:
            caller.channel.stop_recording()

    def _queue_of(self, call: Call) -> str | None:
        """The queue the call went through (``Call.queue``, set by the QueueRunner)."""
        return call.queue

    # ------------------------------------------------------------------ helpers

    def _live(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise SupervisorError(404, f"no live session {session_id!r}")
        return session

    def _log_start(self, session: Session) -> None:
        if not session.modes:
            session.modes.append({"mode": session.mode.value, "at": session.start})
        self.log.started({
            "id": session.id, "supervisor": session.supervisor, "agent": session.agent or "",
            "call_id": session.call_id or "", "origin": session.origin, "start": session.start,
            "modes": session.modes,
        })

    def _call_event(self, call: Call, kind: str, session: Session) -> None:
        self.services.publish(SupervisorStep(
            call_id=call.id, step=kind, session=session.id, supervisor=session.supervisor,
            agent=session.agent, mode=session.mode.value))

    async def _say(self, leg: Leg, name: str) -> None:
        codec = PCMA if leg.codec == "PCMA" else PCMU
        try:
            prompt = self.services.prompts.get(name, PROMPT_LANGUAGE, codec)
        except PromptError:
            try:
                prompt = self.services.prompts.get("not_allowed", PROMPT_LANGUAGE, codec)
            except PromptError:
                return
        await flows.play(leg, prompt)

    async def _hangup(self, leg: Leg) -> None:
        if leg.state is not LegState.ENDED:
            await self.b2bua.hangup_call(leg.call, HangupCause.NORMAL, "system")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _who_left(conf: Conference) -> str:
    """"caller" or "agent": who ended the conversation (both legs may be gone by now)."""
    if conf.caller.state is not LegState.ENDED:
        return "agent"
    if conf.agent.state is not LegState.ENDED:
        return "caller"
    side = conf.calls[1].hangup_side  # "caller" = the inbound leg, "callee" = outbound
    if side in ("caller", "callee"):
        return "agent" if (side == "callee") == (conf.agent.direction == "outbound") else "caller"
    return "caller"
