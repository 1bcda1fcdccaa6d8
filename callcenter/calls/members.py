"""Dynamic queue members: added and removed through the API, kept in the ``queue_members``
table, fed to the ACD at start after the config file's members (Asterisk's dynamic members).

The file is the source of truth for what it defines: a member listed there cannot be added or
removed here, and a stored member the file now lists is not loaded (the file's tier and
penalty apply). Every change is published as ``audit.changed`` (the store sink writes the
``audit`` row).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.events.bus import AuditChanged, Event

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.config import Config
    from callcenter.store.db import Store

log = structlog.get_logger("acd")


class MemberConflict(ValueError):
    """The change cannot be made (already a member, or a member from the config file)."""


class QueueMembers:
    """See the module docstring; ``start()`` after the ACD started."""

    def __init__(self, *, cfg: Config, store: Store, queues: QueueRunner,
                 publish: Callable[[Event], None]) -> None:
        self.cfg = cfg
        self.store = store
        self.queues = queues
        self.publish = publish

    def from_file(self, queue: str, agent: str) -> bool:
        q = self.cfg.queue(queue)
        return q is not None and any(m.user == agent for m in q.members)

    def start(self) -> None:
        for row in self.store.queue_members():
            queue, agent = row["queue"], row["agent"]
            if self.from_file(queue, agent):
                log.warning("queue_member_in_file", queue=queue, agent=agent,
                            note="the config file's membership applies")
                continue
            try:
                self.queues.change_member(agent, queue, add=True, tier=row["tier"],
                                          penalty=row["penalty"])
            except KeyError:  # the queue or the agent is no longer in the file: kept, unused
                log.warning("queue_member_unknown", queue=queue, agent=agent)

    def stored(self) -> set[tuple[str, str]]:
        """(queue, agent) of every member added by the API."""
        return {(r["queue"], r["agent"]) for r in self.store.queue_members()}

    def reconfigure(self, cfg: Config) -> None:
        """A reloaded file (the ACD has it already): stored members of queues or agents new
        to it are fed to the ACD now (one already a member is left as it is)."""
        self.cfg = cfg
        for row in self.store.queue_members():
            queue, agent = row["queue"], row["agent"]
            if not self.from_file(queue, agent):
                with contextlib.suppress(KeyError):
                    self.queues.change_member(agent, queue, add=True, tier=row["tier"],
                                              penalty=row["penalty"])

    def listing(self, queue: str) -> list[dict[str, Any]]:
        """The queue's members as the ACD has them: the file's, then the API's."""
        q = self.cfg.queue(queue)
        if q is None or self.queues.engine is None:
            raise KeyError(queue)
        stored = {r["agent"]: r for r in self.store.queue_members() if r["queue"] == queue}
        filed = {m.user: m for m in q.members}
        out = []
        for agent in self.queues.engine.members(queue):
            m, row = filed.get(agent), stored.get(agent)
            if m is not None:
                out.append({"agent": agent, "penalty": m.penalty, "tier": m.tier,
                            "source": "file", "added_by": None, "added_at": None})
            elif row is not None:
                out.append({"agent": agent, "penalty": row["penalty"], "tier": row["tier"],
                            "source": "api", "added_by": row["added_by"],
                            "added_at": row["added_at"]})
        return out

    def add(self, queue: str, agent: str, *, penalty: int, tier: int, who: str) -> None:
        """KeyError for an unknown queue or agent, MemberConflict when it is a member."""
        if self.from_file(queue, agent):
            raise MemberConflict(f"{agent} is a member of {queue} in the config file, which "
                                 "wins: change it there")
        if not self.queues.change_member(agent, queue, add=True, tier=tier, penalty=penalty):
            raise MemberConflict(f"{agent} is already a member of {queue}")
        now = time.time()
        self.store.add_queue_member(queue=queue, agent=agent, penalty=penalty, tier=tier,
                                    added_by=who, added_at=now)
        self._audit(now, who, "member.added", queue, agent, {"penalty": penalty, "tier": tier})

    def change(self, queue: str, agent: str, *, penalty: int | None, tier: int | None,
               who: str) -> None:
        """A dynamic member's penalty or tier in place (the callers waiting keep their
        places); KeyError for one not a dynamic member, MemberConflict for the file's."""
        if self.from_file(queue, agent):
            raise MemberConflict(f"{agent} is a member of {queue} in the config file, which "
                                 "wins: change it there")
        row = next((r for r in self.store.queue_members()
                    if (r["queue"], r["agent"]) == (queue, agent)), None)
        if row is None:
            raise KeyError(agent)
        penalty = row["penalty"] if penalty is None else penalty
        tier = row["tier"] if tier is None else tier
        self.queues.change_member(agent, queue, add=None, tier=tier, penalty=penalty)
        self.store.change_queue_member(queue, agent, penalty=penalty, tier=tier)
        self._audit(time.time(), who, "member.changed", queue, agent,
                    {"penalty": penalty, "tier": tier})

    def remove(self, queue: str, agent: str, *, who: str) -> None:
        """KeyError for an unknown queue or agent, or one not a member; MemberConflict for a
        member from the config file (the file wins)."""
        if self.from_file(queue, agent):
            raise MemberConflict(f"{agent} is a member of {queue} in the config file, which "
                                 "wins: remove it there")
        if not self.queues.change_member(agent, queue, add=False):
            raise KeyError(agent)
        self.store.remove_queue_member(queue, agent)
        self._audit(time.time(), who, "member.removed", queue, agent, {})

    def _audit(self, now: float, who: str, action: str, queue: str, agent: str,
               detail: dict[str, Any]) -> None:
        self.publish(AuditChanged(ts=now, who=who, action=action,
                                  object=f"queue/{queue}/member/{agent}",
                                  detail={"queue": queue, "agent": agent, **detail}))
