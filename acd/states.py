"""The agent state machine: everything that moves an agent between states lives here.

A table maps ``(state, input) -> Transition(next state, effect)``, in the manner of h2's
``connection.py``; a missing pair is an input the state does not accept (the engine answers it
with an :class:`~acd.actions.Ignored` action, because the live side races by nature).

Registration, reachability (OPTIONS) and a device in use are flags beside the state, not
states: an available agent whose phone stopped answering OPTIONS is still available, just not
offered calls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AgentState(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow Python code

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"  # offered one call (reserved for it) until answer, failure or cancel
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentInput(enum.Enum):
    __hash__ = object.__hash__

    LOG_IN = "log_in"
    LOG_OUT = "log_out"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    RING = "ring"  # the engine offers a call
    ANSWER = "answer"
    RING_FAILED = "ring_failed"  # no answer, busy, rejected, unreachable, watchdog
    RING_CANCELLED = "ring_cancelled"  # caller hung up, answered elsewhere, ...
    CALL_ENDED = "call_ended"  # the queue has no wrap-up time
    CALL_ENDED_WRAP = "call_ended_wrap"  # the queue has a wrap-up time
    WRAP_UP_ENDED = "wrap_up_ended"  # timer or the agent ending it early


class Effect(enum.Enum):
    NONE = "none"
    CANCEL_RING = "cancel_ring"  # the ringing call goes back to the queue, the ring is cancelled
    DEFER = "defer"  # remember the input; apply it when the call (and wrap-up) ends


@dataclass(frozen=True, slots=True)
class Transition:
    next: AgentState
    effect: Effect = Effect.NONE


S, In, E, T = AgentState, AgentInput, Effect, Transition

TRANSITIONS: dict[tuple[AgentState, AgentInput], Transition] = {
    (S.LOGGED_OUT, In.LOG_IN): T(S.AVAILABLE),
    (S.AVAILABLE, In.LOG_OUT): T(S.LOGGED_OUT),
    (S.AVAILABLE, In.PAUSE): T(S.PAUSED),
    (S.AVAILABLE, In.RING): T(S.RINGING),
    (S.RINGING, In.ANSWER): T(S.ON_CALL),
    (S.RINGING, In.RING_FAILED): T(S.AVAILABLE),
    (S.RINGING, In.RING_CANCELLED): T(S.AVAILABLE),
    (S.RINGING, In.PAUSE): T(S.PAUSED, E.CANCEL_RING),
    (S.RINGING, In.LOG_OUT): T(S.LOGGED_OUT, E.CANCEL_RING),
    (S.ON_CALL, In.CALL_ENDED): T(S.AVAILABLE),
    (S.ON_CALL, In.CALL_ENDED_WRAP): T(S.WRAP_UP),
    (S.ON_CALL, In.PAUSE): T(S.ON_CALL, E.DEFER),
    (S.ON_CALL, In.UNPAUSE): T(S.ON_CALL, E.DEFER),  # withdraws a deferred pause
    (S.ON_CALL, In.LOG_OUT): T(S.ON_CALL, E.DEFER),
    (S.WRAP_UP, In.WRAP_UP_ENDED): T(S.AVAILABLE),
    (S.WRAP_UP, In.PAUSE): T(S.PAUSED),
    (S.WRAP_UP, In.LOG_OUT): T(S.LOGGED_OUT),
    (S.PAUSED, In.UNPAUSE): T(S.AVAILABLE),
    (S.PAUSED, In.PAUSE): T(S.PAUSED),  # a new reason replaces the old one
    (S.PAUSED, In.LOG_OUT): T(S.LOGGED_OUT),
}


def transition(state: AgentState, event: AgentInput) -> Transition | None:
    """The transition for ``event`` in ``state``, or ``None`` when the state does not accept it."""
    return TRANSITIONS.get((state, event))
