"""Transfers: a bridged party (by REFER, RFC 3515, or a key code) or the API sends the
other party of its call to a user, a queue or a dialplan line (blind), or joins the parties
of its two calls (attended: REFER with Replaces, RFC 5589 §7; INVITE with Replaces, RFC 3891).

The transfer takes the transferee's call from the flow that bridged it (``Call.hand_over``:
that flow lets go without unbridging or hanging up) and owns it from then on; the transferor
is released. The call keeps its id, so its record tells the whole story. When the target
cannot be reached, the two parties are bridged again: the call stays as it was.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.calls import flows
from callcenter.calls.call import Call, HangupCause, Leg, LegState
from callcenter.events.bus import CallTransferred
from callcenter.sip.errors import BadRequest, CallDoesNotExist, Forbidden, NotFound, SipError
from callcenter.sip.uri import NameAddr, SipUri

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.services import CallServices
    from callcenter.config.models import Trunk
    from callcenter.sip.stack import ServerRequest

log = structlog.get_logger("calls")

#: what runs a dialplan line for an answered leg, given the line's number (None: no such line)
LineRunner = Callable[[str], Callable[[Leg], Coroutine[Any, Any, None]] | None]
#: the trunk and caller ID (or "") the outbound rules give a number dialled for a user (None:
#: a transfer by no user); None when no rule matches the number, Forbidden when refused
OutsideRoute = Callable[[str, str | None], tuple["Trunk", str] | None]


class KeyCode:
    """Collects ``##<target>#`` (blind) and ``*2<target>#`` (attended), Asterisk's feature
    codes, from the keys one bridged party presses: ``feed`` returns (prefix, target) at the
    closing ``#``. A pause longer than ``timeout`` between keys, or a key that fits no code,
    starts over."""

    MAX = 32  #: keys of a target at most
    PREFIXES = ("##", "*2")

    def __init__(self, timeout: float = 4.0) -> None:
        self.timeout = timeout
        self.keys = ""  #: a prefix's first keys, then the prefix and the target's keys so far
        self.last = 0.0

    def feed(self, key: str, now: float) -> tuple[str, str] | None:
        if self.keys and now - self.last > self.timeout:
            self.keys = ""
        self.last = now
        keys = self.keys + key
        prefix = keys[:2] if keys[:2] in self.PREFIXES else None
        if prefix and len(keys) > 2 and key == "#":
            self.keys = ""
            return (prefix, keys[2:-1]) if len(keys) > 3 else None
        if any(p.startswith(keys) for p in self.PREFIXES) or prefix and len(keys) <= self.MAX + 2:
            self.keys = keys
        else:
            self.keys = key if any(p.startswith(key) for p in self.PREFIXES) else ""
        return None


#: what the API's consultation actions press for the consulting party
CONSULT_ACTIONS = {"complete": "#", "cancel": "*", "conference": "3"}


@dataclass(frozen=True)
class Target:
    kind: str  # user | queue | line | number
    name: str
    trunk: Trunk | None = field(default=None, compare=False)  #: a number's, by the rules
    caller_id: str = field(default="", compare=False)  #: what a number's callee is shown

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class Transfers:
    def __init__(
        self, services: CallServices, *, queues: QueueRunner, users: Collection[str],
        lines: LineRunner, ring_timeout: float = 30.0,
        outside: OutsideRoute = lambda number, user: None,
    ) -> None:
        self.services = services
        self.b2bua = services.b2bua
        self.queues = queues
        self.users = users
        self.lines = lines
        self.outside = outside
        self.ring_timeout = ring_timeout
        self._referred: weakref.WeakSet[Leg] = weakref.WeakSet()  # legs that sent a REFER
        self._codes: weakref.WeakKeyDictionary[Leg, KeyCode] = weakref.WeakKeyDictionary()
        #: a consulting party (``*2``): the future its ``#`` or ``*`` completes
        self._consults: dict[Leg, asyncio.Future[str]] = {}
        self._consulting: dict[str, asyncio.Future[str]] = {}  #: the same, by caller call id
        self.consultants: dict[str, str] = {}  #: caller call id -> the party consulting
        self._tasks: set[asyncio.Task[Any]] = set()

    def target(self, to: str, transferee: Leg, transferor: Leg | None) -> Target:
        """What ``to`` names: a user, a queue, a line, an outside number the outbound rules
        let the transferor dial; NotFound, or Forbidden for a loop or a refused number."""
        engine = self.queues.engine
        if to in self.users:
            if to in (transferee.party, transferor.party if transferor else None):
                raise Forbidden(f"transfer of {transferee.party} to {to}: a loop")
            return Target("user", to)
        if engine is not None and to in engine.queue_names:
            return Target("queue", to)
        if to and self.lines(to) is not None:
            return Target("line", to)
        route = self.outside(to, transferor.party if transferor else None) if to else None
        if route is not None:
            if to == transferee.party:
                raise Forbidden(f"transfer of {transferee.party} to {to}: a loop")
            return Target("number", to, route[0], route[1] or transferee.call.caller)
        raise NotFound(f"no transfer target {to!r}")

    # ------------------------------------------------------------------ REFER
    def on_refer(self, leg: Leg, sreq: ServerRequest) -> None:
        """A REFER from a bridged party: 202, NOTIFY 100, then the outcome (RFC 3515). A
        Refer-To with Replaces (RFC 5589 §7) names the sender's other leg: attended."""
        req = sreq.request
        values = req.headers.get_all("Refer-To")
        if len(values) != 1:
            raise BadRequest("a REFER needs exactly one Refer-To")
        try:
            uri = NameAddr.parse(values[0]).uri
        except ValueError as exc:
            raise BadRequest(f"bad Refer-To: {exc}") from None
        transferee = self.b2bua.partner(leg)
        if transferee is None:
            raise Forbidden("REFER from a leg bridged to nobody")
        to = (uri.user if isinstance(uri, SipUri) else None) or ""
        replaces = uri.headers.get("Replaces") if isinstance(uri, SipUri) else None
        other = self.b2bua.replaced(replaces) if replaces is not None else None  # 400 if bad
        refer_id = req.cseq[0] if leg in self._referred else None
        self._referred.add(leg)
        sreq.respond(202)
        log.info("refer", call_id=transferee.call.id, transferor=leg.party, to=to,
                 replaces=replaces)
        self._spawn(self._refer(leg, transferee, to, refer_id, replaces, other))

    async def _refer(self, leg: Leg, transferee: Leg, to: str, refer_id: int | None,
                     replaces: str | None, other: Leg | None) -> None:
        await self.b2bua.notify(leg, 100, "Trying", refer_id)
        try:
            if replaces is None:
                await self.blind(transferee, to, transferor=leg, by="refer")
            else:
                self.attended(leg, other, by="refer")
        except SipError as exc:
            log.info("transfer_failed", call_id=transferee.call.id, to=to, error=str(exc))
            await self.b2bua.notify(leg, exc.status, exc.reason, refer_id)
            return
        await self.b2bua.notify(leg, 200, "OK", refer_id)
        await self.b2bua.hangup(leg)

    # ------------------------------------------------------------------ attended
    def attended(self, leg: Leg, other: Leg | None, *, by: str) -> None:
        """``leg`` and ``other`` are one party's two legs (the call it put on hold and its
        consultation): bridge their partners to each other (the one moved into the other's
        call, a user, gets its card: ``agent.offer``) and hang up ``other``; the caller hangs up ``leg``. 481 when ``other`` is no live leg or either partner is gone, 403
        when ``other`` is someone else's."""
        if other is None or other is leg:
            raise CallDoesNotExist("Replaces names no call of ours")
        if other.party != leg.party:
            raise Forbidden(f"{leg.party} may not take over a call of {other.party}")
        transferee, target = self.b2bua.partner(leg), self.b2bua.partner(other)
        if transferee is None or target is None or transferee is target:
            raise CallDoesNotExist("a party of the transfer has left")
        was = target.call
        self.join(transferee, target, released=(leg, other), by=by)
        # who moved into the other's (older: the customer's) call rang for the transferor only
        joined = target if target.call is not was else transferee
        if joined.party in self.users:
            flows.screen_pop(self.services.offer, joined.call, joined.party, "transfer")
        self._spawn(self.b2bua.hangup(other))

    async def take_over(self, sreq: ServerRequest, replaces: str, user: str | None) -> None:
        """An INVITE with Replaces (RFC 3891) naming an answered leg of ours: the new leg takes
        that leg's place (bridged to its partner), the old leg is hung up. Only the same user
        may (403); 481 when the dialog is no live call of ours."""
        old = self.b2bua.replaced(replaces)
        partner = self.b2bua.partner(old) if old is not None else None
        if old is None or partner is None:
            raise CallDoesNotExist("Replaces names no call of ours")
        if user != old.party:
            raise Forbidden(f"{user} may not take over a call of {old.party}")
        leg = self.b2bua.new_inbound(old.call, sreq, user)
        try:
            self.b2bua.accept_offer(leg)
        except SipError as exc:
            self.b2bua.reject(leg, exc)
            return
        self.b2bua.answer(leg)
        if not await self.b2bua.confirmed(leg) or partner.state is not LegState.ANSWERED:
            await self.b2bua.hangup(leg)
            return
        self.join(partner, leg, released=(old,), by="replaces", target=f"user:{user}")
        await self.b2bua.hangup(old)

    def join(self, a: Leg, b: Leg, *, released: Collection[Leg], by: str,
             target: str | None = None) -> None:
        """Bridge ``a`` (the transferee) to ``b``; the older of their calls (the one put on
        hold) keeps the record and takes the other's leg. The ``released`` legs' BYEs then end
        only themselves."""
        now = self.services.now()
        # a call without a record (a queue's agent leg) never keeps it
        call = min(a.call, b.call, key=lambda c: math.inf if c.started_at is None else c.started_at)
        target = target or (f"user:{b.party}" if b.party in self.users else f"number:{b.party}")
        for held in {a.call, b.call, *(x.call for x in released)}:
            held.hand_over(target, attended=True)
        for x in released:
            x.released = True
            if x.held_since is not None:  # the hold ends with the transferor's leg
                x.call.hold_seconds += now - x.held_since
                x.held_since = None
        for x in (a, b):
            if x.call is not call:
                x.call.legs.remove(x)
                x.call = call
                call.legs.append(x)
        call.flow_owned = True
        for x in (a, b):
            self.b2bua.media.unbridge(x.channel)
            x.channel.stop_playing()
        self.b2bua.media.bridge(a.channel, b.channel)
        self._spawn(self._own(a, b))
        transferor = next(iter(released), None)
        self.services.publish(CallTransferred(
            call_id=call.id, transferor=transferor.party if transferor else None,
            transferee=a.party, target=target, by=by, kind="attended"))
        log.info("transferred", call_id=call.id, to=target, by=by, kind="attended")

    # ------------------------------------------------------------------ API and key code
    def on_key(self, leg: Leg, key: str) -> None:
        """A key from ``leg``: ``##<target>#`` while bridged transfers the other party,
        ``*2<target>#`` consults the target first; keys of a consulting party complete
        (``#``) or cancel (``*``) it. Keys pressed while not bridged (the IVR, a queue) never
        count."""
        consult = self._consults.get(leg)
        if consult is not None:
            if key in "#*3" and not consult.done():
                consult.set_result(key)
            return
        partner = self.b2bua.partner(leg)
        if partner is None:
            self._codes.pop(leg, None)
            return
        code = self._codes.setdefault(leg, KeyCode()).feed(key, self.services.now())
        if code is None:
            return
        prefix, to = code
        log.info("key_transfer", call_id=partner.call.id, transferor=leg.party, to=to,
                 attended=prefix == "*2")
        try:
            if prefix == "*2":
                self.start_consult(partner, to, agent=leg, by="dtmf")
            else:
                self.start(partner, to, transferor=leg, by="dtmf")
        except SipError as exc:
            log.info("transfer_failed", call_id=partner.call.id, to=to, error=str(exc))

    def start_consult(self, caller: Leg, to: str, *, agent: Leg, by: str) -> None:
        """Check the target now (a user or a number: NotFound, Forbidden), then ``consult``."""
        if self.target(to, caller, agent).kind not in ("user", "number"):
            raise NotFound(f"{to}: a consultation calls a user or a number")
        self._spawn(self.consult(agent, caller, to, by=by))

    def consult_action(self, call_id: str, action: str) -> bool:
        """``complete``, ``cancel`` or ``conference`` the consultation of the call's caller
        (its target answered) as the keys ``#``, ``*``, ``3`` do; False when there is none."""
        keys = self._consulting.get(call_id)
        if keys is None or keys.done():
            return False
        keys.set_result(CONSULT_ACTIONS[action])
        return True

    async def consult(self, agent: Leg, caller: Leg, to: str, *, by: str = "dtmf") -> None:
        """``*2<to>#`` (Asterisk's atxfer): the caller hears the hold music while ``agent``
        rings and talks to the user ``to``. The agent hanging up or pressing ``#`` completes
        the transfer (the caller bridged to the target); ``*``, the target hanging up, or a
        target that does not answer brings the caller back to the agent; ``3`` makes it a
        three-way conference. The caller hanging up leaves the agent and the target talking."""
        target = self.target(to, caller, agent)
        for call in {caller.call, agent.call}:
            call.hand_over(str(target), attended=True)
            call.flow_owned = True
        agent.released = caller.released = True  # a BYE ends that leg only: this flow decides
        self.b2bua.media.unbridge(caller.channel)
        keys: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        call_id = caller.call.id
        self.consultants[call_id] = agent.party
        try:
            callee = await self._ring(caller, target)
            if isinstance(callee, int):
                log.info("consult_failed", call_id=call_id, to=to, status=callee)
                self._restore(caller, agent)
                return
            flows.hold_music(self.services, caller)
            if agent.state is LegState.ANSWERED:  # else: hung up while it rang, completes
                self.b2bua.media.bridge(agent.channel, callee.channel)
                self._consults[agent] = self._consulting[call_id] = keys
                await flows.until_first(agent.ended, callee.ended, caller.ended,
                                        *self._key_event(keys))
        finally:
            self._consults.pop(agent, None)
            self._consulting.pop(call_id, None)
            self.consultants.pop(call_id, None)
        key = keys.result() if keys.done() else None
        if key == "3" and all(x.state is LegState.ANSWERED for x in (caller, agent, callee)):
            await self.conference(caller, agent, callee, by=by)
            return
        if caller.state is not LegState.ANSWERED:  # the caller left: agent and target talk on
            if agent.state is LegState.ANSWERED and callee.state is LegState.ANSWERED:
                self._spawn(self._own(agent, callee))
            return
        if callee.state is LegState.ANSWERED and key != "*":
            self.join(caller, callee, released=(agent,), by=by)
            if agent.state is not LegState.ENDED:
                await self.b2bua.hangup(agent)
            return
        if callee.state is not LegState.ENDED:
            await self.b2bua.hangup(callee)
        if caller.channel is not None:
            caller.channel.stop_playing()
        self._restore(caller, agent)

    async def conference(self, *legs: Leg, by: str = "dtmf") -> None:
        """The caller, the agent and the consulted party talk in one mix (each hears the
        others) until one leaves; the other two are then bridged and talk on."""
        for x in legs:
            x.released = True  # a BYE ends that leg only
            x.channel.stop_playing()
        self.b2bua.media.mix([x.channel for x in legs], [[1] * len(legs)] * len(legs))
        call = legs[0].call
        self.services.publish(CallTransferred(
            call_id=call.id, transferor=legs[1].party, transferee=legs[0].party,
            target=f"conference:{legs[2].party}", by=by, kind="conference"))
        log.info("conference", call_id=call.id, parties=[x.party for x in legs])
        handovers = {x.call.handover for x in legs}
        await flows.until_first(*(x.ended for x in legs), *handovers)
        if any(h.is_set() for h in handovers):
            return  # a transfer took them
        left = [x for x in legs if x.state is LegState.ANSWERED]
        for x in left:
            self.b2bua.media.unbridge(x.channel)  # leaves the mix
        if len(left) == 2:
            self.b2bua.media.bridge(left[0].channel, left[1].channel)
            await self._own(left[0], left[1])
        else:
            for x in left:
                await self.b2bua.hangup(x)

    @staticmethod
    def _key_event(keys: asyncio.Future[str]) -> tuple[asyncio.Event]:
        event = asyncio.Event()
        keys.add_done_callback(lambda _: event.set())
        return (event,)

    def start(self, transferee: Leg, to: str, *, transferor: Leg, by: str) -> None:
        """Check the target now (NotFound, Forbidden), then transfer in the background and
        hang up ``transferor`` once the target has the call (on failure the two talk again)."""
        self.target(to, transferee, transferor)
        self._spawn(self._then_release(transferee, to, transferor, by))

    async def _then_release(self, transferee: Leg, to: str, transferor: Leg, by: str) -> None:
        call_id = transferee.call.id
        try:
            await self.blind(transferee, to, transferor=transferor, by=by)
        except SipError as exc:
            log.info("transfer_failed", call_id=call_id, to=to, error=str(exc))
            return
        await self.b2bua.hangup(transferor)

    # ------------------------------------------------------------------ the transfer
    async def blind(self, transferee: Leg, to: str, *, transferor: Leg | None, by: str) -> None:
        """Send ``transferee`` to ``to``; raises a SipError (the failure's status) when the
        target is unknown or does not answer. The caller releases the transferor."""
        if transferee.state is not LegState.ANSWERED:
            raise SipError("the transferee is not talking", status=481)
        target = self.target(to, transferee, transferor)
        priority = self.queues.priority_of(transferee)
        call = transferee.call
        for held in {call, *((transferor.call,) if transferor else ())}:
            held.hand_over(str(target))
        call.flow_owned = True  # a BYE of the transferee's partner ends that leg only
        if transferor is not None:
            transferor.released = True
        self.b2bua.media.unbridge(transferee.channel)
        if target.kind in ("user", "number"):
            callee = await self._ring(transferee, target)
            if isinstance(callee, int):  # the call stays as it was: the two talk again
                self._restore(transferee, transferor)
                raise SipError(f"{target} did not answer", status=callee)
            self.b2bua.media.bridge(transferee.channel, callee.channel)
            self.services.answered(call, callee)
            self._spawn(self._own(transferee, callee))
        elif target.kind == "queue":
            self._spawn(self._queue(transferee, target.name, priority))
        else:
            runner = self.lines(target.name)
            assert runner is not None
            self._spawn(runner(transferee))
        self.services.publish(CallTransferred(
            call_id=call.id, transferor=transferor.party if transferor else None,
            transferee=transferee.party, target=str(target), by=by))
        log.info("transferred", call_id=call.id, to=str(target), by=by)

    async def _ring(self, transferee: Leg, target: Target) -> Leg | int:
        """Ring a user's phones, or a number through its trunk, while the transferee hears
        music: the answered leg, or the status of the failure."""
        services, call = self.services, transferee.call
        if target.trunk is not None:
            dial = self.b2bua.dial_unless(
                transferee.ended, call,
                **flows.trunk_target(target.trunk, target.name, services.trunks()),
                from_user=target.caller_id, timeout=self.ring_timeout)
        else:
            bindings = services.registrar.contacts(target.name, services.now(),
                                                   reachable_only=True)
            if not bindings:
                return 480
            name, info = flows.screen_pop(services.offer, call, target.name, "transfer")
            dial = self.b2bua.dial_fork_unless(
                transferee.ended, call, bindings, party=target.name, from_user=call.customer,
                from_display=name, info=info, timeout=self.ring_timeout)
        flows.hold_music(services, transferee)
        callee = await dial
        if transferee.channel is not None:
            transferee.channel.stop_playing()
        if callee is None:
            return 487
        if callee.state is not LegState.ANSWERED:
            return callee.sip_status or 480
        if transferee.state is not LegState.ANSWERED:
            await self.b2bua.hangup(callee)
            return 487
        return callee

    def _restore(self, transferee: Leg, transferor: Leg | None) -> None:
        """Bridge the two parties again after a failed transfer; whoever is left alone
        (the other hung up meanwhile) is hung up."""
        other = transferor or transferee
        other.released = False
        if transferee.state is LegState.ANSWERED and other.state is LegState.ANSWERED \
                and other is not transferee:
            self.b2bua.media.bridge(transferee.channel, other.channel)
        self._spawn(self._own(transferee, other))

    def _own(self, a: Leg, b: Leg) -> Coroutine[Any, Any, None]:
        """Keep ``a`` and ``b`` bridged until one leaves (then hang up the rest) or a new
        transfer takes them. (An agent's phone counts as in use for the ACD by its leg.) Their
        calls are taken now: an ended leg refers to its call weakly once the call has ended."""
        return self._keep(a, b, {a.call, b.call})

    async def _keep(self, a: Leg, b: Leg, calls: set[Call]) -> None:
        handovers = {x.handover for x in calls}
        await flows.until_first(a.ended, b.ended, *handovers)
        if any(h.is_set() for h in handovers):
            return
        side = "caller" if a.state is LegState.ENDED else "callee"
        for call in calls:
            await self.b2bua.hangup_call(call, HangupCause.NORMAL, side)

    async def _queue(self, leg: Leg, queue: str, priority: int) -> None:
        call, transfers = leg.call, leg.call.transfers
        flows.hold_music(self.services, leg)
        outcome = await self.queues.enqueue(leg, queue, priority=priority)
        log.info("transfer_queue_outcome", call_id=call.id, queue=queue, outcome=outcome)
        if call.transfers == transfers and leg.state is not LegState.ENDED:
            await self.b2bua.hangup_call(call, HangupCause.NORMAL, "system")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
