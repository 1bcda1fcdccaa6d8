"""The IVR engine's view of a live call (``ivr.engine.CallControl`` over a B2BUA leg)."""

from __future__ import annotations

import time
import wave
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.calls import flows
from callcenter.calls.call import HangupCause, Leg, LegState
from callcenter.calls.numbers import ANONYMOUS
from callcenter.events.bus import IvrStep
from callcenter.media.engine import PlayOutcome
from callcenter.media.g711 import PCMA, PCMU
from callcenter.sip.errors import SipError
from ivr.dialplan import OutboundMatch
from ivr.engine import CallerHungUp

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.services import CallServices
    from callcenter.config.models import Trunk

log = structlog.get_logger("ivr")


class LiveCall:
    """One caller in the IVR; every method raises CallerHungUp once the caller left."""

    def __init__(
        self, services: CallServices, leg: Leg, *, queues: QueueRunner | None,
        route_out: Callable[[str], OutboundMatch | None] = lambda number: None,
        trunks: Callable[[str], Trunk | None] = lambda name: None,
        answer: flows.Answer | None = None,
    ) -> None:
        self.services = services
        self.queues = queues
        self.route_out = route_out  #: the dialplan's outbound rules, for "ivr"
        self.trunks = trunks
        self.leg = leg
        self.call_id = leg.call.id
        #: the caller's number: empty for an anonymous caller (nothing to call back or match)
        self.caller = "" if leg.call.caller == ANONYMOUS else leg.call.caller
        self.called = leg.call.called
        self.language = "pl"
        #: a ring-through line's caller not answered yet: how to answer it
        self._answer = answer
        #: the status a ring-through caller gets if the flow hangs up after a failed transfer
        self._refusal: int | None = None

    # ------------------------------------------------------------ helpers
    def _check(self) -> None:
        if self.leg.state is not LegState.ANSWERED and (
                self._answer is None or self.leg.state is LegState.ENDED):
            raise CallerHungUp()

    async def _ready(self) -> None:
        """A ring-through caller is answered by the first step that needs the line."""
        if self._answer is not None and self.leg.state is not LegState.ENDED \
                and not await self._answer_now(self.leg):
            raise CallerHungUp()  # gone, or never confirmed our 200 (as an answered line)
        self._check()

    async def _answer_now(self, leg: Leg) -> bool:
        answer, self._answer = self._answer, None
        return answer is not None and await answer(leg)

    def _ringing_answer(self) -> flows.Answer | None:
        """How a transfer answers this caller when its callee does (None: answered)."""
        return self._answer_now if self._answer is not None else None

    def _failed(self, outcome: str) -> str:
        """A ring-through transfer that failed: the status the caller would get."""
        self._refusal = {"busy": 486, "rejected": 603}.get(outcome, 480)
        return outcome

    @property
    def _codec(self) -> int:
        return PCMA if self.leg.codec == "PCMA" else PCMU

    # ------------------------------------------------------- CallControl
    async def play(self, prompts: Sequence[str], *, interruptible: bool) -> str | None:
        if prompts:
            await self._ready()
        for path in prompts:
            self._check()
            if interruptible and not self.leg.dtmf.empty():
                return self.leg.dtmf.get_nowait()
            prompt = self.services.prompts.get(path, None, self._codec)
            outcome = await flows.play(self.leg, prompt, interruptible=interruptible)
            self._check()
            if outcome is PlayOutcome.INTERRUPTED and not self.leg.dtmf.empty():
                return self.leg.dtmf.get_nowait()
        return None

    async def get_digit(self, timeout: float) -> str | None:
        await self._ready()
        if not self.leg.dtmf.empty():
            return self.leg.dtmf.get_nowait()
        if timeout <= 0:
            return None
        digit = await flows.next_digit(self.leg, timeout)
        self._check()
        return digit

    async def record(self, path: Path, *, max_seconds: float, beep: bool) -> float:
        if self._answer is not None and self.leg.state is not LegState.ENDED \
                and not await self._answer_now(self.leg):
            return 0.0
        if self.leg.state is not LegState.ANSWERED or self.leg.channel is None:
            return 0.0
        if beep:
            await flows.play(self.leg, self.services.prompts.get("beep", None, self._codec))
        while not self.leg.dtmf.empty():  # keys pressed before the beep do not end it
            self.leg.dtmf.get_nowait()
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.leg.channel.start_recording(path)
        try:
            deadline = started + max_seconds
            while self.leg.state is LegState.ANSWERED:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                digit = await flows.next_digit(self.leg, left)
                if digit == "#":
                    break
        finally:
            if self.leg.channel is not None:
                self.leg.channel.stop_recording()
                await self.leg.channel.recording_closed()  # a media worker writes it
        try:  # what the file holds (a silent peer sends nothing), not how long we waited
            with wave.open(str(path), "rb") as w:
                return round(w.getnframes() / w.getframerate(), 2)
        except (OSError, wave.Error, EOFError):
            return round(time.monotonic() - started, 2)

    async def transfer_to_queue(self, queue: str, *, priority: int, skills: dict[str, int]) -> str:
        await self._ready()
        runner = self.queues
        if runner is None:
            log.warning("no_acd", queue=queue)
            return "failed"
        outcome: str = await runner.enqueue(
            self.leg, queue, priority=priority, skills=skills, language=self.language
        )
        return self._unless_transferred(outcome)

    async def transfer_to_user(self, user: str) -> str:
        self._check()
        answer = self._ringing_answer()
        outcome = self._unless_transferred(
            await flows.transfer_to_user(self.services, self.leg, user, answer=answer))
        return self._failed(outcome) if answer is not None else outcome

    def _unless_transferred(self, outcome: str) -> str:
        """A transfer took the caller: this flow ends here, leaving the call to it."""
        if outcome == "transferred":
            self.event("ivr_transferred", to=self.leg.call.transferred_to)
            raise CallerHungUp()
        return outcome

    async def transfer_to_number(self, number: str) -> str:
        """Through the outbound rules that allow ``ivr``; ``refused`` or ``no_route`` else."""
        self._check()
        match = self.route_out(number)
        rule = match.rule if match is not None and match.allowed else None
        trunk = self.trunks(rule.trunk) if rule is not None and rule.trunk else None
        if rule is None or trunk is None:
            log.info("outbound_refused", number=number,
                     reason=match.reason if match is not None else "no outbound rule")
            return "no_route" if match is None else "refused"
        answer = self._ringing_answer()
        outcome = self._unless_transferred(await flows.transfer_to_number(
            self.services, self.leg, trunk, number, caller_id=rule.caller_id or self.caller,
            answer=answer))
        return self._failed(outcome) if answer is not None else outcome

    async def hangup(self) -> None:
        call = self.leg.call
        if self._answer is not None:  # ring-through, never answered: a busy callee's busy
            if self._refusal is not None and call.hangup_cause is None:
                call.hangup_side = "callee"
                call.hangup_cause = {486: HangupCause.BUSY, 603: HangupCause.REJECTED}.get(
                    self._refusal, HangupCause.NO_ANSWER)
            self.services.b2bua.reject(self.leg, SipError(status=self._refusal or 480))
        await self.services.b2bua.hangup_call(call, HangupCause.NORMAL, "system")

    def now(self) -> datetime:
        return self.services.clock.now()

    def event(self, type: str, **data: Any) -> None:
        if type == "ivr_node" and "language" in data:
            self.language = str(data["language"])
        # a debug line: each step is kept in call_events and published whatever the level
        log.debug(type, **{k: v for k, v in data.items() if k != "file"})
        self.services.publish(IvrStep(call_id=self.call_id, step=type, data=data))

