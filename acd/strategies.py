"""Routing strategies: small pure rankings over the same agent records, in a registry.

The engine hands a strategy the agents that may take the call (members of the queue, logged
in, available, registered, reachable, with the skills, in the open tiers, lowest penalty, not
yet missed this call) in the queue's member order, and rings what it returns. A strategy keeps
no state: round-robin's memory (the agent rung last) is kept by the engine in the queue record
and passed in; the random strategy draws from the engine's seeded RNG.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from acd.records import AgentRecord, CallRecord, QueueRecord

Cands = Sequence[AgentRecord]
Picks = list[AgentRecord]
Rng = random.Random


class Strategy:
    """Base class: ``select`` returns the agents to ring (one, or several for ring-all)."""

    name: ClassVar[str] = ""

    def select(
        self,
        candidates: Sequence[AgentRecord],
        call: CallRecord,
        queue: QueueRecord,
        rng: random.Random,
    ) -> list[AgentRecord]:
        raise NotImplementedError


STRATEGIES: dict[str, Strategy] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding one instance of ``cls`` to :data:`STRATEGIES` under ``cls.name``."""
    if not cls.name or cls.name in STRATEGIES:
        raise ValueError(f"strategy name {cls.name!r} is empty or taken")
    STRATEGIES[cls.name] = cls()
    return cls


# The names Asterisk (app_queue ``strategy=``) and FreeSWITCH (mod_callcenter ``strategy``) users
# bring, where one of ours makes the same choice. Tiers and penalties are the engine's, not the
# strategy's, so they do not enter the comparison.
ALIASES: dict[str, str] = {
    "ringall": "ring-all",  # Asterisk: every free member at once
    "leastrecent": "longest-idle-agent",  # Asterisk: the member whose last call ended longest ago
    "fewestcalls": "fewest-calls",  # Asterisk
    "rrmemory": "round-robin",  # Asterisk: round robin, resumes after the member rung last
    "rrordered": "round-robin",  # Asterisk: the same, in the configured member order
    "top-down": "linear",  # FreeSWITCH: the first free member in order, for every call
    "agent-with-least-talk-time": "least-talk-time",  # FreeSWITCH
    "agent-with-fewest-calls": "fewest-calls",  # FreeSWITCH
    "skills": "skills-based",
}
# Names that look like ours but choose differently: refused, with the reason.
_REFUSED: dict[str, str] = {
    "wrandom": "Asterisk's random weighted by penalty",
    "ring-progressively": "FreeSWITCH's ringing of one more agent at each interval",
    "sequentially-by-agent-order": "FreeSWITCH's tier-then-position order",
}


def canonical_strategy(name: str) -> str:
    """Our name for ``name``: one of :data:`STRATEGIES` or an alias (any case); else ValueError
    listing the accepted names."""
    key = str(name).strip().lower()
    if key in STRATEGIES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    why = f" ({_REFUSED[key]} has no equivalent here)" if key in _REFUSED else ""
    raise ValueError(f"unknown strategy {name!r}{why}; accepted: {', '.join(STRATEGIES)}, "
                     f"or the aliases {', '.join(ALIASES)}")


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name`` or one of its aliases (ValueError if none)."""
    return STRATEGIES[canonical_strategy(name)]


def _idle(agent: AgentRecord) -> float:
    return agent.idle_since


def _best(candidates: Cands, key: Callable[[AgentRecord], Any]) -> Picks:
    # min() keeps the first of equal keys: ties go to member order
    return [min(candidates, key=key)]


@register
class LongestIdle(Strategy):
    """The agent idle longest since the last call, log-in or unpause (the default: "evenly")."""

    name = "longest-idle-agent"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return _best(candidates, _idle)


@register
class RoundRobin(Strategy):
    """The next member after the one rung last, in member order, wrapping around."""

    name = "round-robin"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        last = queue.order.get(queue.last_rung, -1) if queue.last_rung is not None else -1
        for agent in candidates:
            if queue.order[agent.id] > last:
                return [agent]
        return [candidates[0]]


@register
class FewestCalls(Strategy):
    """The agent who took the fewest calls; ties to the longest idle."""

    name = "fewest-calls"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return _best(candidates, lambda a: (a.calls_taken, a.idle_since))


@register
class LeastTalkTime(Strategy):
    """The agent with the least talk time; ties to the longest idle."""

    name = "least-talk-time"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return _best(candidates, lambda a: (a.talk_time, a.idle_since))


@register
class RingAll(Strategy):
    """Every candidate at once; the first to answer takes the call."""

    name = "ring-all"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return list(candidates)


@register
class Linear(Strategy):
    """Top-down: always the first free member in member order."""

    name = "linear"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return [candidates[0]]


@register
class Random(Strategy):
    """Uniformly at random, from the engine's seeded RNG."""

    name = "random"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        return [candidates[rng.randrange(len(candidates))]]


@register
class SkillsBased(Strategy):
    """The best match for the call's required skills (highest summed level), then the tier,
    then the longest idle. Tiers open one by one with the queue's ``tier_wait``."""

    name = "skills-based"

    def select(self, candidates: Cands, call: CallRecord, queue: QueueRecord, rng: Rng) -> Picks:
        required = call.required
        qname = queue.cfg.name

        def rank(a: AgentRecord) -> tuple[int, int, float]:
            level = sum(a.skills.get(s, 0) for s in required)
            return (-level, a.tiers[qname][0], a.idle_since)

        return _best(candidates, rank)
