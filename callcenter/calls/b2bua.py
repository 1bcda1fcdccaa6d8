"""The B2BUA: SIP signalling of call legs (answer, dial, hang up, in-dialog requests).

Each leg is anchored on one media channel of ours; the two sides of a call never see each
other's SDP. Flows (``calls/flows.py``) use these operations; they never build SIP by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.calls.call import Call, HangupCause, Leg, LegState, fired
from callcenter.calls.numbers import Identity
from callcenter.media.dtmf import parse_sip_info
from callcenter.sip import sdp
from callcenter.sip.dialog import Dialog, new_tag, parse_replaces
from callcenter.sip.errors import (
    CallDoesNotExist,
    MethodNotAllowed,
    RequestPending,
    RequestTerminated,
    SipError,
    TemporarilyUnavailable,
)
from callcenter.sip.events import AckTimeout, TransactionTimeout, TxKey
from callcenter.sip.message import Request, Response
from callcenter.sip.stack import RequestTimeout, ServerRequest, SipStack
from callcenter.sip.transaction import cancel_for
from callcenter.sip.useragent import (
    ALLOW,
    ALLOW_HEADERS,
    Timers,
    answer_sdp,
    authorized_retry,
    new_invite,
)

if TYPE_CHECKING:
    from callcenter.sip.registrar import Binding

log = structlog.get_logger("calls")


def trunk_failed(leg: Leg) -> bool:
    """The dial failed as a route, not as the callee's answer: a 503 (a transport error reads as
    one, RFC 3261 §8.1.3.1) or no response at all (Timer B, or the ring time out before any
    1xx). A 4xx, 6xx or a ring timeout after a 1xx is the callee's and is final."""
    return leg.sip_status == 503 or (leg.sip_status == 408 and not leg.provisional.is_set())

DialogKey = tuple[str, str, str]  # (Call-ID, our tag, their tag)

#: which unanswered branch of a fork speaks for it (lowest first): a phone that rang out,
#: then a decline, busy, unreachable, our own CANCEL, anything else, no answer at all
_FORK_RANKS = {408: 0, 603: 1, 486: 2, 600: 2, 480: 3, 487: 4}


def _fork_rank(status: int) -> int:
    return _FORK_RANKS.get(status, 5 if status else 6)


class B2BUA:
    def __init__(
        self, *, stack: SipStack, media: Any, media_address: str, codecs: tuple[str, ...],
        on_call_end: Callable[[Call], None], session_refresh: float = 0.0,
        timers: Timers | None = None,
    ) -> None:
        self.stack = stack
        self.timers = timers or Timers()  #: every wait of the legs' signalling
        self.media = media
        self.media_address = media_address
        self.codecs = codecs
        self.on_call_end = on_call_end
        self.dialogs: dict[DialogKey, Leg] = {}
        self.pending_invites: dict[TxKey, Leg] = {}  # server tx key -> leg
        #: INVITEs CANCELled (and answered 487) before their handler task made a leg
        self._early_cancels: set[TxKey] = set()
        self.calls: dict[str, Call] = {}
        #: every leg not yet ended, inbound or placed by us, by ``id(leg)`` (a queue call's agent
        #: leg and both legs of a campaign call belong to calls that are not in ``calls``)
        self.live_legs: dict[int, Leg] = {}
        #: the same legs by ``id(leg.channel)``: finding a channel's leg scanned every leg
        self._by_channel: dict[int, Leg] = {}
        self._session_id = random.randrange(1, 2**31)
        self.session_refresh = session_refresh
        #: background tasks (hang-ups, session refreshes): asyncio keeps only weak references
        self._tasks: set[asyncio.Task[None]] = set()
        #: told ("added" | "ended", leg) as legs come and go (the event bus listens here)
        self.on_leg: Callable[[str, Leg], None] | None = None
        #: takes a REFER (RFC 3515) received on a leg: answers 202 or raises a SipError
        self.on_refer: Callable[[Leg, ServerRequest], None] | None = None
        #: every key (RFC 4733, SIP INFO, in-band) of a leg with media, before its queue
        self.on_key: Callable[[Leg, str], None] | None = None
        #: a party's re-INVITE held (True: sendonly or inactive) or resumed the call
        self.on_hold: Callable[[Leg, bool], None] | None = None
        #: the SRTP policy of a leg's party (``sip.sdes.POLICIES``), see ``_srtp``
        self.srtp_policy: Callable[[Leg], str] = lambda leg: "off"

    # ------------------------------------------------------------ inbound legs
    def new_inbound(self, call: Call, sreq: ServerRequest, party: str, *, trunk: str = "") -> Leg:
        leg = Leg(call, "inbound", sreq.source, sreq.transport, party, invite=sreq, trunk=trunk)
        call.legs.append(leg)
        self.calls[call.id] = call
        self.live_legs[id(leg)] = leg
        if sreq.key is not None:
            self.pending_invites[sreq.key] = leg
        if self.on_leg is not None:
            self.on_leg("added", leg)
        if sreq.key in self._early_cancels:
            self._early_cancels.discard(sreq.key)
            sreq.answered = True  # 487 by on_cancel
            self._cancelled(call)
            self._end_leg(leg)
        return leg

    def accept_offer(self, leg: Leg, *, inband_dtmf: bool = False) -> None:
        """Open the leg's channel and negotiate its SDP; raises NotAcceptableHere (488)."""
        assert leg.invite is not None
        req = leg.invite.request
        leg.channel = self.media.open_channel(inband_dtmf=inband_dtmf)
        self._by_channel[id(leg.channel)] = leg
        if not req.body:
            leg.local_sdp = self._offer(leg)  # late offer: our offer in the 200, answer in ACK
            leg.offer_in_2xx = True
            return
        try:
            offer = sdp.parse(req.body)
            answer, media = sdp.answer_offer(
                offer, local_address=self.media_address, local_port=leg.channel.port,
                supported=self.codecs, session_id=self._session_id, session_version=1,
                **self._srtp(leg),
            )
        except SipError:
            self._by_channel.pop(id(leg.channel), None)
            leg.channel.close()
            leg.channel = None
            raise
        leg.local_sdp, leg.media = answer, media
        self._configure(leg)

    def ring(self, leg: Leg) -> None:
        if leg.invite and not leg.invite.answered:
            leg.invite.respond(180, to_tag=self.local_tag(leg))
            leg.state = LegState.RINGING

    def early_media(self, leg: Leg, callee: Leg) -> None:
        """Let the unanswered caller ``leg`` hear ``callee``'s early media (its 18x carried an
        SDP answer): a 183 with our answer to the caller's offer (the 200's SDP and To tag,
        sent unreliably: no 100rel, RFC 3261 §13.3.1.1) and the two channels bridged from now
        on; the 200 keeps the bridge. A caller that made no offer gets the 180 instead (our
        offer in a 183 would need PRACK for its answer)."""
        sreq = leg.invite
        if sreq is None or sreq.answered or leg.offer_in_2xx or leg.local_sdp is None \
                or leg.channel is None or leg.channel.closed or callee.channel is None \
                or callee.channel.closed:
            self.ring(leg)
            return
        sreq.respond(183, to_tag=self.local_tag(leg), body=leg.local_sdp.serialize().encode(),
                     headers={"Contact": self.stack.contact(transport=leg.transport)})
        leg.state = LegState.RINGING
        self.media.bridge(leg.channel, callee.channel, notify=False)  # no conversation yet

    def answer(self, leg: Leg) -> None:
        """Send the 200 with our SDP; the dialog starts now (RFC 3261 §13.3.1.4)."""
        sreq = leg.invite
        assert sreq is not None and leg.local_sdp is not None
        tag = self.local_tag(leg)
        resp = answer_sdp(sreq, contact=self.stack.contact(transport=leg.transport),
                          sdp=leg.local_sdp.serialize().encode(), to_tag=tag)
        leg.dialog = Dialog.from_uas(sreq.request, tag)
        leg.dialog.confirm()
        self.dialogs[leg.dialog.id] = leg
        leg.state = LegState.ANSWERED
        if sreq.key is not None:
            self.pending_invites.pop(sreq.key, None)
        self._watch(leg)
        log.debug("leg_answered", call_id=leg.call.id, status=resp.status)

    async def confirmed(self, leg: Leg) -> bool:
        """Wait for the ACK of our 200 (retransmitted meanwhile); False if it never came.

        Flows start only once the caller confirmed: a caller whose ACKs are lost gets the 200
        again and again until Timer H, then a BYE (RFC 3261 §13.3.1.4), instead of a prompt
        played into the void.
        """
        ended = fired(leg.ended)
        acked = fired(leg.acked)
        try:
            await asyncio.wait(
                {ended, acked}, timeout=self.timers.ack,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ended.cancel()
            acked.cancel()
        return leg.acked.is_set() and leg.state is LegState.ANSWERED

    def reject(self, leg: Leg, error: SipError) -> None:
        """Answer the leg's INVITE with ``error`` (unless answered already) and end the leg."""
        sreq = leg.invite
        if sreq is not None and not sreq.answered:
            sreq.refuse(error, to_tag=self.local_tag(leg))
            if sreq.key is not None:
                self.pending_invites.pop(sreq.key, None)
        self._end_leg(leg)

    def local_tag(self, leg: Leg) -> str:
        if not leg.local_tag:
            leg.local_tag = new_tag()
        return leg.local_tag

    # ----------------------------------------------------------- outbound legs
    async def dial(
        self, call: Call, *, target_uri: str, dest: tuple[str, int], transport: str,
        party: str, from_user: str, from_display: str = "", timeout: float = 30.0,
        on_ringing: Callable[[], None] | None = None, auth: tuple[str, str] | None = None,
        to_user: str | None = None, failover: Sequence[dict[str, Any]] = (),
        identity: Callable[[str, str], Identity] | None = None, trunk: str = "",
        max_channels: int | None = None, info: str = "",
        on_answer: Callable[[Leg], None] | None = None,
        on_early: Callable[[Leg], None] | None = None,
    ) -> Leg:
        """Place a call; returns the leg (state ANSWERED, or ENDED with the reason in sip_status).

        ``timeout`` is the ring time: unanswered by then, the INVITE is CANCELled (408).
        ``auth`` (user, password) answers one 401/407 challenge to the INVITE (a trunk's).
        ``to_user`` is the To's user (default ``party``). ``failover``: further targets (the
        same keys as this call's: target_uri, dest, transport, party, auth, to_user, identity,
        trunk, max_channels) tried in order while a target fails as a route (``trunk_failed``);
        the callee's own answer (busy, 404, 480, 6xx, a ring timeout after a 1xx) ends the
        dial. ``identity`` turns the caller into what the target's trunk is told
        (``numbers.outbound_identity``); ``trunk`` names it and ``max_channels`` caps its
        calls: a full trunk reads as a 503. ``info``: a page about the call for the phone
        (``Call-Info: <info>;purpose=info``, RFC 3261 §20.9), the agent's desk.
        ``on_answer(leg)`` runs as the callee's 2xx is processed, loop turns before this returns
        (what the callee sends from then on is no early media). With ``on_early``, a 18x
        carrying an SDP answer configures the leg's channel (early media, RFC 3960) and calls
        ``on_early(leg)`` in place of ``on_ringing``; without it such SDP is ignored.
        """
        targets = [{"target_uri": target_uri, "dest": dest, "transport": transport,
                    "party": party, "auth": auth, "to_user": to_user, "identity": identity,
                    "trunk": trunk, "max_channels": max_channels}, *failover]
        leg = self._outbound_leg(call, dest, transport, party, trunk)
        for i, target in enumerate(targets):
            # The next target's leg is on the call before this one can end: a failed trunk
            # must not end the call (call.done, on_call_end); unused, it is dropped.
            spare = (self._outbound_leg(call, targets[i + 1]["dest"], targets[i + 1]["transport"],
                                        targets[i + 1]["party"], targets[i + 1].get("trunk") or "")
                     if i + 1 < len(targets) else None)
            try:
                if self.trunk_full(leg.trunk, target.get("max_channels"), but=leg):
                    log.warning("trunk_full", call_id=call.id, trunk=leg.trunk, party=party)
                    leg.sip_status = 503
                    self._end_leg(leg)
                else:
                    await self._dial_leg(
                        leg, target_uri=target["target_uri"], from_user=from_user,
                        from_display=from_display, timeout=timeout, on_ringing=on_ringing,
                        auth=target.get("auth"), to_user=target.get("to_user"),
                        identity=target.get("identity"), info=info, on_answer=on_answer,
                        on_early=on_early,
                    )
            except BaseException:
                if spare is not None:
                    self._drop_leg(spare)
                raise
            if spare is None:
                return leg
            if not trunk_failed(leg) or call.hangup_cause is not None:  # or hung up meanwhile
                self._drop_leg(spare)
                return leg
            log.warning("trunk_failover", call_id=call.id, party=party, status=leg.sip_status,
                        failed=target["target_uri"], next=targets[i + 1]["target_uri"])
            call.legs.remove(leg)
            leg = spare
        raise AssertionError("unreachable")  # the last target returns

    def trunk_channels(self, trunk: str, but: Leg | None = None) -> int:
        """The calls through ``trunk`` now: its legs not ended (``but`` aside)."""
        return sum(1 for x in self.live_legs.values() if x.trunk == trunk and x is not but)

    def trunk_full(self, trunk: str, max_channels: int | None, but: Leg | None = None) -> bool:
        """``trunk`` carries ``max_channels`` calls already."""
        return (bool(trunk) and max_channels is not None
                and self.trunk_channels(trunk, but) >= max_channels)

    def _drop_leg(self, leg: Leg) -> None:
        """End a leg that never sent anything, off the call (the call ends if nothing is left)."""
        leg.call.legs.remove(leg)
        self._end_leg(leg)

    def _outbound_leg(self, call: Call, dest: tuple[str, int], transport: str, party: str,
                      trunk: str = "") -> Leg:
        """A new leg we dial, on ``call``; ``trunk`` set before ``on_leg`` hears of it."""
        leg = Leg(call, "outbound", dest, transport, party, state=LegState.DIALING, trunk=trunk)
        call.legs.append(leg)
        self.live_legs[id(leg)] = leg
        if self.on_leg is not None:
            self.on_leg("added", leg)
        return leg

    async def _dial_leg(
        self, leg: Leg, *, target_uri: str, from_user: str, from_display: str, timeout: float,
        on_ringing: Callable[[], None] | None, auth: tuple[str, str] | None = None,
        to_user: str | None = None, identity: Callable[[str, str], Identity] | None = None,
        info: str = "", on_answer: Callable[[Leg], None] | None = None,
        on_early: Callable[[Leg], None] | None = None,
    ) -> Leg:
        """Send the INVITE of a leg made by ``_outbound_leg`` and wait for its outcome."""
        call = leg.call
        try:
            invite, fut = self._send_invite(
                leg, target_uri=target_uri, from_user=from_user, from_display=from_display,
                on_ringing=on_ringing, to_user=to_user, identity=identity, info=info,
                on_answer=on_answer, on_early=on_early,
            )
        except Exception:
            self._end_leg(leg)  # closes the channel: no leaked RTP ports (review finding 8)
            raise
        offer = leg.local_sdp
        assert offer is not None
        leg.sip_status = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            resp = await asyncio.wait_for(asyncio.shield(fut), timeout)
            if resp.status in (401, 407) and auth is not None and leg.state is not LegState.ENDED:
                # The carrier's challenge (its ACK is the transaction's): once, with credentials.
                retry = authorized_retry(invite, resp, via=self.stack.via(leg.transport),
                                         user=auth[0], password=auth[1])
                if retry is not None:
                    invite = retry
                    leg.provisional.clear()
                    fut = self._send_leg_invite(leg, invite, on_ringing, on_answer, on_early)
                    resp = await asyncio.wait_for(asyncio.shield(fut), deadline - loop.time())
        except TimeoutError:
            await self.cancel(leg)
            leg.sip_status = 408
            return leg
        except RequestTimeout:
            leg.sip_status = 408
            self._end_leg(leg)
            return leg
        except asyncio.CancelledError:
            await self.cancel(leg)
            raise
        leg.sip_status = resp.status
        if leg.state is LegState.ENDED:
            # Hung up (CANCELled) while ringing: a 2xx that crossed the CANCEL is ACKed and
            # ended with a BYE by cancel(); the leg must not come back to life here.
            if 200 <= resp.status < 300:
                leg.sip_status = 487
            return leg
        if not 200 <= resp.status < 300:
            self._end_leg(leg)
            return leg
        leg.dialog = Dialog.from_uac(invite, resp)
        self.dialogs[leg.dialog.id] = leg
        self._send_ack(leg, resp)
        try:
            leg.media = sdp.parse_answer(sdp.parse(resp.body), offer)
        except SipError as exc:
            log.warning("bad_sdp_answer", call_id=call.id, error=str(exc))
            await self.hangup(leg)
            leg.sip_status = 488
            return leg
        self._configure(leg)
        leg.state = LegState.ANSWERED
        self._watch(leg)
        return leg

    async def dial_fork(
        self, call: Call, bindings: Sequence[Binding], *, party: str, from_user: str,
        from_display: str = "", timeout: float = 30.0,
        on_ringing: Callable[[], None] | None = None, info: str = "",
        on_early: Callable[[Leg], None] | None = None,
    ) -> Leg:
        """Ring every binding of ``party`` at once (parallel forking, RFC 3261 §16.7 done by
        a B2BUA: one outbound leg per contact, in the order given, i.e. highest q first).

        Returns the first leg answered; the others are CANCELled (or BYEd when their 2xx came
        too late), taken out of ``call.legs`` and end in the background. If nobody answers,
        returns one ENDED leg with the most telling status (``_fork_rank``): a phone that
        rang out (408) over a decline (603), busy (486) only when no phone rang. A 6xx does
        not stop the other branches: the desk phone may be declined while the softphone
        still rings. ``on_ringing`` fires once; ``on_early`` (``dial``) for each branch's early
        media. With one binding this is ``dial()``.
        """
        if not bindings:
            raise ValueError("dial_fork needs at least one binding")
        if len(bindings) == 1:
            b = bindings[0]
            return await self.dial(
                call, target_uri=b.contact, dest=b.source, transport=b.transport, party=party,
                from_user=from_user, from_display=from_display, timeout=timeout,
                on_ringing=on_ringing, info=info, on_early=on_early,
            )
        rang = False

        def ringing() -> None:
            nonlocal rang
            if not rang and on_ringing is not None:
                rang = True
                on_ringing()

        # Every leg is on the call before any INVITE goes out: a branch failing at once must
        # not look like the last leg of the call ending (call.done, on_call_end).
        legs = [self._outbound_leg(call, b.source, b.transport, party) for b in bindings]
        tasks = [
            asyncio.ensure_future(self._dial_leg(
                leg, target_uri=b.contact, from_user=from_user, from_display=from_display,
                timeout=timeout, on_ringing=ringing, info=info, on_early=on_early,
            ))
            for leg, b in zip(legs, bindings, strict=True)
        ]
        log.info("fork", call_id=call.id, party=party, branches=len(tasks))
        winner: Leg | None = None
        try:
            pending: set[asyncio.Future[Leg]] = set(tasks)
            while pending and winner is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                winner = next(
                    (t.result() for t in tasks if t in done and not t.exception()
                     and t.result().state is LegState.ANSWERED), None,
                )
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()  # each dial CANCELs its own INVITE
            await asyncio.gather(*tasks, return_exceptions=True)
            for leg in legs:
                if leg.state is LegState.ANSWERED:  # its dial was over as we were cancelled
                    self._spawn(self.hangup(leg))
                else:
                    self._end_leg(leg)  # a branch cancelled before its INVITE went out
            raise
        if winner is not None:
            for leg, task in zip(legs, tasks, strict=True):
                if leg is not winner:
                    self._drop_branch(leg, task)
            host, port = winner.peer
            log.info("fork_answered", call_id=call.id, party=party, contact=f"{host}:{port}")
            return winner
        outcomes = [t.result() for t in tasks if t.exception() is None]
        if not outcomes:  # no INVITE could be sent at all: as dial() would, raise
            error = tasks[0].exception()
            assert error is not None
            raise error
        chosen = min(outcomes, key=lambda leg: _fork_rank(leg.sip_status))
        for leg in legs:
            if leg is not chosen and leg in call.legs:
                call.legs.remove(leg)
        return chosen

    def _drop_branch(self, leg: Leg, task: asyncio.Future[Leg]) -> None:
        """A branch that lost the fork: out of the call now, CANCEL (or BYE) in the background."""
        if leg in leg.call.legs:
            leg.call.legs.remove(leg)

        async def drop() -> None:
            await self.hangup(leg)  # CANCEL while ringing, BYE if it answered too late
            with contextlib.suppress(Exception):
                await task  # its outcome is known (ENDED); only collect a send error

        self._spawn(drop())

    def _send_invite(
        self, leg: Leg, *, target_uri: str, from_user: str, from_display: str,
        on_ringing: Callable[[], None] | None, to_user: str | None = None,
        identity: Callable[[str, str], Identity] | None = None, info: str = "",
        on_answer: Callable[[Leg], None] | None = None,
        on_early: Callable[[Leg], None] | None = None,
    ) -> tuple[Request, asyncio.Future[Response]]:
        """Open the leg's channel and send the INVITE with our offer (``dial``'s first half)."""
        first = leg.call.legs[0].channel if leg.call.legs else None
        leg.channel = self.media.open_channel(near=first)  # it will likely meet the caller
        self._by_channel[id(leg.channel)] = leg
        offer = self._offer(leg)
        leg.local_sdp = offer
        transport, host = leg.transport, self.stack.advertised
        who = identity(from_user, from_display) if identity else Identity(from_user, from_display)
        extra = [("Privacy", "id")] if who.anonymous else []
        extra += [("P-Asserted-Identity", f"<sip:{who.asserted}@{host}>")] if who.asserted else []
        extra += [("Call-Info", f"<{info}>;purpose=info")] if info else []
        invite = new_invite(
            target_uri, via=self.stack.via(transport), host=host, from_user=who.user,
            from_display=who.display, to_user=to_user or leg.party,
            contact=self.stack.contact(transport=transport), sdp=offer.serialize().encode(),
            from_host="anonymous.invalid" if who.anonymous else None, extra=extra,
        )
        return invite, self._send_leg_invite(leg, invite, on_ringing, on_answer, on_early)

    def _send_leg_invite(
        self, leg: Leg, invite: Request, on_ringing: Callable[[], None] | None,
        on_answer: Callable[[Leg], None] | None = None,
        on_early: Callable[[Leg], None] | None = None,
    ) -> asyncio.Future[Response]:
        """Send ``invite`` for the leg (its first, or again with credentials)."""
        leg.outbound_invite = invite

        def provisional(resp: Response) -> None:
            leg.provisional.set()
            if on_early is not None and self._early_answer(leg, resp):
                leg.state = LegState.RINGING
                on_early(leg)
            elif resp.status in (180, 183) and leg.state is LegState.DIALING:
                leg.state = LegState.RINGING
                if on_ringing:
                    on_ringing()

        answered = weakref.ref(leg)  # the stack keeps this for 32 s; the leg is freed at its end

        def resend_ack(resp: Response) -> None:
            alive = answered()
            if alive is not None and alive.dialog is not None:
                self._send_ack(alive, resp)

        def final(resp: Response) -> None:
            if on_answer and 200 <= resp.status < 300 and leg.state is not LegState.ENDED:
                on_answer(leg)

        key, fut = self.stack.send_request(
            invite, leg.peer, leg.transport, on_provisional=provisional,
            on_retransmitted_2xx=resend_ack, on_final=final,
        )
        leg.outbound_key, leg.outbound_future = key, fut
        return fut

    def _early_answer(self, leg: Leg, resp: Response) -> bool:
        """Take a 18x's SDP answer to our offer as the ringing leg's media (the 2xx's answer
        replaces it); False without one, with a bad one, or when the leg has one already."""
        if not (180 <= resp.status < 200 and resp.body) or leg.media is not None \
                or leg.state not in (LegState.DIALING, LegState.RINGING) or leg.local_sdp is None:
            return False
        try:
            leg.media = sdp.parse_answer(sdp.parse(resp.body), leg.local_sdp)
        except SipError as exc:
            log.warning("bad_early_sdp", call_id=leg.call.id, error=str(exc))
            return False
        self._configure(leg)
        return True

    async def dial_unless(self, gone: asyncio.Event, call: Call, **dial: Any) -> Leg | None:
        """``dial()``, given up (CANCEL) if ``gone`` is set first (e.g. the caller hung up
        while the phone rang); None then, else the dialled leg, answered or not."""
        return await self._unless(gone, self.dial(call, **dial))

    async def dial_fork_unless(
        self, gone: asyncio.Event, call: Call, bindings: Sequence[Binding], **dial: Any
    ) -> Leg | None:
        """``dial_fork()``, given up (every branch CANCELled) if ``gone`` is set first."""
        return await self._unless(gone, self.dial_fork(call, bindings, **dial))

    @staticmethod
    async def _unless(gone: asyncio.Event, dial: Coroutine[Any, Any, Leg]) -> Leg | None:
        dialing = asyncio.ensure_future(dial)
        waiting = fired(gone)
        try:
            await asyncio.wait({dialing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if dialing.done():
            return dialing.result()
        dialing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dialing
        return None

    async def cancel(self, leg: Leg) -> None:
        """CANCEL an outbound INVITE still ringing (RFC 3261 §9.1)."""
        invite: Request | None = leg.outbound_invite
        if invite is None or leg.state not in (LegState.DIALING, LegState.RINGING):
            return
        cancel, call_id = cancel_for(invite), leg.call.id
        leg.state = LegState.ENDED
        invite_fut: asyncio.Future[Response] | None = leg.outbound_future
        if invite_fut is not None and not leg.provisional.is_set():
            # §9.1: a CANCEL MUST NOT be sent before a provisional response (a phone that has
            # not seen the INVITE yet answers it 481 and rings on); wait for one, or the final.
            got_1xx = fired(leg.provisional)
            try:
                waiters: set[asyncio.Future[Any]] = {got_1xx, invite_fut}
                await asyncio.wait(
                    waiters, timeout=self.timers.transaction,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                got_1xx.cancel()
        if invite_fut is None or not invite_fut.done():
            _, fut = self.stack.send_request(cancel, leg.peer, leg.transport)
            try:
                await asyncio.wait_for(fut, self.timers.cancel)
            except (TimeoutError, RequestTimeout):
                pass
        self._end_leg(leg)
        # The phone may have answered as the CANCEL crossed its 200 (RFC 3261 §9.1): then the
        # INVITE's final answer is a 2xx, and that dialog must be ACKed and ended with a BYE.
        if invite_fut is None:
            return
        try:
            resp = await asyncio.wait_for(asyncio.shield(invite_fut), self.timers.crossing_2xx)
        except (TimeoutError, RequestTimeout, asyncio.CancelledError):
            return
        if 200 <= resp.status < 300:
            log.info("answered_while_cancelled", call_id=call_id, party=leg.party)
            # Kept on the (ended) leg, outside self.dialogs, so that retransmissions of this
            # 2xx (our ACK lost) are ACKed again by dial()'s resend_ack.
            dialog = leg.dialog = Dialog.from_uac(invite, resp)
            dialog.terminate()
            self._send_ack(leg, resp)
            bye = dialog.bye(via=self.stack.via(leg.transport))
            _, bye_fut = self.stack.send_request(bye, self._next_hop(leg), leg.transport)
            bye_fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _send_ack(self, leg: Leg, resp: Response) -> None:
        assert leg.dialog is not None
        ack = leg.dialog.ack(via=self.stack.via(leg.transport), cseq=resp.cseq[0])
        self.stack.send_ack(ack, self._next_hop(leg), leg.transport)

    @staticmethod
    def _next_hop(leg: Leg) -> tuple[str, int]:
        """Where the leg's in-dialog requests go: the first Route of its dialog's route set
        (a Record-Routing proxy or SBC), else ``leg.peer``, where its signalling came from
        (the remote target is not used: behind NAT it is often unreachable)."""
        hop = leg.dialog.next_hop() if leg.dialog is not None else None
        return hop or leg.peer

    # ---------------------------------------------------------------- hang up
    async def hangup(self, leg: Leg) -> None:
        """End one leg from our side: BYE when answered, CANCEL or error when not."""
        if leg.state is LegState.ENDED:
            return
        if leg.direction == "inbound" and leg.state in (LegState.INCOMING, LegState.RINGING):
            self.reject(leg, TemporarilyUnavailable())
            return
        if leg.direction == "outbound" and leg.state in (LegState.DIALING, LegState.RINGING):
            await self.cancel(leg)
            return
        dialog, call_id = leg.dialog, leg.call.id
        self._end_leg(leg)
        if dialog is None:
            return
        bye = dialog.bye(via=self.stack.via(leg.transport))
        _, fut = self.stack.send_request(bye, self._next_hop(leg), leg.transport)
        try:
            await asyncio.wait_for(fut, self.timers.bye)
        except (TimeoutError, RequestTimeout):
            log.info("bye_unanswered", call_id=call_id)

    def _end_leg(self, leg: Leg) -> None:
        self.live_legs.pop(id(leg), None)
        if leg.channel is not None:
            self._by_channel.pop(id(leg.channel), None)
        if leg.state is LegState.ENDED and leg.ended.is_set():
            return
        leg.state = LegState.ENDED
        leg.ended.set()
        if leg.refresh_timer is not None:
            leg.refresh_timer.cancel()
            leg.refresh_timer = None
        if self.on_leg is not None:
            self.on_leg("ended", leg)
        if leg.channel is not None:
            leg.channel.close()
            leg.channel.on_dtmf = None  # its closures refer back to the leg
        if leg.invite is not None and leg.invite.key is not None:
            self.pending_invites.pop(leg.invite.key, None)
        if leg.dialog is not None:
            leg.dialog.terminate()
            self.dialogs.pop(leg.dialog.id, None)
        call = leg.call
        if all(x.state is LegState.ENDED for x in call.legs) and not call.done.is_set():
            call.done.set()
            self.calls.pop(call.id, None)
            self.on_call_end(call)
        if call.done.is_set():  # its legs that have ended refer to it weakly from now on
            for x in call.legs:
                if x.ended.is_set():
                    x.detach()

    async def hangup_call(self, call: Call, cause: HangupCause, side: str) -> None:
        if call.hangup_cause is None:
            call.hangup_cause, call.hangup_side = cause, side
        legs = [leg for leg in call.legs if leg.state is not LegState.ENDED]
        if len(legs) == 1:  # the usual case, the other party having hung up: no task
            await self.hangup(legs[0])
        elif legs:
            await asyncio.gather(*(self.hangup(leg) for leg in legs))

    async def fail_call(self, call: Call) -> None:
        """End a call whose flow raised: a 500 to an unanswered caller, BYE/CANCEL elsewhere.

        Without it the legs' channels, dialogs and the call record stay open until the
        caller happens to hang up (or forever, when nobody does).
        """
        for leg in call.legs:
            if leg.direction == "inbound" and leg.state in (LegState.INCOMING, LegState.RINGING):
                self.reject(leg, SipError())
        await self.hangup_call(call, HangupCause.FAILED, "system")

    # ---------------------------------------------------------- media helpers
    def _offer(self, leg: Leg) -> sdp.SessionDescription:
        return sdp.make_offer(
            local_address=self.media_address, local_port=leg.channel.port, codecs=self.codecs,
            session_id=self._session_id, session_version=leg.sdp_version, **self._srtp(leg),
        )

    def _srtp(self, leg: Leg) -> dict[str, Any]:
        """SDP arguments for the leg's SRTP: ``optional`` uses SDES keys on TLS legs only,
        since keys in clear-text signalling protect nothing (RFC 4568 §8.3); ``required``
        wants SRTP whatever the transport; the other leg of the call keeps its own."""
        policy = self.srtp_policy(leg)
        if policy == "optional" and leg.transport != "tls":
            policy = "off"
        return {"srtp": policy, "srtp_key": leg.channel.srtp_key}

    def _configure(self, leg: Leg) -> None:
        media = leg.media
        assert media is not None and leg.channel is not None
        leg.channel.configure(
            remote=media.remote, payload_type=media.payload_type,
            dtmf_payload_type=media.dtmf_payload_type,
            srtp=(media.srtp.suite, media.srtp.key) if media.srtp else None,
        )
        leg.channel.on_dtmf = lambda digit, leg=leg: self._key(leg, digit)

    def _key(self, leg: Leg, digit: str) -> None:
        if self.on_key is not None:
            self.on_key(leg, digit)
        leg.dtmf.put_nowait(digit)

    # ------------------------------------------------------ in-dialog requests
    def find_leg(self, req: Request) -> Leg | None:
        return self.dialogs.get((req.call_id, req.to_tag or "", req.from_tag or ""))

    def on_ack(self, sreq: ServerRequest) -> Coroutine[Any, Any, None] | None:
        """An ACK in a dialog, handled at once (no task): the hang-up to await when the SDP
        answer it carries is unusable, else None."""
        req = sreq.request
        leg = self.find_leg(req)
        if leg is None:
            return None
        offered, leg.offer_in_2xx = leg.offer_in_2xx, False
        failed = None
        if offered and req.body and leg.local_sdp:  # the answer to our 2xx's offer
            try:
                leg.media = sdp.parse_answer(sdp.parse(req.body), leg.local_sdp)
                self._configure(leg)
            except SipError:
                failed = self.hangup_call(leg.call, HangupCause.MEDIA_FAILED, "caller")
        leg.acked.set()
        return failed

    async def on_in_dialog(self, sreq: ServerRequest) -> None:
        req = sreq.request
        if req.method == "ACK":
            if (failed := self.on_ack(sreq)) is not None:
                await failed
            return
        leg = self.find_leg(req)
        if leg is None:
            raise CallDoesNotExist(f"no dialog for {req.method}")
        assert leg.dialog is not None
        if not leg.dialog.accept_remote_request(req):
            raise SipError(reason="Server Internal Error (CSeq out of order)")
        if req.method == "BYE":
            sreq.respond(200)
            side = "caller" if leg.direction == "inbound" else "callee"
            log.debug("bye_received", call_id=leg.call.id, side=side)  # call_ended tells
            call = leg.call
            if leg.released or (call.flow_owned and leg is not call.caller_leg):
                self._end_leg(leg)  # the agent left; the flow decides what the caller hears
                return
            if call.hangup_cause is None:
                call.hangup_cause, call.hangup_side = HangupCause.NORMAL, side
            self._end_leg(leg)
            await self.hangup_call(call, HangupCause.NORMAL, side)
        elif req.method == "INFO":
            digit = parse_sip_info(req.content_type or "", req.body)
            if digit is not None:
                if leg.channel is not None:
                    leg.channel.dtmf_received(digit)  # stops an interruptible prompt, then queues
                else:
                    leg.dtmf.put_nowait(digit)
            sreq.respond(200)
        elif req.method == "INVITE":
            self._reinvite(leg, sreq)
        elif req.method == "OPTIONS":
            sreq.respond(200, headers=ALLOW_HEADERS)
        elif req.method == "REFER" and self.on_refer is not None:
            self.on_refer(leg, sreq)
        elif req.method in ("UPDATE", "PRACK", "REFER", "NOTIFY"):
            raise SipError(f"{req.method} in a dialog", status=501)
        else:
            raise MethodNotAllowed(ALLOW)

    def partner(self, leg: Leg) -> Leg | None:
        """The live leg whose channel is bridged to ``leg``'s (in this call or another)."""
        peer = leg.channel.peer if leg.channel is not None else None
        return None if peer is None else self.leg_of(peer)

    def leg_of(self, channel: object) -> Leg | None:
        """The live leg (see ``live_legs``) whose channel is ``channel``."""
        leg = self._by_channel.get(id(channel))
        return leg if leg is not None and leg.channel is channel else None

    def replaced(self, value: str) -> Leg | None:
        """The answered leg a Replaces value names (RFC 3891), else None; BadRequest when
        malformed. Its to-tag is ours; the swapped reading some phones send is tried too."""
        call_id, to_tag, from_tag = parse_replaces(value)
        leg = self.dialogs.get((call_id, to_tag, from_tag)) or self.dialogs.get(
            (call_id, from_tag, to_tag))
        return leg if leg is not None and leg.state is LegState.ANSWERED else None

    async def notify(self, leg: Leg, status: int, reason: str, refer_id: int | None) -> None:
        """Tell the REFER's sender how the transfer goes (RFC 3515 §2.4.4; ``refer_id``, the
        REFER's CSeq, for every REFER after the first of the dialog); a transferor that has
        hung up is not told."""
        if leg.dialog is None or leg.state is not LegState.ANSWERED:
            return
        req = leg.dialog.notify(
            via=self.stack.via(leg.transport), contact=self.stack.contact(transport=leg.transport),
            status=status, reason=reason, refer_cseq=refer_id,
        )
        _, fut = self.stack.send_request(req, self._next_hop(leg), leg.transport)
        try:
            await asyncio.wait_for(fut, self.timers.transaction)
        except (TimeoutError, RequestTimeout):
            log.info("notify_unanswered", call_id=leg.call.id)

    def _reinvite(self, leg: Leg, sreq: ServerRequest) -> None:
        """Hold, unhold or a media change (RFC 3264 §8); our port and codec stay."""
        req = sreq.request
        if leg.reinviting:
            raise RequestPending("our own re-INVITE is pending")  # glare (RFC 3261 §14.2)
        leg.sdp_version += 1
        if not req.body:
            leg.local_sdp = self._offer(leg)  # the answer comes in the ACK
            leg.offer_in_2xx = True
            answer_sdp(sreq, contact=self.stack.contact(transport=leg.transport),
                       sdp=leg.local_sdp.serialize().encode())
            return
        offer = sdp.parse(req.body)  # a SipError (400, 488) is the answer
        answer, media = sdp.answer_offer(
            offer, local_address=self.media_address, local_port=leg.channel.port,
            supported=self.codecs, session_id=self._session_id, session_version=leg.sdp_version,
            **self._srtp(leg),
        )
        leg.local_sdp, leg.media = answer, media
        self._configure(leg)
        log.info("reinvite", call_id=leg.call.id, hold=media.remote_hold,
                 direction=str(media.direction))
        if self.on_hold is not None:
            self.on_hold(leg, media.remote_hold)
        answer_sdp(sreq, contact=self.stack.contact(transport=leg.transport),
                   sdp=answer.serialize().encode())

    def on_cancel(self, sreq: ServerRequest) -> None:
        req = sreq.request
        invite_key = self.stack.invite_key(req)
        leg = self.pending_invites.get(invite_key)
        if leg is None:
            # §9.2: a CANCEL that matches an INVITE already answered (its transaction lives on
            # in Accepted or Completed) gets a 200 and changes nothing; an unknown one a 481.
            invite = self.stack.server_request(invite_key)
            if invite is None and not self.stack.has_transaction(invite_key):
                raise CallDoesNotExist("CANCEL of no INVITE")
            sreq.respond(200)
            if invite is not None and not invite.answered:
                self._cancel_early(invite)
            return
        sreq.respond(200)
        self._cancelled(leg.call)
        self.reject(leg, RequestTerminated())
        self._spawn(self.hangup_call(leg.call, HangupCause.CANCELLED, "caller"))

    @staticmethod
    def _cancelled(call: Call) -> None:
        log.info("call_cancelled", call_id=call.id)
        call.hangup_cause = call.hangup_cause or HangupCause.CANCELLED
        call.hangup_side = call.hangup_side or "caller"

    def _cancel_early(self, invite: ServerRequest) -> None:
        """CANCEL of an INVITE whose handler task has not made a leg yet: answer it 487 now
        and remember it, so that ``new_inbound`` ends the leg at once."""
        stack = self.stack
        self._early_cancels = {k for k in self._early_cancels if stack.has_transaction(k)}
        assert invite.key is not None
        self._early_cancels.add(invite.key)
        invite.refuse(RequestTerminated(), to_tag=new_tag())

    def on_ack_timeout(self, event: AckTimeout) -> None:
        req = event.request
        leg = self.dialogs.get((req.call_id, event.response.to_tag or "", req.from_tag or ""))
        if leg is None:
            return
        log.warning("ack_timeout", call_id=leg.call.id)
        self._spawn(self.hangup_call(leg.call, HangupCause.ACK_TIMEOUT, "caller"))

    def on_server_timeout(self, event: TransactionTimeout) -> None:
        log.info("no_ack_for_final_response", method=event.request.method)

    def _watch(self, leg: Leg) -> None:
        """Refresh an answered leg in ``session_refresh`` s: a timer, not a task per leg
        (most calls end first; ``_end_leg`` cancels it)."""
        if self.session_refresh > 0 and leg.state is not LegState.ENDED:
            if leg.refresh_timer is not None:
                leg.refresh_timer.cancel()
            leg.refresh_timer = asyncio.get_running_loop().call_later(
                self.session_refresh, self._refresh_due, leg)

    def _refresh_due(self, leg: Leg) -> None:
        leg.refresh_timer = None
        if leg.state is LegState.ANSWERED:
            self._spawn(self._keepalive(leg))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _keepalive(self, leg: Leg) -> None:
        """Re-INVITE the leg; hang up its call when the peer is gone, else refresh again in
        ``session_refresh`` s."""
        if not await self.refresh(leg):
            log.warning("session_refresh_failed", call_id=leg.call.id, party=leg.party)
            side = "caller" if leg.direction == "inbound" else "callee"
            await self.hangup_call(leg.call, HangupCause.TIMEOUT, side)
            return
        self._watch(leg)

    async def refresh(self, leg: Leg) -> bool:
        """Send a re-INVITE with our unchanged SDP; False when the peer is gone."""
        if leg.dialog is None or leg.state is not LegState.ANSWERED or leg.local_sdp is None:
            return False
        req = leg.dialog.reinvite(
            via=self.stack.via(leg.transport), contact=self.stack.contact(transport=leg.transport),
            sdp=leg.local_sdp.serialize().encode(),
        )
        _, fut = self.stack.send_request(req, self._next_hop(leg), leg.transport)
        leg.reinviting = True
        try:
            resp = await asyncio.wait_for(fut, self.timers.transaction)
        except (TimeoutError, RequestTimeout):
            return False
        finally:
            leg.reinviting = False
        if 200 <= resp.status < 300:
            self._send_ack(leg, resp)
            return True
        return resp.status not in (408, 481)

