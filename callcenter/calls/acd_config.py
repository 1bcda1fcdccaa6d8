"""The config file's queues and agents as the ACD engine takes them, and a reload as the
engine events that turn one configuration into the next (a diff: nothing waiting or in
progress is touched but by the engine's own rules)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from acd import AgentConfig, Membership, QueueConfig
from acd import events as ev
from callcenter.config.models import Config, Queue

#: Settings of a configured queue that the ACD engine takes under the same name.
ENGINE_FIELDS: set[str] = (
    {f.name for f in dataclasses.fields(QueueConfig)} - {"required_skills", "whisper"}
) & set(Queue.model_fields)


def engine_queue(q: Queue) -> QueueConfig:
    return QueueConfig(**q.model_dump(include=ENGINE_FIELDS),
                       required_skills=dict(q.required_skills),
                       whisper=f"queue_{q.name}" if q.whisper else None)


def engine_agents(cfg: Config) -> list[AgentConfig]:
    """Every user with role agent, and any user who is a queue's member; its skills are
    the user's own, then those its memberships give."""
    members: dict[str, list[Membership]] = {}
    skills: dict[str, dict[str, int]] = {u.user: dict(u.skills) for u in cfg.users}
    static: dict[str, bool] = {}
    for q in cfg.queues:
        for m in q.members:
            members.setdefault(m.user, []).append(
                Membership(queue=q.name, tier=m.tier, penalty=m.penalty))
            skills.setdefault(m.user, {}).update(m.skills)
            static[m.user] = static.get(m.user, False) or m.static
    return [AgentConfig(id=u.user, queues=tuple(members.get(u.user, ())),
                        skills=skills.get(u.user, {}), logged_in=static.get(u.user, False))
            for u in cfg.users if u.role == "agent" or u.user in members]


def changes(old: Config, new: Config, *, keep: Collection[tuple[str, str]] = ()) -> list[ev.Event]:
    """The engine events from ``old`` to ``new``: queues first (a new one without its
    overflow, which may be new too), then agents and memberships, then what went away.
    ``keep``: (queue, agent) members added by the API, which the file does not remove."""
    old_q = {q.name: engine_queue(q) for q in old.queues}
    new_q = {q.name: engine_queue(q) for q in new.queues}
    out: list[ev.Event] = [ev.QueueConfigured(dataclasses.replace(qc, overflow=None))
                           for name, qc in new_q.items() if name not in old_q]
    out += [ev.QueueConfigured(qc) for name, qc in new_q.items()
            if old_q.get(name, dataclasses.replace(qc, overflow=None)) != qc]
    old_a = {a.id: a for a in engine_agents(old)}
    for agent in engine_agents(new):
        before = old_a.get(agent.id)
        if before is None:
            out.append(ev.AgentAdded(agent))
            continue
        if dict(before.skills) != dict(agent.skills):
            out.append(ev.AgentSkills(agent.id, dict(agent.skills)))
        was = {m.queue: m for m in before.queues}
        for m in agent.queues:
            if m.queue not in was:
                out.append(ev.MemberAdded(agent.id, m.queue, m.tier, m.penalty))
            if was.get(m.queue, m) != m or (m.queue, agent.id) in keep:
                out.append(ev.MemberChanged(agent.id, m.queue, m.tier, m.penalty))
        out += [ev.MemberRemoved(agent.id, q) for q in was.keys() - {m.queue for m in agent.queues}
                if q in new_q and (q, agent.id) not in keep]
    out += [ev.AgentRemoved(a) for a in old_a.keys() - {a.id for a in engine_agents(new)}]
    out += [ev.QueueRemoved(q) for q in old_q.keys() - new_q.keys()]
    return out
