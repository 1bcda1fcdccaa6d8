"""Discrete-event simulation of one campaign day, driving the real pacing code.

Agents talk and wrap up, dials ring and are answered (or not) after a log-normal time, answering
machines are screened by AMD with a given accuracy, and an answered call that finds no agent
within 2 s is abandoned. Every ``tick`` seconds the pacer of the chosen mode gets a
:class:`~callcenter.dialer.pacing.PacingSnapshot` built exactly as the live runner builds it,
and its answer is dialled.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field

from callcenter.dialer.compliance import AbandonLedger
from callcenter.dialer.pacing import (
    ABANDON_GRACE,
    Estimates,
    LogNormal,
    PacingSnapshot,
    Stats,
    make_pacer,
)

# agent states
_FREE, _TALK, _WRAP, _PREVIEW, _RESERVED = range(5)
# event kinds
_TICK, _RING_END, _ABANDON, _TALK_END, _WRAP_END, _PREVIEW_END = range(6)
# what answers a dial
_HUMAN, _MACHINE, _NOBODY = range(3)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """One simulated campaign day."""

    agents: int = 20
    answer_rate: float = 0.25  #: P(a person answers within the ring time)
    talk: float = 180.0  #: mean talk time, s
    wrapup: float = 30.0  #: mean wrap-up time, s
    hours: float = 8.0
    mode: str = "predictive"
    abandon_limit: float = 0.03
    seed: int = 1
    ring_mean: float = 8.0  #: mean time to answer, s (log-normal)
    ring_cv: float = 0.5
    max_ring: float = 30.0  #: no answer after this long
    talk_dist: str = "exponential"  #: or "lognormal" (cv 0.8)
    wrapup_cv: float = 0.0  #: 0 = fixed wrap-up time (a campaign timer)
    machine_rate: float = 0.0  #: P(an answering machine answers)
    amd_accuracy: float = 0.9  #: P(AMD classifies a machine, or a person, correctly)
    machine_talk: float = 10.0  #: agent time lost on a machine that AMD let through
    tick: float = 1.0
    pacer_options: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimResult:
    """Figures of one simulated day (times in seconds)."""

    mode: str
    seed: int
    agents: int
    hours: float
    dials: int
    answered: int  #: answered by a person
    connected: int  #: persons connected to an agent
    abandoned: int  #: persons who found no agent within 2 s (incl. AMD false positives)
    no_answer: int
    machines: int
    machines_to_agent: int
    talk_time: float
    occupancy: float  #: talk time / logged-in time
    abandon_rate: float  #: abandoned / answered by a person
    calls_per_agent_hour: float
    dials_per_agent_hour: float
    mean_agent_wait: float  #: idle seconds per connected call
    max_lines: int

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _lognormal(rng: random.Random, dist: LogNormal) -> float:
    return rng.lognormvariate(dist.mu, dist.sigma)


def simulate(cfg: SimConfig) -> SimResult:
    """Run one day; deterministic for a given ``cfg`` (including its seed)."""
    rng = random.Random(cfg.seed)
    pacer = make_pacer(cfg.mode, **cfg.pacer_options)
    agent_initiated = pacer.agent_initiated
    preview_s = float(getattr(pacer, "preview_seconds", 0.0))
    stats = Stats(Estimates())
    ledger = AbandonLedger()
    ring_dist = LogNormal.from_mean(cfg.ring_mean, cfg.ring_cv)
    talk_dist = LogNormal.from_mean(cfg.talk, 0.8)
    wrap_dist = LogNormal.from_mean(cfg.wrapup, cfg.wrapup_cv) if cfg.wrapup_cv > 0 else None
    end = cfg.hours * 3600.0
    amd = cfg.machine_rate > 0

    n = cfg.agents
    state = [_FREE] * n
    since = [0.0] * n
    free: list[int] = list(range(n))  # stack of free agent ids
    talk_time = 0.0
    idle_time = 0.0
    ringing: dict[int, float] = {}  # pooled calls: id -> dial time
    bound: dict[int, int] = {}  # agent-initiated calls: id -> agent
    waiting: deque[int] = deque()  # answered, waiting for an agent
    kind_of: dict[int, int] = {}
    events: list[tuple[float, int, int, int]] = []
    seq = 0
    dials = answered = abandoned = no_answer = machines = m_to_agent = 0
    max_lines = 0
    next_id = 0

    def push(t: float, kind: int, ref: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    def dial(now: float, agent: int | None) -> None:
        nonlocal next_id, dials
        cid = next_id
        next_id += 1
        dials += 1
        u = rng.random()
        t = _lognormal(rng, ring_dist)
        if u < cfg.answer_rate and t <= cfg.max_ring:
            who = _HUMAN
        elif cfg.answer_rate <= u < cfg.answer_rate + cfg.machine_rate and t <= cfg.max_ring:
            who = _MACHINE
        else:
            who, t = _NOBODY, cfg.max_ring
        kind_of[cid] = who
        if agent is None:
            ringing[cid] = now
        else:
            bound[cid] = agent
        push(now + t, _RING_END, cid)

    def start_talk(now: float, agent: int, cid: int) -> None:
        nonlocal idle_time
        if state[agent] == _FREE:
            idle_time += now - since[agent]
        state[agent] = _TALK
        since[agent] = now
        if kind_of.pop(cid) == _MACHINE:
            length = cfg.machine_talk
        elif cfg.talk_dist == "exponential":
            length = rng.expovariate(1.0 / cfg.talk)
        else:
            length = _lognormal(rng, talk_dist)
        push(now + length, _TALK_END, agent)

    def agent_free(now: float, agent: int) -> None:
        state[agent] = _FREE
        since[agent] = now
        if waiting:
            cid = waiting.popleft()
            if kind_of[cid] == _HUMAN:
                person_answered(now, False)
            start_talk(now, agent, cid)
        else:
            free.append(agent)

    def person_answered(now: float, abandoned_call: bool) -> None:
        nonlocal answered, abandoned
        answered += 1
        abandoned += abandoned_call
        ledger.record(now, abandoned=abandoned_call)

    def snapshot(now: float) -> PacingSnapshot:
        talking = tuple(now - since[a] for a in range(n) if state[a] == _TALK)
        wrapping = tuple(now - since[a] for a in range(n) if state[a] == _WRAP)
        a24, b24 = ledger.counts_24h(now)
        return PacingSnapshot(
            now=now,
            free_agents=len(free),
            talking=talking,
            wrapping=wrapping,
            ringing=tuple(now - t for t in ringing.values()),
            waiting=len(waiting),
            estimates=stats.estimates(),
            abandon_rate_24h=b24 / a24 if a24 else 0.0,
            abandon_rate_30d=ledger.rate_30d(now),
            answered_24h=a24,
            dials_today=dials,
            answered_today=answered,
            abandoned_today=abandoned,
            limit=cfg.abandon_limit,
            max_ring=cfg.max_ring,
        )

    push(0.0, _TICK, 0)
    while events:
        now, _, kind, ref = heapq.heappop(events)
        if now >= end:
            break
        if kind == _TICK:
            k = pacer.lines_to_dial(snapshot(now))
            if agent_initiated:
                for _ in range(min(k, len(free))):
                    agent = free.pop()
                    idle_time += now - since[agent]
                    state[agent], since[agent] = _PREVIEW, now
                    push(now + preview_s, _PREVIEW_END, agent)
            else:
                for _ in range(k):
                    dial(now, None)
            max_lines = max(max_lines, len(ringing) + len(bound))
            push(now + cfg.tick, _TICK, 0)
        elif kind == _RING_END:
            agent_or_none = bound.pop(ref, None)
            dialled = ringing.pop(ref, None) if agent_or_none is None else None
            who = kind_of[ref]
            ring_time = now - dialled if dialled is not None else None
            if who == _NOBODY:
                no_answer += 1
                del kind_of[ref]
                stats.on_dial_result(False)
                if agent_or_none is not None:
                    agent_free(now, agent_or_none)
                continue
            if who == _MACHINE:
                machines += 1
                if amd and rng.random() < cfg.amd_accuracy:  # detected: hang up
                    del kind_of[ref]
                    stats.on_dial_result(False)
                    if agent_or_none is not None:
                        agent_free(now, agent_or_none)
                    continue
                m_to_agent += 1
            elif amd and rng.random() >= cfg.amd_accuracy:  # a person taken for a machine
                del kind_of[ref]
                person_answered(now, True)
                stats.on_dial_result(False)
                if agent_or_none is not None:
                    agent_free(now, agent_or_none)
                continue
            stats.on_dial_result(True, ring_time)
            if agent_or_none is not None:
                if who == _HUMAN:
                    person_answered(now, False)
                start_talk(now, agent_or_none, ref)
            elif free and not waiting:
                if who == _HUMAN:
                    person_answered(now, False)
                start_talk(now, free.pop(), ref)
            else:
                waiting.append(ref)
                push(now + ABANDON_GRACE, _ABANDON, ref)
        elif kind == _ABANDON:
            if ref in waiting:
                waiting.remove(ref)
                if kind_of.pop(ref) == _HUMAN:
                    person_answered(now, True)
        elif kind == _TALK_END:
            talk_time += now - since[ref]
            stats.on_talk(now - since[ref])
            state[ref], since[ref] = _WRAP, now
            wrap = _lognormal(rng, wrap_dist) if wrap_dist else cfg.wrapup
            push(now + wrap, _WRAP_END, ref)
        elif kind == _WRAP_END:
            stats.on_wrapup(now - since[ref])
            agent_free(now, ref)
        elif kind == _PREVIEW_END:
            state[ref], since[ref] = _RESERVED, now
            dial(now, ref)

    connected = answered - abandoned
    for a in range(n):
        if state[a] == _TALK:
            talk_time += end - since[a]
        elif state[a] == _FREE:
            idle_time += end - since[a]
    agent_hours = n * cfg.hours
    return SimResult(
        mode=cfg.mode,
        seed=cfg.seed,
        agents=n,
        hours=cfg.hours,
        dials=dials,
        answered=answered,
        connected=connected,
        abandoned=abandoned,
        no_answer=no_answer,
        machines=machines,
        machines_to_agent=m_to_agent,
        talk_time=round(talk_time, 1),
        occupancy=talk_time / (agent_hours * 3600.0),
        abandon_rate=abandoned / answered if answered else 0.0,
        calls_per_agent_hour=connected / agent_hours,
        dials_per_agent_hour=dials / agent_hours,
        mean_agent_wait=idle_time / connected if connected else math.inf,
        max_lines=max_lines,
    )
