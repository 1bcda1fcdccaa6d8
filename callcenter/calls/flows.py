"""What happens on a call once it is accepted: prompts, keys, user-to-user calls.

The flow functions only use B2BUA operations and the media channel's control interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.calls.numbers import outbound_identity, present
from callcenter.media.engine import PlayOutcome
from callcenter.media.prompts import PromptError
from callcenter.sip.errors import SipError, TemporarilyUnavailable

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.services import CallServices, Offer
    from callcenter.config.models import Trunk
    from callcenter.sip.registrar import Registrar

log = structlog.get_logger("calls")


def trunk_target(trunk: Trunk, number: str, trunks: Sequence[Trunk]) -> dict[str, Any]:
    """The ``B2BUA.dial`` arguments that send a call to ``number`` through ``trunk`` (the
    number in the trunk's ``number_format``), then through its ``failover`` trunks (looked up
    in ``trunks``) in order; the caller as the trunk's rules say (``outbound_identity``)."""
    auth = (trunk.auth.user, trunk.auth.password) if trunk.auth is not None else None
    user = present(number, trunk.country, trunk.number_format)
    identity = partial(
        outbound_identity, country=trunk.country, number_format=trunk.number_format,
        default=trunk.caller_id.number, default_name=trunk.caller_id.name, trusted=trunk.trusted)
    target: dict[str, Any] = {
        "target_uri": f"sip:{user}@{trunk.host}:{trunk.port}", "dest": (trunk.host, trunk.port),
        "transport": trunk.transport, "party": number, "auth": auth, "to_user": user,
        "identity": identity, "trunk": trunk.name, "max_channels": trunk.max_channels}
    by_name = {t.name: t for t in trunks}
    failover = [trunk_target(by_name[n], number, ()) for n in trunk.failover if n in by_name]
    return {**target, "failover": failover} if failover else target


def screen_pop(pop: Offer | None, call: Call | str | None, agent: str, kind: str, *,
               queue: str = "", number: str = "", **about: Any) -> tuple[str, str]:
    """The one way to pop the customer card before ``agent``'s phone rings for ``call``'s
    customer (or call id ``call``'s customer ``number``; a booked callback has no call yet);
    ``kind`` (queue, transfer, callback, campaign, preview) and ``about`` say why. Returns the
    customer's name for the phone's display and the call's desk page for its Call-Info (""
    when unknown); a failed pop never stops the ring."""
    if pop is None:
        return "", ""
    call_id, number = (call.id, call.customer) if isinstance(call, Call) else (call or "", number)
    try:
        return pop(call_id, agent, queue, number, {"kind": kind, **about})
    except Exception:
        log.exception("offer_failed", agent=agent, kind=kind)
        return "", ""


async def play(leg: Leg, prompt: Any, *, interruptible: bool = False) -> PlayOutcome:
    """Play a prompt to the leg and wait until it ends (or a key interrupts it)."""
    if leg.channel is None or leg.state is LegState.ENDED:
        return PlayOutcome.STOPPED
    done: asyncio.Future[PlayOutcome] = asyncio.get_running_loop().create_future()

    def finished(outcome: PlayOutcome) -> None:
        if not done.done():
            done.set_result(outcome)

    leg.channel.play(prompt, finished, interruptible=interruptible)
    ended = fired(leg.ended)
    try:
        waiters: set[asyncio.Future[Any]] = {done, ended}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    return done.result() if done.done() else PlayOutcome.STOPPED


async def next_digit(leg: Leg, timeout: float) -> str | None:
    """The next key the caller presses, or None after ``timeout`` or when the leg ends."""
    get = asyncio.ensure_future(leg.dtmf.get())
    ended = fired(leg.ended)
    try:
        await asyncio.wait({get, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not get.done():
            get.cancel()
    if get.done() and not get.cancelled():
        return get.result()
    return None


async def until_first(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set."""
    waits = {fired(event) for event in events}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()  # the others would stay pending until their event is set


def hold_music(services: CallServices, leg: Leg) -> None:
    """Loop the hold music to ``leg`` (in place of whatever it heard): its queue's, in the
    queue's language, if it came from one."""
    if leg.channel is not None and not leg.channel.closed:
        codec = 8 if leg.codec == "PCMA" else 0
        music, language = services.music(leg.call.queue), leg.call.language
        try:
            prompt = services.prompts.get(music, language, codec)
        except PromptError as exc:  # a queue's missing music: the default rather than silence
            log.warning("prompt_missing", error=str(exc))
            prompt = services.prompts.get("hold_music", None, codec)
        leg.channel.play(prompt, loop=True, replace=True)


async def connect_user(
    b2bua: B2BUA, registrar: Registrar, leg: Leg, *, user: str, caller: str,
    caller_name: str, now: Callable[[], float], ring_timeout: float,
    on_answer: Callable[[Leg], None], record: Callable[[Call, Leg, Leg], None] | None = None,
) -> None:
    """Ring all of ``user``'s registered phones at once and bridge the first to answer to
    the caller's leg."""
    call = leg.call
    bindings = registrar.contacts(user, now(), reachable_only=True)
    if not bindings:
        log.info("user_unavailable", call_id=call.id, user=user)
        call.hangup_cause, call.hangup_side = HangupCause.UNAVAILABLE, "callee"
        b2bua.reject(leg, TemporarilyUnavailable())
        return
    callee = await b2bua.dial_fork_unless(
        leg.ended, call, bindings, party=user, from_user=caller, from_display=caller_name,
        timeout=ring_timeout, on_ringing=lambda: b2bua.ring(leg),
    )
    if await answer_with(b2bua, leg, callee):
        assert callee is not None
        on_answer(callee)
        if record is not None:
            record(call, leg, callee)


async def answer_with(b2bua: B2BUA, leg: Leg, callee: Leg | None) -> bool:
    """Answer the ringing caller's ``leg`` and bridge it to ``callee`` when that answered;
    else end each leg with the other's fate (the callee's status, the caller's CANCEL)."""
    call = leg.call
    if callee is None:  # the caller hung up (CANCEL) while the phone rang
        return False
    if callee.state is not LegState.ANSWERED:
        status = callee.sip_status or 480
        cause = {486: HangupCause.BUSY, 600: HangupCause.BUSY, 603: HangupCause.REJECTED,
                 408: HangupCause.NO_ANSWER, 480: HangupCause.NO_ANSWER}.get(
                     status, HangupCause.FAILED)
        call.hangup_cause, call.hangup_side = cause, "callee"
        b2bua.reject(leg, SipError(status=status) if 400 <= status < 700 and status != 487
                     else TemporarilyUnavailable())
        return False
    if leg.state is LegState.ENDED:
        await b2bua.hangup(callee)
        return False
    b2bua.answer(leg)
    b2bua.media.bridge(leg.channel, callee.channel)
    return True


async def dial_out(
    services: CallServices, leg: Leg, trunk: Trunk, *, caller_id: str,
    ring_timeout: float = 60.0,
) -> None:
    """Ring the called number through ``trunk`` for a registered phone's ``leg`` (ringing
    relayed), bridge the two on answer and wait until the call ends."""
    b2bua, call = services.b2bua, leg.call
    callee = await b2bua.dial_unless(
        leg.ended, call, **trunk_target(trunk, call.called, services.trunks()),
        from_user=caller_id,
        timeout=ring_timeout, on_ringing=lambda: b2bua.ring(leg),
    )
    if await answer_with(b2bua, leg, callee):
        assert callee is not None
        services.answered(call, callee)
        await until_first(leg.ended, callee.ended)


#: Answers a ring-through caller once its callee answered; False: the caller is gone.
Answer = Callable[[Leg], Awaitable[bool]]


async def transfer_to_user(
    services: CallServices, leg: Leg, user: str, *, ring_timeout: float = 30.0,
    answer: Answer | None = None,
) -> str:
    """Ring ``user`` for an answered caller (who hears hold music meanwhile) and bridge them;
    with ``answer``, for a caller not answered yet (ring-through: it hears the phone ring and
    is answered when the user answers).

    Returns ``answered`` when the user talked and hung up first (the caller is still there),
    ``hangup`` when the caller left, ``transferred`` when a transfer took the call, or why
    the user could not be reached.
    """
    b2bua, call = services.b2bua, leg.call
    bindings = services.registrar.contacts(user, services.now(), reachable_only=True)
    if not bindings:
        return "unavailable"
    if answer is None:
        hold_music(services, leg)
    call.flow_owned = True
    name, info = screen_pop(services.offer, call, user, "transfer")
    callee = await b2bua.dial_fork_unless(
        leg.ended, call, bindings, party=user, from_user=call.caller, from_display=name,
        info=info, timeout=ring_timeout, **_ringing(b2bua, leg, answer),
    )
    return await _transferred_to(services, leg, callee, answer)


async def transfer_to_number(
    services: CallServices, leg: Leg, trunk: Trunk, number: str, *, caller_id: str,
    ring_timeout: float = 60.0, answer: Answer | None = None,
) -> str:
    """``transfer_to_user`` for an outside ``number`` through ``trunk``."""
    if answer is None:
        hold_music(services, leg)
    leg.call.flow_owned = True
    callee = await services.b2bua.dial_unless(
        leg.ended, leg.call, **trunk_target(trunk, number, services.trunks()),
        from_user=caller_id,
        timeout=ring_timeout, **_ringing(services.b2bua, leg, answer),
    )
    return await _transferred_to(services, leg, callee, answer)


def _ringing(b2bua: B2BUA, leg: Leg, answer: Answer | None) -> dict[str, Any]:
    """A ring-through caller hears the callee ring (180) or its early media (183, bridged
    until the answer goes on as the call); an answered one hears its music."""
    if answer is None:
        return {}
    return {"on_ringing": lambda: b2bua.ring(leg),
            "on_early": lambda callee: b2bua.early_media(leg, callee)}


async def _transferred_to(
    services: CallServices, leg: Leg, callee: Leg | None, answer: Answer | None = None,
) -> str:
    """Bridge an answered caller (hearing hold music) to ``callee`` until one hangs up; with
    ``answer``, answer the ringing caller first."""
    b2bua, call = services.b2bua, leg.call
    if callee is None:
        return "hangup"
    if answer is not None and callee.state is LegState.ANSWERED \
            and leg.state is not LegState.ENDED and not await answer(leg):
        await b2bua.hangup(callee)  # the caller never confirmed our 200
        return "hangup"
    if leg.channel is not None:
        leg.channel.stop_playing()
    if callee.state is not LegState.ANSWERED:
        status = callee.sip_status
        return {486: "busy", 600: "busy", 603: "rejected"}.get(status, "no_answer")
    if leg.state is not LegState.ANSWERED:
        await b2bua.hangup(callee)
        return "hangup"
    b2bua.media.bridge(leg.channel, callee.channel)
    services.answered(call, callee)
    handover = call.handover
    await until_first(leg.ended, callee.ended, handover)
    if handover.is_set():
        return "transferred"
    if leg.state is LegState.ANSWERED:
        b2bua.media.unbridge(leg.channel)
        return "answered"
    return "hangup"
