"""Discrete-event simulation of one queue driven through the real :class:`AcdEngine`.

Poisson arrivals, exponential or log-normal handle times, exponential patience (abandonment).
Agents answer at once (or after ``answer_delay``); the engine decides everything else, and the
figures reported are the engine's own statistics::

    result = simulate(SimConfig(agents=10, arrival_rate=180, aht=180, patience=120, calls=100_000))
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from acd import actions as act
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine, QueueStats
from acd.events import CallArrived, CallEnded, CallerHungUp, RingAnswered, Tick

QUEUE = "sim"
_ANSWER, _HANGUP, _ABANDON, _TICK = range(4)
BATCHES = 20


def _snapshot(s: QueueStats) -> tuple[int, int, int, int, float]:
    return (s.offered, s.answered_within_target, s.abandoned, s.answered,
            (s.asa or 0.0) * s.answered)


def _batch_errors(snaps: list[tuple[int, int, int, int, float]]) -> tuple[float, float, float]:
    """Standard errors of SL, ASA and abandon rate from the batch means between snapshots."""
    rows = []
    for a, b in zip(snaps, snaps[1:], strict=False):
        offered, in_sl, abandoned, answered, wait = (y - x for x, y in zip(a, b, strict=True))
        if offered > 0 and answered > 0:
            rows.append((in_sl / offered, wait / answered, abandoned / offered))
    if len(rows) < 2:
        return (math.nan, math.nan, math.nan)
    arr = np.array(rows)
    se = arr.std(axis=0, ddof=1) / math.sqrt(len(rows))
    return (float(se[0]), float(se[1]), float(se[2]))


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    agents: int
    arrival_rate: float  # calls per hour
    aht: float  # mean handle (talk) time, seconds
    patience: float | None = None  # mean, exponential; None: callers never give up
    calls: int = 100_000
    strategy: str = "longest-idle-agent"
    sl_seconds: float = 20.0
    seed: int = 1
    handle_dist: Literal["exponential", "lognormal"] = "exponential"
    handle_cv: float = 1.0  # coefficient of variation of the log-normal
    wrap_up: float = 0.0
    answer_delay: float = 0.0
    warmup: int = 0  # arrivals before the statistics are reset
    records: bool = False  # have the engine build its log records too (slower)

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError("agents must be >= 1")
        if self.arrival_rate <= 0 or self.aht <= 0:
            raise ValueError("arrival_rate and aht must be > 0")
        if self.patience is not None and self.patience <= 0:
            raise ValueError("patience must be > 0")
        if self.calls < 1 or not 0 <= self.warmup < self.calls:
            raise ValueError("calls must be >= 1 and warmup in [0, calls)")
        if self.handle_dist not in ("exponential", "lognormal"):
            raise ValueError("handle_dist must be exponential or lognormal")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    calls: int  # offered after the warm-up
    answered: int
    abandoned: int
    service_level: float  # answered within sl_seconds, of all offered
    asa: float  # mean wait of answered calls
    abandon_rate: float
    occupancy: float  # mean over agents
    calls_per_agent: list[int]
    talk_time_per_agent: list[float]
    occupancy_per_agent: list[float]
    simulated_seconds: float
    wall_seconds: float
    calls_per_second: float  # simulated calls per wall-clock second
    engine_events: int
    # standard errors from batch means (20 batches of arrivals after the warm-up)
    service_level_stderr: float
    asa_stderr: float
    abandon_rate_stderr: float
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _handle_times(cfg: SimConfig, gen: np.random.Generator) -> np.ndarray:
    if cfg.handle_dist == "exponential":
        return gen.exponential(cfg.aht, cfg.calls)
    sigma2 = math.log1p(cfg.handle_cv**2)
    return gen.lognormal(math.log(cfg.aht) - sigma2 / 2, math.sqrt(sigma2), cfg.calls)


def simulate(
    cfg: SimConfig, progress: Callable[[int, int], None] | None = None
) -> SimResult:
    """Run the simulation; ``progress(done, total)`` is called every 1% of arrivals."""
    gen = np.random.default_rng(cfg.seed)
    n = cfg.calls
    arrivals = np.cumsum(gen.exponential(3600.0 / cfg.arrival_rate, n)).tolist()
    handle = _handle_times(cfg, gen).tolist()
    patience = gen.exponential(cfg.patience, n).tolist() if cfg.patience else None
    queue = QueueConfig(
        name=QUEUE, strategy=cfg.strategy, sl_seconds=cfg.sl_seconds, wrapup=cfg.wrap_up,
        announce_position=False, announce_every=None, callback_key=None,
        ring_timeout=max(60.0, cfg.answer_delay * 2),
    )
    agents = [
        AgentConfig(id=f"agent{i + 1}", queues=(Membership(queue=QUEUE),), logged_in=True,
                    registered=True)
        for i in range(cfg.agents)
    ]
    engine = AcdEngine(queues=[queue], agents=agents, rng=random.Random(cfg.seed),
                       auto_pause_after=None, max_call=None, records=cfg.records)
    handle_event = engine.handle
    next_deadline = engine.next_deadline
    heap: list[tuple[float, int, int, Any]] = []
    push = heapq.heappush
    pop = heapq.heappop
    seq = 0
    answered = bytearray(n)
    delay = cfg.answer_delay
    tick_at = math.inf
    events = 0
    step = max(1, n // 100)
    batch = max(1, (n - cfg.warmup) // BATCHES)
    snapshots: list[tuple[int, int, int, int, float]] = []
    started = time.perf_counter()
    now = 0.0
    i = 0
    next_arrival = arrivals[0]
    RingAgent, Bridge = act.RingAgent, act.Bridge  # noqa: N806 (local aliases for speed)

    while True:
        if heap and heap[0][0] <= next_arrival:
            now, _, kind, what = pop(heap)
            if kind == _HANGUP:
                out = handle_event(CallEnded(what), now)
            elif kind == _ANSWER:
                out = handle_event(RingAnswered(what[0], what[1]), now)
            elif kind == _ABANDON:
                if answered[int(what)]:
                    continue
                out = handle_event(CallerHungUp(what), now)
            else:
                tick_at = math.inf
                out = handle_event(Tick(), now)
        elif i < n:
            now = next_arrival
            if i == cfg.warmup and i:
                engine.reset_stats(now)
            call = str(i)
            out = handle_event(CallArrived(call, QUEUE), now)
            if patience is not None:
                seq += 1
                push(heap, (now + patience[i], seq, _ABANDON, call))
            i += 1
            next_arrival = arrivals[i] if i < n else math.inf
            if i >= cfg.warmup and (i - cfg.warmup) % batch == 0:
                snapshots.append(_snapshot(engine.stats(QUEUE, now)))
            if progress is not None and i % step == 0:
                progress(i, n)
        else:
            break
        events += 1
        while out:
            more: list[Any] = []
            a: Any  # dispatched on its exact class below (faster than isinstance)
            for a in out:
                cls = a.__class__
                if cls is RingAgent:
                    if delay:
                        seq += 1
                        push(heap, (now + delay, seq, _ANSWER, (a.agent, a.call)))
                    else:
                        events += 1
                        more += handle_event(RingAnswered(a.agent, a.call), now)
                elif cls is Bridge:
                    k = int(a.call)
                    answered[k] = 1
                    seq += 1
                    push(heap, (now + handle[k], seq, _HANGUP, a.call))
            out = more
        deadline = next_deadline()
        if deadline is not None and deadline < tick_at:
            tick_at = deadline
            seq += 1
            push(heap, (deadline, seq, _TICK, None))

    wall = time.perf_counter() - started
    stats = engine.stats(QUEUE, now)
    snapshots.append(_snapshot(stats))
    sl_se, asa_se, ab_se = _batch_errors(snapshots)
    offered = stats.offered
    occ = [a.occupancy or 0.0 for a in stats.agents]
    return SimResult(
        calls=offered,
        answered=stats.answered,
        abandoned=stats.abandoned,
        service_level=stats.answered_within_target / offered if offered else 0.0,
        asa=stats.asa or 0.0,
        abandon_rate=stats.abandoned / offered if offered else 0.0,
        occupancy=sum(occ) / len(occ),
        calls_per_agent=[a.calls for a in stats.agents],
        talk_time_per_agent=[round(a.talk_time, 3) for a in stats.agents],
        occupancy_per_agent=[round(o, 6) for o in occ],
        simulated_seconds=now,
        wall_seconds=wall,
        calls_per_second=n / wall if wall > 0 else math.inf,
        engine_events=events,
        service_level_stderr=sl_se,
        asa_stderr=asa_se,
        abandon_rate_stderr=ab_se,
        config=asdict(cfg),
    )
