"""Agent-scheduled callbacks: when, for whom, and who takes them now (pure rules).

An agent's non-final disposition may name a time (``callback_at``) and an owner
(``callback_to``: ``same`` = the agent who took the call, ``anyone``, or an agent id). A
contact with an owner is left alone by the pooled dial modes; once due, the runner calls it
for its owner when that agent is free (:func:`pick_callbacks`). If the owner has not been free
for ``callback_grace`` seconds after the callback time, the owner is dropped and anyone may
take it (:func:`owner_lapsed`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

SAME = "same"
ANYONE = "anyone"
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


class CallbackError(ValueError):
    """A ``callback_at`` / ``callback_to`` that cannot be used (an HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Callback:
    """When to call the contact again (unix time) and for which agent (None = anyone)."""

    at: float
    owner: str | None


@dataclass(frozen=True, slots=True)
class CallbackPick:
    """What to do with the owned callbacks due now."""

    dial: list[tuple[dict[str, Any], str]]  #: (contact, its owner) to call now
    release: list[dict[str, Any]]  #: owner waited for too long: anyone may take them


def callback_time(value: Any, *, wall: float, local_now: dt.datetime, tz: str,
                  field: str = "callback_at") -> float:
    """``callback_at`` as unix time: unix seconds as they are, or ISO 8601 local time in ``tz``
    (an explicit offset wins) read on the server's clock ``local_now`` (so ``--clock`` shifts
    it as it shifts the calling window); ``wall`` is the unix time at ``local_now``. Errors
    name the input ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or (
            isinstance(value, str) and not value.strip()):
        raise CallbackError(f"{field}: expected ISO 8601 local time or unix seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise CallbackError(f"{field}: expected ISO 8601 local time or unix seconds")
        return float(value)
    text = value.strip()
    if _NUMBER.match(text):
        return float(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CallbackError(f"{field}: bad time {text!r} (e.g. 2026-11-23T15:30 or "
                            "unix seconds)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return wall + (when - local_now).total_seconds()


def resolve_owner(callback_to: Any, *, took: str | None, agents: Collection[str]) -> str | None:
    """``same`` -> the agent who took the call, ``anyone`` / None -> None, else a known agent."""
    if callback_to is None or callback_to == ANYONE:
        return None
    if callback_to == SAME:
        if not took:
            raise CallbackError("callback_to same: no agent took this attempt")
        return took
    if not isinstance(callback_to, str | int) or isinstance(callback_to, bool):
        raise CallbackError('callback_to: expected "same", "anyone" or an agent id')
    agent = str(callback_to)
    if agent not in agents:
        raise CallbackError(f"callback_to: unknown agent {agent!r}")
    return agent


def plan_callback(
    callback_at: Any, callback_to: Any, *, default_to: str, retry: float, final: bool,
    took: str | None, agents: Collection[str], wall: float, local_now: dt.datetime, tz: str,
) -> Callback | None:
    """The callback a disposition asks for, or None (the disposition's plain retry).

    ``default_to`` is the disposition's own ``callback_to``; a final disposition takes no
    callback."""
    if final:
        if callback_at is not None or callback_to is not None:
            raise CallbackError("a final disposition takes no callback_at / callback_to")
        return None
    at = wall + retry if callback_at is None else callback_time(
        callback_at, wall=wall, local_now=local_now, tz=tz)
    owner = resolve_owner(default_to if callback_to is None else callback_to, took=took,
                          agents=agents)
    if callback_at is None and owner is None:
        return None
    return Callback(at=at, owner=owner)


def owner_lapsed(due_at: float, now: float, grace: float) -> bool:
    """True once the callback has waited ``grace`` seconds past its time for its owner."""
    return now - due_at >= grace


def pick_callbacks(
    due: Iterable[Mapping[str, Any]], free: Collection[str], now: float, grace: float,
) -> CallbackPick:
    """Owned contacts due now (oldest first) against the agents free now: each free owner gets
    their oldest one; lapsed ones are released; the rest wait for their owner."""
    dial: list[tuple[dict[str, Any], str]] = []
    release: list[dict[str, Any]] = []
    left = set(free)
    for contact in due:
        owner = contact["owner"]
        if owner in left:
            dial.append((dict(contact), owner))
            left.discard(owner)
        elif owner_lapsed(float(contact["next_at"] or 0.0), now, grace):
            release.append(dict(contact))
    return CallbackPick(dial=dial, release=release)
