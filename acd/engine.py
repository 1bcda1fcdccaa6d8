"""The ACD engine: events in, actions out, time passed in (no sockets, no clock).

::

    engine = AcdEngine(queues=[QueueConfig(name="sales")],
                       agents=[AgentConfig(id="1001", queues=(Membership(queue="sales"),))],
                       rng=random.Random(7))
    actions = engine.handle(CallArrived(call="c1", queue="sales"), now)
    when = engine.next_deadline()   # re-arm one timer; send Tick() then (early is harmless)

The engine owns every timer (wrap-up, announcements, max wait, tiers, retry, watchdogs) and
fires the due ones at the start of each ``handle``. The live side owns the ring timer (it
reports ``RingFailed(no_answer)``); the watchdog frees an agent left ringing longer than
``ring_timeout + watchdog_grace`` if that report never comes.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from acd import actions as act
from acd import events as ev
from acd.actions import Action, ExitReason, QueueEvent
from acd.config import AgentConfig, EngineDefault, InvalidSetting, Membership, QueueConfig
from acd.records import AgentRecord, CallRecord, QueueRecord
from acd.states import TRANSITIONS, AgentInput, AgentState, Effect
from acd.strategies import get_strategy
from acd.today import QUEUE_COUNTERS, DayTotals

_WRAP, _RING_WD, _CALL_WD, _ANNOUNCE, _MAX_WAIT, _DISPATCH = range(6)
_AGENT_TIMERS = {_WRAP: AgentState.WRAP_UP, _RING_WD: AgentState.RINGING,
                 _CALL_WD: AgentState.ON_CALL}
_MISSES = (ev.RingFailure.NO_ANSWER, ev.RingFailure.REJECTED)
_AVAILABLE = AgentState.AVAILABLE
_RINGING = AgentState.RINGING
_STAFFED_OUT = (AgentState.LOGGED_OUT, AgentState.PAUSED)
_BUSY = (AgentState.ON_CALL, AgentState.WRAP_UP)
_WORKING = (AgentState.AVAILABLE, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)


class AcdError(Exception):
    """The engine was misused (unknown queue or agent, a call id used twice): a bug in the
    caller, not a race. Races come back as :class:`~acd.actions.Ignored` actions."""


@dataclass(frozen=True, slots=True)
class AgentStats:
    agent: str
    state: AgentState
    pause_reason: str
    registered: bool
    reachable: bool
    in_use: bool  #: the phone is on a call the ACD did not place (``AgentDeviceInUse``)
    calls: int
    talk_time: float
    missed_in_row: int
    occupancy: float | None  # (on call + wrap-up) / (logged in and not paused); None: no time


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Live figures of one queue since start (or ``reset_stats``).

    ``service_level``: answered within ``sl_seconds`` over calls with an outcome (answered,
    abandoned, timed out, left empty); ``asa``: mean wait of answered calls; ``aht``: mean talk
    plus wrap-up. ``None`` where there is nothing to divide by.
    """

    queue: str
    waiting: int
    longest_wait: float
    offered: int
    answered: int
    answered_within_target: int
    abandoned: int
    timed_out: int
    exited_empty: int
    callbacks: int
    service_level: float | None
    asa: float | None
    aht: float | None
    agents: tuple[AgentStats, ...]


class AcdEngine:
    """Queues, agents and the choice of who takes which call. See the module docstring.

    ``auto_pause_after``: pause an agent after this many missed rings in a row (None: never),
    for queues that do not set their own (``QueueConfig.auto_pause_after``). Misses are counted
    per queue: an agent is paused once it missed Q's threshold of Q's rings in a row; answering
    any call, or an unpause, starts every count afresh.
    ``watchdog_grace``: extra seconds past a queue's ring timeout before the watchdog frees a
    ringing agent. ``max_call``: the watchdog ends connected calls older than this (None: off).
    ``records``: emit :class:`AgentStateChanged` and :class:`QueueLogEntry` (the simulator may
    turn them off for speed; statistics are kept either way).
    """

    def __init__(
        self,
        *,
        queues: Sequence[QueueConfig],
        agents: Sequence[AgentConfig],
        rng: random.Random | None = None,
        now: float = 0.0,
        auto_pause_after: int | None = 3,
        watchdog_grace: float = 5.0,
        max_call: float | None = 4 * 3600.0,
        records: bool = True,
    ) -> None:
        self._rng = rng if rng is not None else random.Random(0)
        self._grace = watchdog_grace
        self._max_call = max_call
        self._records = records
        self._queues: dict[str, QueueRecord] = {}
        self._agents: dict[str, AgentRecord] = {}
        self._calls: dict[str, CallRecord] = {}
        self._free: dict[str, AgentRecord] = {}  # offerable: available, registered, reachable
        self._timers: list[tuple[float, int, int, Any, int]] = []
        self._seq = 0
        self._now = now
        self._out: list[Action] = []
        self._dirty = False
        self._auto_pause_default = auto_pause_after
        self._removed_queues: set[str] = set()  # no new calls; dropped once empty
        for qc in queues:
            if qc.name in self._queues:
                raise InvalidSetting(f"queue {qc.name!r} is defined twice")
            get_strategy(qc.strategy)
            self._queues[qc.name] = QueueRecord(cfg=qc)
        self._strategy = {name: get_strategy(q.cfg.strategy) for name, q in self._queues.items()}
        self._auto_pause: dict[str, int | None] = {
            name: auto_pause_after if isinstance(q.cfg.auto_pause_after, EngineDefault)
            else q.cfg.auto_pause_after for name, q in self._queues.items()}
        for qc in queues:
            if qc.overflow is not None and qc.overflow not in self._queues:
                raise InvalidSetting(f"queue {qc.name!r}: overflow queue {qc.overflow!r} not defined")
        for ac in agents:
            if ac.id in self._agents:
                raise InvalidSetting(f"agent {ac.id!r} is defined twice")
            rec = AgentRecord.from_config(ac, now)
            rec.acc_since = now
            self._agents[ac.id] = rec
            for m in ac.queues:
                q = self._queues.get(m.queue)
                if q is None:
                    raise InvalidSetting(f"agent {ac.id!r}: queue {m.queue!r} not defined")
                q.order[ac.id] = len(q.members)
                q.members.append(rec)
            self._refresh(rec)
        self._max_tier = {
            n: max((a.tiers[n][0] for a in q.members), default=1) for n, q in self._queues.items()
        }
        self._penalised = {n for n, q in self._queues.items()
                           if any(a.tiers[n][1] for a in q.members)}
        self._in_use: set[str] = set()
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.CallArrived: self._call_arrived,
            ev.CallerHungUp: self._caller_hung_up,
            ev.KeyPressed: self._key_pressed,
            ev.CallbackCancelled: self._callback_cancelled,
            ev.AgentLoggedIn: self._logged_in,
            ev.AgentLoggedOut: self._logged_out,
            ev.MemberAdded: self._member_added,
            ev.MemberRemoved: self._member_removed,
            ev.MemberChanged: self._member_changed,
            ev.AgentSkills: self._agent_skills,
            ev.AgentAdded: self._agent_added,
            ev.AgentRemoved: self._agent_removed,
            ev.QueueConfigured: self._queue_configured,
            ev.QueueRemoved: self._queue_removed,
            ev.AgentPaused: self._paused,
            ev.AgentUnpaused: self._unpaused,
            ev.AgentRegistered: self._registered,
            ev.AgentUnregistered: self._unregistered,
            ev.AgentReachability: self._reachability,
            ev.AgentDeviceInUse: self._device_in_use,
            ev.RingAnswered: self._ring_answered,
            ev.RingFailed: self._ring_failed,
            ev.CallEnded: self._call_ended,
            ev.CallTransferred: self._call_transferred,
            ev.WrapUpEnded: self._wrap_up_ended,
            ev.Tick: self._tick,
        }

    # ------------------------------------------------------------------ the API

    def handle(self, event: ev.Event, now: float) -> list[Action]:
        """Feed one event at time ``now`` (monotonic seconds); return the actions, in order."""
        self._now = now
        out: list[Action] = []
        self._out = out
        timers = self._timers
        if timers and timers[0][0] <= now:
            self._fire_timers(now)
        self._handlers[type(event)](event)
        if self._dirty:
            self._dispatch()
        if self._removed_queues:
            self._drop_removed_queues()
        return out

    def next_deadline(self) -> float | None:
        """When the engine next needs a ``Tick`` (None: no timer pending)."""
        timers = self._timers
        while timers and not self._timer_valid(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def stats(self, queue: str, now: float, *, agents: bool = True) -> QueueStats:
        """The queue's figures; ``agents=False`` leaves out the members' figures (``agents``
        is then empty; :meth:`members` names them without the O(members) work)."""
        q = self._queue(queue)
        cfg = q.cfg
        resolved = q.answered + q.abandoned + q.timed_out + q.exited_empty
        longest = max((now - c.entered for c in q.waiting if not c.callback), default=0.0)
        aht = None
        if q.completed:
            wrap = q.wrap_sum / q.wrap_count if q.wrap_count else cfg.wrapup
            aht = q.talk_sum / q.completed + wrap
        return QueueStats(
            queue=queue,
            waiting=len(q.waiting),
            longest_wait=longest,
            offered=q.offered,
            answered=q.answered,
            answered_within_target=q.answered_in_sl,
            abandoned=q.abandoned,
            timed_out=q.timed_out,
            exited_empty=q.exited_empty,
            callbacks=q.callbacks,
            service_level=q.answered_in_sl / resolved if resolved else None,
            asa=q.wait_answered / q.answered if q.answered else None,
            aht=aht,
            agents=tuple(self.agent_stats(a.id, now) for a in q.members) if agents else (),
        )

    def members(self, queue: str) -> list[str]:
        """Ids of the queue's member agents, in the order ``stats().agents`` lists them."""
        return [a.id for a in self._queue(queue).members]

    def agent_stats(self, agent: str, now: float) -> AgentStats:
        a = self._agent(agent)
        times = dict(a.state_time)
        times[a.state] = times.get(a.state, 0.0) + now - a.acc_since
        staffed = sum(times.get(s, 0.0) for s in _WORKING)
        busy = sum(times.get(s, 0.0) for s in _BUSY)
        return AgentStats(
            agent=a.id, state=a.state, pause_reason=a.pause_reason, registered=a.registered,
            reachable=a.reachable, in_use=a.in_use, calls=a.calls_taken, talk_time=a.talk_time,
            missed_in_row=a.missed_in_row, occupancy=busy / staffed if staffed > 0 else None,
        )

    def set_auto_pause_after(self, queue: str, n: int | None) -> None:
        """Change ``queue``'s auto-pause threshold (None: its rings never pause an agent)."""
        self._queue(queue)
        if n is not None and n < 1:
            raise InvalidSetting(f"queue {queue!r}: auto_pause_after must be >= 1 (or None)")
        self._auto_pause[queue] = n

    def auto_pause_after(self, queue: str) -> int | None:
        """``queue``'s auto-pause threshold in effect."""
        self._queue(queue)
        return self._auto_pause[queue]

    def add_stats(self, totals: DayTotals) -> None:
        """Add figures counted elsewhere (today's before a restart, folded from the queue log).

        Queues and agents the engine does not know are skipped (the config changed)."""
        for name, t in totals.queues.items():
            q = self._queues.get(name)
            if q is not None:
                for key in QUEUE_COUNTERS:
                    setattr(q, key, getattr(q, key) + getattr(t, key))
        for agent, at in totals.agents.items():
            a = self._agents.get(agent)
            if a is not None:
                a.calls_taken += at.calls
                a.talk_time += at.talk_time

    def reset_stats(self, now: float) -> None:
        """Start the statistics afresh (a new day, or the end of a simulation's warm-up)."""
        for q in self._queues.values():
            for key in QUEUE_COUNTERS:
                setattr(q, key, type(getattr(q, key))())
        for a in self._agents.values():
            a.calls_taken = 0
            a.talk_time = 0.0
            a.state_time = {}
            a.acc_since = now

    def agent_state(self, agent: str) -> AgentState:
        return self._agent(agent).state

    def in_use(self, agent: str) -> bool:
        """The agent's phone is on a call the ACD did not place (``AgentDeviceInUse``)."""
        return self._agent(agent).in_use

    def logged_in_queues(self, agent: str) -> list[str]:
        """The member queues ``agent`` is logged in to (offered calls of when available)."""
        a = self._agent(agent)
        if a.state is AgentState.LOGGED_OUT:
            return []
        return [q for q in a.tiers if q not in a.away]

    def waiting(self, queue: str) -> list[str]:
        """Call ids in the queue in the order they will be served (ringing ones included)."""
        return [c.id for c in self._queue(queue).waiting]

    @property
    def queue_names(self) -> list[str]:
        """The queues that take calls (a removed one still serving its calls is left out)."""
        return [n for n in self._queues if n not in self._removed_queues]

    @property
    def agent_ids(self) -> list[str]:
        """The configured agents (a removed one still on its last call is left out)."""
        return [a for a, rec in self._agents.items() if not rec.removed]

    # ------------------------------------------------------------------ helpers

    def _queue(self, name: str) -> QueueRecord:
        try:
            return self._queues[name]
        except KeyError:
            raise AcdError(f"unknown queue {name!r}") from None

    def _agent(self, agent_id: str) -> AgentRecord:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise AcdError(f"unknown agent {agent_id!r}") from None

    def _log(self, q: QueueRecord, call: CallRecord, event: QueueEvent, **kw: Any) -> None:
        if self._records:
            self._out.append(act.QueueLogEntry(self._now, q.cfg.name, call.id, event, **kw))

    def _agent_log(self, a: AgentRecord, event: QueueEvent, queues: list[str],
                   detail: str = "") -> None:
        """An agent's queue log rows (call ``NONE``, as Asterisk writes them), one a queue."""
        if self._records:
            self._out += [act.QueueLogEntry(self._now, q, "NONE", event, agent=a.id,
                                            detail=detail) for q in queues]

    def _push(self, when: float, kind: int, target: Any, token: int) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, kind, target, token))

    def _timer_valid(self, entry: tuple[float, int, int, Any, int]) -> bool:
        _, _, kind, target, token = entry
        if kind in _AGENT_TIMERS:
            return target.epoch == token and target.state is _AGENT_TIMERS[kind]
        return (target.epoch == token and target.agent is None
                and self._calls.get(target.id) is target)

    def _refresh(self, a: AgentRecord) -> None:
        if a.state is _AVAILABLE and a.registered and a.reachable:
            if a.id not in self._free:
                self._free[a.id] = a
                self._dirty = True
        else:
            self._free.pop(a.id, None)

    def _staffed(self, q: QueueRecord) -> int:
        name = q.cfg.name
        return sum(1 for a in q.members if a.state not in _STAFFED_OUT and a.registered
                   and a.reachable and name not in a.away)

    def _position(self, q: QueueRecord, call: CallRecord) -> int:
        return bisect_left(q.keys, call.key) + 1

    def _remove_waiting(self, q: QueueRecord, call: CallRecord) -> None:
        i = bisect_left(q.keys, call.key)
        del q.waiting[i]
        del q.keys[i]

    def _estimate(self, q: QueueRecord, position: int) -> float | None:
        recent = q.recent_handle
        staffed = self._staffed(q)
        if not recent or not staffed:
            return None
        return position * (sum(recent) / len(recent)) / staffed

    # ------------------------------------------------------------------ agent state machine

    def _apply(self, a: AgentRecord, inp: AgentInput, reason: str = "") -> bool:
        """Run one input through the table; False when the state does not accept it."""
        tr = TRANSITIONS.get((a.state, inp))
        if tr is None:
            return False
        effect = tr.effect
        if effect is Effect.DEFER:
            if inp is AgentInput.UNPAUSE:
                if a.deferred is AgentInput.PAUSE:
                    a.deferred = None
            elif a.deferred is not AgentInput.LOG_OUT:  # a log-out outranks a pause
                a.deferred, a.deferred_reason = inp, reason
            return True
        if effect is Effect.CANCEL_RING:
            call = a.call
            assert call is not None
            self._unring(a, call, inp.value)
        self._move(a, tr.next, inp, reason)
        return True

    def _move(self, a: AgentRecord, new: AgentState, inp: AgentInput, reason: str) -> None:
        now = self._now
        old = a.state
        a.state_time[old] = a.state_time.get(old, 0.0) + now - a.acc_since
        a.acc_since = now
        if old is AgentState.WRAP_UP:
            wq = self._queues.get(a.wrap_queue)
            if wq is not None:
                wq.wrap_sum += now - a.since
                wq.wrap_count += 1
        a.state = new
        a.since = now
        a.epoch += 1
        if self._records:
            self._out.append(act.AgentStateChanged(now, a.id, old, new, reason or inp.value))
            if old is AgentState.LOGGED_OUT:
                self._agent_log(a, QueueEvent.ADD_MEMBER, self.logged_in_queues(a.id))
            elif new is AgentState.LOGGED_OUT:
                self._agent_log(a, QueueEvent.REMOVE_MEMBER,
                                [q for q in a.tiers if q not in a.away])
            elif new is AgentState.PAUSED:
                self._agent_log(a, QueueEvent.PAUSE, self.logged_in_queues(a.id), reason)
            elif old is AgentState.PAUSED:
                self._agent_log(a, QueueEvent.UNPAUSE, self.logged_in_queues(a.id))
        if new is AgentState.LOGGED_OUT:
            a.away.clear()
        if new is _AVAILABLE:
            if old is not _RINGING:
                a.idle_since = now
            if a.deferred is not None:
                deferred, a.deferred = a.deferred, None
                self._apply(a, deferred, a.deferred_reason)
                if deferred is AgentInput.PAUSE:
                    a.pause_reason = a.deferred_reason
                return
        elif new is AgentState.PAUSED or new is AgentState.LOGGED_OUT:
            a.deferred = None
            self._refresh(a)
            self._check_empty(a)
            return
        self._refresh(a)

    def _unring(self, a: AgentRecord, call: CallRecord, reason: str) -> None:
        """Stop ringing ``a`` for ``call`` (the agent's state is the caller's business)."""
        self._out.append(act.CancelRing(a.id, call.id, reason))
        call.ringing.remove(a)
        a.call = None
        if not call.ringing:
            self._dirty = True

    # ------------------------------------------------------------------ calls

    def _call_arrived(self, e: ev.CallArrived) -> None:
        if e.call in self._calls:
            raise AcdError(f"call {e.call!r} is already queued")
        q = self._queue(e.queue)
        if e.queue in self._removed_queues:
            raise AcdError(f"queue {e.queue!r} was removed")
        required = dict(q.cfg.required_skills)
        for skill, level in e.skills.items():
            required[skill] = max(level, required.get(skill, 0))
        self._seq += 1
        now = self._now
        first = now if e.entered is None else min(e.entered, now)
        call = CallRecord(e.call, q.cfg.name, e.priority, required, e.caller, first, first,
                          self._seq, callback=e.callback)
        if e.callback:
            q.callbacks += 1
        elif not q.cfg.join_empty and not self._staffed(q):
            q.offered += 1
            self._exit_empty(q, call, ExitReason.JOIN_EMPTY)
            return
        self._enter(q, call)

    def _enter(self, q: QueueRecord, call: CallRecord) -> None:
        cfg = q.cfg
        now = self._now
        call.queue = cfg.name
        if not call.callback:
            call.entered = now
        key = call.key
        i = bisect_left(q.keys, key)
        q.keys.insert(i, key)
        q.waiting.insert(i, call)
        self._calls[call.id] = call
        q.offered += 1
        self._log(q, call, QueueEvent.ENTER, position=i + 1)
        if cfg.max_wait is not None:
            self._push(now + cfg.max_wait, _MAX_WAIT, call, call.epoch)
        if cfg.announce_every is not None:
            self._push(now + cfg.announce_every, _ANNOUNCE, call, call.epoch)
        if cfg.tier_wait is not None:
            for tier in range(2, self._max_tier[cfg.name] + 1):
                self._push(now + (tier - 1) * cfg.tier_wait, _DISPATCH, call, call.epoch)
        self._dirty = True
        self._dispatch()
        if call.agent is None and self._calls.get(call.id) is call and not call.callback:
            if cfg.announce_position and not call.ringing:
                pos = self._position(q, call)
                self._out.append(act.Announce(call.id, cfg.name, pos, self._estimate(q, pos)))
            self._out.append(act.PlayHoldMusic(call.id, cfg.name))

    def _leave(self, q: QueueRecord, call: CallRecord, reason: str) -> None:
        """Take a waiting call out of its queue (cancelling its rings)."""
        for a in list(call.ringing):
            self._unring(a, call, reason)
            self._apply(a, AgentInput.RING_CANCELLED)
        self._remove_waiting(q, call)
        del self._calls[call.id]
        call.epoch += 1

    def _overflow(self, q: QueueRecord, call: CallRecord, reason: ExitReason) -> bool:
        target = q.cfg.overflow
        if (target is None or target in self._removed_queues or target not in self._queues
                or call.hops >= len(self._queues)):  # no endless overflow loops
            return False
        call.hops += 1
        self._out.append(act.CallMoved(call.id, q.cfg.name, target, reason))
        self._enter(self._queues[target], call)
        return True

    def _exit_empty(self, q: QueueRecord, call: CallRecord, reason: ExitReason) -> None:
        q.exited_empty += 1
        self._log(q, call, QueueEvent.EXIT_EMPTY, wait=self._now - call.entered,
                  detail=reason.value)
        if not self._overflow(q, call, reason):
            self._out.append(act.ExitQueue(call.id, q.cfg.name, reason, q.cfg.empty_destination))

    def _check_empty(self, a: AgentRecord) -> None:
        for name in a.tiers:
            self._check_empty_queue(self._queues[name])

    def _check_empty_queue(self, q: QueueRecord) -> None:
        if q.cfg.leave_when_empty and q.waiting and not self._staffed(q):
            for call in [c for c in q.waiting if not c.callback]:
                self._leave(q, call, "queue_empty")
                self._exit_empty(q, call, ExitReason.LEAVE_EMPTY)

    def _timeout(self, q: QueueRecord, call: CallRecord) -> None:
        position = self._position(q, call)
        self._leave(q, call, "timeout")
        q.timed_out += 1
        self._log(q, call, QueueEvent.TIMEOUT, position=position, wait=self._now - call.entered,
                  detail=f"overflow:{q.cfg.overflow}" if q.cfg.overflow else "")
        if not self._overflow(q, call, ExitReason.TIMEOUT):
            self._out.append(
                act.ExitQueue(call.id, q.cfg.name, ExitReason.TIMEOUT, q.cfg.timeout_destination))

    def _caller_hung_up(self, e: ev.CallerHungUp) -> None:
        call = self._calls.get(e.call)
        if call is None:
            self._out.append(act.Ignored(e, "unknown call"))
            return
        if call.agent is not None:
            self._end(call, ev.HungUpBy.CALLER, None)
            return
        if call.callback:
            return  # expected: the caller left a callback request and hung up
        q = self._queues[call.queue]
        position = self._position(q, call)
        self._leave(q, call, "caller_hung_up")
        q.abandoned += 1
        self._log(q, call, QueueEvent.ABANDON, position=position, wait=self._now - call.entered)

    def _callback_cancelled(self, e: ev.CallbackCancelled) -> None:
        call = self._calls.get(e.call)
        if call is None or not call.callback or call.agent is not None:
            self._out.append(act.Ignored(e, "no waiting callback request"))
            return
        self._leave(self._queues[call.queue], call, "callback_cancelled")

    def _key_pressed(self, e: ev.KeyPressed) -> None:
        call = self._calls.get(e.call)
        if call is None or call.agent is not None or call.callback:
            self._out.append(act.Ignored(e, "call not waiting"))
            return
        q = self._queues[call.queue]
        if e.digit != q.cfg.callback_key:
            self._out.append(act.Ignored(e, "no action for this key"))
            return
        call.callback = True
        q.callbacks += 1
        position = self._position(q, call)
        self._log(q, call, QueueEvent.CALLBACK, position=position, wait=self._now - call.entered)
        self._out.append(act.CallbackRequested(call.id, q.cfg.name, call.caller, position,
                                               call.first_entered))

    def _call_ended(self, e: ev.CallEnded) -> None:
        call = self._calls.get(e.call)
        if call is None:
            self._out.append(act.Ignored(e, "unknown call"))
        elif call.agent is None:
            self._caller_hung_up(ev.CallerHungUp(e.call))
        else:
            self._end(call, e.hung_up_by, None)

    def _call_transferred(self, e: ev.CallTransferred) -> None:
        call = self._calls.get(e.call)
        if call is None or call.agent is None:
            self._out.append(act.Ignored(e, "call not connected"))
        else:
            self._end(call, None, e.target, e.attended)

    def _end(self, call: CallRecord, by: ev.HungUpBy | None, transfer_to: str | None,
             attended: bool = False) -> None:
        a = call.agent
        assert a is not None
        q = self._queues[call.queue]
        cfg = q.cfg
        now = self._now
        talk = now - call.answered
        a.calls_taken += 1
        a.talk_time += talk
        a.call = None
        q.completed += 1
        q.talk_sum += talk
        q.recent_handle.append(talk + cfg.wrapup)
        del self._calls[call.id]
        if self._records:
            wait = call.answered - call.entered
            if transfer_to is None:
                self._log(q, call, QueueEvent.COMPLETE, agent=a.id, wait=wait, talk=talk,
                          hung_up_by=by.value if by else None)
            else:
                verb = QueueEvent.ATTENDED_TRANSFER if attended else QueueEvent.TRANSFER
                self._log(q, call, verb, agent=a.id, wait=wait, talk=talk,
                          detail=transfer_to)
        if cfg.wrapup > 0:
            a.wrap_queue = cfg.name
            self._apply(a, AgentInput.CALL_ENDED_WRAP)
            self._push(now + cfg.wrapup, _WRAP, a, a.epoch)
        else:
            self._apply(a, AgentInput.CALL_ENDED)

    # ------------------------------------------------------------------ ringing

    def _dispatch(self) -> None:
        """Offer waiting calls to free agents until one side runs out."""
        self._dirty = False
        free = self._free
        if not free:
            return
        queues = [q for q in self._queues.values() if q.waiting]
        if len(queues) > 1:
            queues.sort(key=lambda q: (-q.cfg.weight, -q.waiting[0].priority,
                                       q.waiting[0].first_entered))
        for q in queues:
            for call in list(q.waiting):
                if not free:
                    return
                if not call.ringing and call.agent is None:
                    self._offer(q, call)

    def _offer(self, q: QueueRecord, call: CallRecord) -> None:
        cfg = q.cfg
        now = self._now
        free = self._free
        order = q.order
        name = cfg.name
        if len(free) < len(q.members):
            pool = [a for a in free.values() if a.id in order and name not in a.away]
            if len(pool) > 1:
                pool.sort(key=lambda a: order[a.id])
        else:
            pool = [a for a in q.members if a.id in free and name not in a.away]
        if not pool:
            return
        tried = call.tried
        if tried and now >= call.retry_at:
            tried.clear()
        required = call.required
        tier_open = 0
        if cfg.tier_wait is not None and self._max_tier[name] > 1:
            tier_open = 1 + int((now - call.entered) // cfg.tier_wait)
        if (tried or required or tier_open or name in self._penalised
                or (self._in_use and not cfg.ring_in_use)):
            cands = []
            best_penalty = None
            for a in pool:
                if a.id in tried or (a.in_use and not cfg.ring_in_use):
                    continue
                if required and any(a.skills.get(s, 0) < lvl for s, lvl in required.items()):
                    continue
                tier, penalty = a.tiers[name]
                if tier_open and tier > tier_open:
                    continue
                if best_penalty is None or penalty < best_penalty:
                    if best_penalty is not None and cands:
                        cands = []
                    best_penalty = penalty
                elif penalty > best_penalty:
                    continue
                cands.append(a)
        else:
            cands = pool
        if not cands:
            return
        picks = self._strategy[name].select(cands, call, q, self._rng)
        for a in picks:
            self._ring(q, a, call)

    def _ring(self, q: QueueRecord, a: AgentRecord, call: CallRecord) -> None:
        cfg = q.cfg
        a.call = call
        call.ringing.append(a)
        q.last_rung = a.id
        self._apply(a, AgentInput.RING)
        self._out.append(act.RingAgent(a.id, call.id, cfg.name, cfg.ring_timeout, call.caller,
                                       call.callback))
        self._push(self._now + cfg.ring_timeout + self._grace, _RING_WD, a, a.epoch)

    def _ringing_agent(self, e: ev.RingAnswered | ev.RingFailed) -> tuple[AgentRecord,
                                                                          CallRecord | None]:
        a = self._agent(e.agent)
        call = a.call
        if a.state is not _RINGING or call is None or call.id != e.call:
            return a, None
        return a, call

    def _ring_answered(self, e: ev.RingAnswered) -> None:
        a, call = self._ringing_agent(e)
        if call is None:
            self._out.append(act.DropAgentLeg(e.agent, e.call, "not ringing for this call"))
            return
        q = self._queues[call.queue]
        cfg = q.cfg
        now = self._now
        for other in list(call.ringing):
            if other is not a:
                self._unring(other, call, "answered_elsewhere")
                self._apply(other, AgentInput.RING_CANCELLED)
        call.ringing.clear()
        self._remove_waiting(q, call)
        call.agent = a
        call.answered = now
        a.missed_in_row = 0
        a.missed.clear()
        self._apply(a, AgentInput.ANSWER)
        wait = now - call.entered
        q.answered += 1
        q.wait_answered += wait
        if wait <= cfg.sl_seconds:
            q.answered_in_sl += 1
        self._log(q, call, QueueEvent.CONNECT, agent=a.id, wait=wait)
        self._out.append(act.Bridge(a.id, call.id, cfg.name, cfg.whisper, call.callback,
                                    call.caller))
        if self._max_call is not None:
            self._push(now + self._max_call, _CALL_WD, a, a.epoch)

    def _ring_failed(self, e: ev.RingFailed) -> None:
        a, call = self._ringing_agent(e)
        if call is None:
            self._out.append(act.Ignored(e, "not ringing for this call"))
            return
        queue = call.queue
        self._failed(a, call, e.reason.value)
        if e.reason in _MISSES:
            a.missed_in_row += 1
            missed = a.missed[queue] = a.missed.get(queue, 0) + 1
            n = self._auto_pause[queue]
            if n is not None and missed >= n and a.state is _AVAILABLE:
                a.missed_in_row = 0
                a.missed.clear()
                a.pause_reason = "auto"
                self._apply(a, AgentInput.PAUSE, "auto")
        elif e.reason is ev.RingFailure.UNREACHABLE:
            a.reachable = False
            self._refresh(a)
            self._check_empty(a)

    def _failed(self, a: AgentRecord, call: CallRecord, reason: str) -> None:
        q = self._queues[call.queue]
        call.ringing.remove(a)
        a.call = None
        call.tried.add(a.id)
        call.retry_at = self._now + q.cfg.retry
        self._push(call.retry_at, _DISPATCH, call, call.epoch)
        self._log(q, call, QueueEvent.RING_NO_ANSWER, agent=a.id, detail=reason)
        self._apply(a, AgentInput.RING_FAILED)
        self._dirty = True

    # ------------------------------------------------------------------ agents

    def _agent_input(self, e: Any, inp: AgentInput, reason: str = "") -> AgentRecord | None:
        a = self._agent(e.agent)
        if a.removed:
            self._out.append(act.Ignored(e, "agent removed"))
            return None
        if not self._apply(a, inp, reason):
            self._out.append(act.Ignored(e, f"agent is {a.state.value}"))
            return None
        return a

    def _member(self, e: ev.AgentLoggedIn | ev.AgentLoggedOut) -> AgentRecord | None:
        a = self._agent(e.agent)
        if a.removed:
            self._out.append(act.Ignored(e, "agent removed"))
            return None
        if e.queue is not None and e.queue not in a.tiers:
            self._out.append(act.Ignored(e, f"not a member of {e.queue}"))
            return None
        return a

    def _logged_in(self, e: ev.AgentLoggedIn) -> None:
        a = self._member(e)
        if a is None:
            return
        if a.state is AgentState.LOGGED_OUT:
            a.away = set() if e.queue is None else set(a.tiers) - {e.queue}
            self._apply(a, AgentInput.LOG_IN)
            return
        back = [q for q in a.tiers if q in a.away and e.queue in (None, q)]
        if not back:
            self._out.append(act.Ignored(e, f"agent is {a.state.value}"))
            return
        a.away.difference_update(back)
        self._agent_log(a, QueueEvent.ADD_MEMBER, back)
        self._dirty = True

    def _logged_out(self, e: ev.AgentLoggedOut) -> None:
        a = self._member(e)
        if a is None:
            return
        q = e.queue
        if q is not None and a.state is not AgentState.LOGGED_OUT \
                and len(self.logged_in_queues(a.id)) > 1:  # another queue stays
            if q in a.away:
                self._out.append(act.Ignored(e, f"not logged in to {q}"))
                return
            a.away.add(q)
            self._agent_log(a, QueueEvent.REMOVE_MEMBER, [q])
            call = a.call
            if a.state is _RINGING and call is not None and call.queue == q:
                self._unring(a, call, "logged_out")
                self._apply(a, AgentInput.RING_CANCELLED, "logged_out")
            self._check_empty_queue(self._queues[q])
            return
        if q is not None and q in a.away:
            self._out.append(act.Ignored(e, f"not logged in to {q}"))
            return
        self._agent_input(e, AgentInput.LOG_OUT)

    def _member_added(self, e: ev.MemberAdded) -> None:
        a, q = self._agent(e.agent), self._queue(e.queue)
        if e.queue in a.tiers or a.removed:
            self._out.append(act.Ignored(e, "agent removed" if a.removed else "already a member"))
            return
        Membership(queue=e.queue, tier=e.tier, penalty=e.penalty)  # checks the values
        a.tiers[e.queue] = (e.tier, e.penalty)
        q.order[a.id] = len(q.members)
        q.members.append(a)
        self._max_tier[e.queue] = max(self._max_tier[e.queue], e.tier)
        if e.penalty:
            self._penalised.add(e.queue)
        self._dirty = True

    def _member_removed(self, e: ev.MemberRemoved) -> None:
        a, q = self._agent(e.agent), self._queue(e.queue)
        if e.queue not in a.tiers:
            self._out.append(act.Ignored(e, "not a member"))
            return
        call = a.call
        if a.state is _RINGING and call is not None and call.queue == e.queue:
            self._unring(a, call, "removed")
            self._apply(a, AgentInput.RING_CANCELLED, "removed")
        del a.tiers[e.queue]
        a.away.discard(e.queue)
        q.members.remove(a)
        q.order = {m.id: i for i, m in enumerate(q.members)}
        if q.last_rung == a.id:
            q.last_rung = None
        self._check_empty_queue(q)

    def _member_changed(self, e: ev.MemberChanged) -> None:
        a, q = self._agent(e.agent), self._queue(e.queue)
        if e.queue not in a.tiers:
            self._out.append(act.Ignored(e, "not a member"))
            return
        Membership(queue=e.queue, tier=e.tier, penalty=e.penalty)  # checks the values
        a.tiers[e.queue] = (e.tier, e.penalty)
        self._max_tier[e.queue] = max((m.tiers[e.queue][0] for m in q.members), default=1)
        if any(m.tiers[e.queue][1] for m in q.members):
            self._penalised.add(e.queue)
        else:
            self._penalised.discard(e.queue)
        self._dirty = True

    def _agent_skills(self, e: ev.AgentSkills) -> None:
        self._agent(e.agent).skills = dict(e.skills)
        self._dirty = True

    def _agent_added(self, e: ev.AgentAdded) -> None:
        ac = e.cfg
        a = self._agents.get(ac.id)
        if a is not None and not a.removed:
            self._out.append(act.Ignored(e, "already an agent"))
            return
        for m in ac.queues:
            self._queue(m.queue)
        if a is None:
            a = AgentRecord.from_config(replace(ac, queues=(), logged_in=False), self._now)
            a.acc_since = self._now
            self._agents[ac.id] = a
        a.removed = False
        a.skills = dict(ac.skills)
        if a.deferred is AgentInput.LOG_OUT:  # back before its last call ended
            a.deferred = None
        for m in ac.queues:
            self._member_added(ev.MemberAdded(ac.id, m.queue, m.tier, m.penalty))
        if ac.logged_in:
            self._apply(a, AgentInput.LOG_IN, "configured")
        self._refresh(a)

    def _agent_removed(self, e: ev.AgentRemoved) -> None:
        a = self._agent(e.agent)
        if a.removed:
            self._out.append(act.Ignored(e, "agent removed"))
            return
        for name in list(a.tiers):
            self._member_removed(ev.MemberRemoved(a.id, name))
        self._apply(a, AgentInput.LOG_OUT, "removed")  # after the call when on one
        a.removed = True

    def _queue_configured(self, e: ev.QueueConfigured) -> None:
        cfg = e.cfg
        strategy = get_strategy(cfg.strategy)
        if cfg.overflow is not None and cfg.overflow not in self._queues:
            raise InvalidSetting(f"queue {cfg.name!r}: overflow queue {cfg.overflow!r} not defined")
        q = self._queues.get(cfg.name)
        if q is None:
            q = self._queues[cfg.name] = QueueRecord(cfg=cfg)
            self._max_tier[cfg.name] = 1
        q.cfg = cfg
        self._removed_queues.discard(cfg.name)
        self._strategy[cfg.name] = strategy
        n = cfg.auto_pause_after
        self._auto_pause[cfg.name] = self._auto_pause_default if isinstance(n, EngineDefault) else n
        self._dirty = True
        self._check_empty_queue(q)

    def _queue_removed(self, e: ev.QueueRemoved) -> None:
        self._queue(e.queue)
        self._removed_queues.add(e.queue)

    def _drop_removed_queues(self) -> None:
        """Forget removed queues that no call is in any more."""
        busy = {c.queue for c in self._calls.values()}
        for name in [n for n in self._removed_queues if n not in busy]:
            for a in self._queues.pop(name).members:
                a.tiers.pop(name, None)
            for table in (self._strategy, self._auto_pause, self._max_tier):
                table.pop(name, None)
            self._penalised.discard(name)
            self._removed_queues.discard(name)

    def _paused(self, e: ev.AgentPaused) -> None:
        a = self._agent(e.agent)
        if a.state is AgentState.ON_CALL and not a.removed:
            self._apply(a, AgentInput.PAUSE, e.reason)
            return
        if self._agent_input(e, AgentInput.PAUSE, e.reason) is not None:
            a.pause_reason = e.reason

    def _unpaused(self, e: ev.AgentUnpaused) -> None:
        a = self._agent_input(e, AgentInput.UNPAUSE)
        if a is not None:
            a.missed_in_row = 0
            a.missed.clear()
            if a.state is not AgentState.PAUSED:
                a.pause_reason = ""

    def _set_flag(self, a: AgentRecord, attr: str, value: bool, reason: str) -> None:
        setattr(a, attr, value)
        if not value and a.state is _RINGING and a.call is not None:
            self._unring(a, a.call, reason)
            self._apply(a, AgentInput.RING_CANCELLED, reason)
        self._refresh(a)
        if not value:
            self._check_empty(a)

    def _registered(self, e: ev.AgentRegistered) -> None:
        self._set_flag(self._agent(e.agent), "registered", True, "registered")

    def _unregistered(self, e: ev.AgentUnregistered) -> None:
        self._set_flag(self._agent(e.agent), "registered", False, "unregistered")

    def _reachability(self, e: ev.AgentReachability) -> None:
        self._set_flag(self._agent(e.agent), "reachable", e.reachable, "unreachable")

    def _device_in_use(self, e: ev.AgentDeviceInUse) -> None:
        a = self._agent(e.agent)
        if a.in_use == e.in_use:
            return
        a.in_use = e.in_use
        self._out.append(act.AgentInUse(self._now, a.id, e.in_use))
        if e.in_use:
            self._in_use.add(a.id)
        else:
            self._in_use.discard(a.id)
            self._dirty = True

    def _wrap_up_ended(self, e: ev.WrapUpEnded) -> None:
        self._agent_input(e, AgentInput.WRAP_UP_ENDED)

    def _tick(self, e: ev.Tick) -> None:
        pass

    # ------------------------------------------------------------------ timers

    def _fire_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            if not self._timer_valid(entry):
                continue
            when, _, kind, target, _ = entry
            if kind == _WRAP:
                self._apply(target, AgentInput.WRAP_UP_ENDED, "wrap_up_timer")
            elif kind == _RING_WD:
                call = target.call
                self._out.append(act.WatchdogFired(now, target.id, call.id, "ringing",
                                                   now - target.since))
                self._out.append(act.CancelRing(target.id, call.id, "watchdog"))
                self._failed(target, call, "watchdog")
            elif kind == _CALL_WD:
                call = target.call
                self._out.append(act.WatchdogFired(now, target.id, call.id, "on_call",
                                                   now - target.since))
                self._out.append(act.DropAgentLeg(target.id, call.id, "watchdog"))
                self._end(call, ev.HungUpBy.SYSTEM, None)
            else:
                call = target
                q = self._queues[call.queue]
                if kind == _DISPATCH:
                    self._dirty = True
                elif call.callback:
                    continue
                elif kind == _ANNOUNCE:
                    every = q.cfg.announce_every
                    assert every is not None
                    if not call.ringing:
                        pos = self._position(q, call)
                        self._out.append(act.Announce(call.id, q.cfg.name, pos,
                                                      self._estimate(q, pos)))
                    self._push(when + every, _ANNOUNCE, call, call.epoch)
                elif kind == _MAX_WAIT:
                    self._timeout(q, call)

