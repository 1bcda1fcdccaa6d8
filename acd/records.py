"""The engine's mutable records of agents, calls and queues (read by strategies and stats)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from acd.config import AgentConfig, QueueConfig
from acd.states import AgentInput, AgentState
from acd.today import QueueTotals


@dataclass(slots=True, eq=False)
class AgentRecord:
    id: str
    skills: dict[str, int]
    tiers: dict[str, tuple[int, int]]  # queue -> (tier, penalty)
    away: set[str] = field(default_factory=set)  # member queues logged out of (per-queue log-out)
    state: AgentState = AgentState.LOGGED_OUT
    pause_reason: str = ""
    registered: bool = False
    reachable: bool = True
    in_use: bool = False
    deferred: AgentInput | None = None  # a pause or log-out asked for during a call
    deferred_reason: str = ""
    call: CallRecord | None = None  # the call ringing or connected
    since: float = 0.0  # time of the last state change
    acc_since: float = 0.0  # start of the current stretch of state_time accounting
    epoch: int = 0  # bumped on every state change (stale timers compare it)
    idle_since: float = 0.0  # last log-in, unpause or end of a call (longest-idle ranks by it)
    calls_taken: int = 0
    talk_time: float = 0.0
    missed_in_row: int = 0  # missed rings since the last answer or unpause, any queue
    missed: dict[str, int] = field(default_factory=dict)  # the same per queue (auto-pause)
    wrap_queue: str = ""
    removed: bool = False  # taken out of the configuration (kept while its call goes on)
    state_time: dict[AgentState, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: AgentConfig, now: float) -> AgentRecord:
        return cls(
            id=cfg.id,
            skills=dict(cfg.skills),
            tiers={m.queue: (m.tier, m.penalty) for m in cfg.queues},
            state=AgentState.AVAILABLE if cfg.logged_in else AgentState.LOGGED_OUT,
            registered=cfg.registered,
            reachable=cfg.reachable,
            since=now,
            idle_since=now,
        )


@dataclass(slots=True, eq=False)
class CallRecord:
    id: str
    queue: str
    priority: int
    required: dict[str, int]  # the call's skills merged with the queue's
    caller: str
    entered: float  # entered the current queue
    first_entered: float  # entered the first queue (overflow keeps it)
    seq: int  # FIFO order among equal priorities
    ringing: list[AgentRecord] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)  # agents who missed this call
    retry_at: float = 0.0
    callback: bool = False
    agent: AgentRecord | None = None  # once connected
    answered: float = 0.0
    epoch: int = 0  # bumped when the call changes queue (stale timers compare it)
    hops: int = 0  # overflows so far

    @property
    def key(self) -> tuple[int, float, int]:
        return (-self.priority, self.first_entered, self.seq)


@dataclass(slots=True, eq=False)
class QueueRecord(QueueTotals):
    """A queue's live state; its statistics (since start or ``reset_stats``) are the fields
    of :class:`~acd.today.QueueTotals`."""

    cfg: QueueConfig = field(kw_only=True)
    members: list[AgentRecord] = field(default_factory=list)  # config order
    order: dict[str, int] = field(default_factory=dict)  # agent id -> index in members
    waiting: list[CallRecord] = field(default_factory=list)  # by (-priority, entry, seq)
    keys: list[tuple[int, float, int]] = field(default_factory=list)  # parallel, for bisect
    last_rung: str | None = None  # round-robin memory
    recent_handle: deque[float] = field(default_factory=lambda: deque(maxlen=100))
