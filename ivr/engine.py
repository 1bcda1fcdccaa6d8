"""The IVR engine: runs one call through a dialplan flow against a ``CallControl``.

The engine never touches SIP or RTP. The server gives it a ``CallControl`` (play, keys, record,
transfer, hang up, clock, events) and an ``IvrServices`` (contact history, callback jobs,
voicemail and survey storage); tests give it fakes. A call keeps the ``Dialplan`` it started
with, so a hot reload never changes a flow under a caller.

Keys: an interruptible prompt stops on a key and that key counts for the next menu or collect
(barge-in); keys pressed earlier wait in the call's bounded type-ahead buffer, which menus and
collects read first (``get_digit(0)`` must return a buffered key or None at once).
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from ivr.dialplan import Dialplan, Line, Program
from ivr.nodes import (
    GOODBYE,
    HANGUP,
    REPEAT,
    VAR_REF,
    BranchNode,
    CallbackNode,
    Case,
    CollectNode,
    GotoNode,
    HangupNode,
    LanguageNode,
    MenuNode,
    PlayNode,
    QueueNode,
    SayNode,
    ScheduleNode,
    SetNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
)
from ivr.say import SayError, say
from ivr.schedule import ScheduleState

log = logging.getLogger("ivr.engine")

#: keys kept by the engine after a barge-in (the call keeps its own type-ahead buffer)
PENDING_KEYS = 16


class CallerHungUp(Exception):
    """Raised by CallControl methods once the caller has gone; the engine stops quietly."""


class Outcome(StrEnum):
    """Transfer outcomes the engine understands; any other string is looked up in ``outcomes``."""

    #: the caller talked to the agent and the agent hung up; the caller is still on the line
    ANSWERED = "answered"
    #: the caller hung up (in the queue or during the conversation); the flow ends
    HANGUP = "hangup"


class CallControl(Protocol):
    """What the engine needs from a live call. Methods raise CallerHungUp once the caller left
    (except ``record``, which returns what it got so a message ended by hanging up is kept)."""

    call_id: str
    caller: str
    called: str

    async def play(self, prompts: Sequence[str], *, interruptible: bool) -> str | None:
        """Play WAV paths in order; return the key that interrupted (consumed), None when done."""
        ...

    async def get_digit(self, timeout: float) -> str | None:
        """Next key (type-ahead buffer first); None after ``timeout`` (0 = buffer only)."""
        ...

    async def record(self, path: Path, *, max_seconds: float, beep: bool) -> float:
        """Record to a WAV until #, hang-up or ``max_seconds``; return the seconds recorded."""
        ...

    async def transfer_to_queue(self, queue: str, *, priority: int, skills: dict[str, int]) -> str:
        """Queue the call; return an outcome (``answered``, ``hangup``, ``timeout``...)."""
        ...

    async def transfer_to_user(self, user: str) -> str:
        """Ring a user; return an outcome."""
        ...

    async def transfer_to_number(self, number: str) -> str:
        """Dial an external number; return an outcome."""
        ...

    async def hangup(self) -> None:
        """End the call."""
        ...

    def now(self) -> datetime:
        """Aware local time (the server clock)."""
        ...

    def event(self, type: str, **data: Any) -> None:
        """Record an event of this call (the server adds the call id and time)."""
        ...


@dataclass(frozen=True)
class ContactHistory:
    """What we know about a caller from earlier calls."""

    previous_calls: int = 0
    last_agent: str | None = None
    open_callbacks: int = 0


@dataclass(frozen=True)
class Customer:
    """The caller as a customer record (``customer.*``); all empty for an unknown caller."""

    #: a record existed before this call (the call did not create it)
    known: bool = False
    name: str = ""
    #: the record's free fields (plan, tier, language, ...): ``customer.fields.<name>``
    fields: Mapping[str, str] = field(default_factory=dict)
    open_callbacks: int = 0
    last_agent: str = ""
    #: whole days since the last earlier contact (0: within 24 h); None: none before
    last_contact_days: int | None = None

    def variables(self) -> dict[str, str]:
        """The ``customer.*`` variables: tier and language are the fields of those names."""
        days = self.last_contact_days
        return {
            "customer.known": "1" if self.known else "0", "customer.name": self.name,
            "customer.tier": self.fields.get("tier", ""),
            "customer.language": self.fields.get("language", ""),
            "customer.open_callbacks": str(self.open_callbacks),
            "customer.last_agent": self.last_agent,
            "customer.last_contact_days": "" if days is None else str(days),
            **{f"customer.fields.{k}": v for k, v in self.fields.items()},
        }


@dataclass(frozen=True)
class CallbackRequest:
    """A callback job for the dialer or a queue to serve later."""

    call_id: str
    caller: str
    number: str
    queue: str
    language: str
    requested_at: datetime


@dataclass(frozen=True)
class VoicemailMessage:
    """A recorded message in a queue's voicemail box."""

    call_id: str
    queue: str
    caller: str
    called: str
    language: str
    path: Path
    seconds: float
    recorded_at: datetime


@dataclass(frozen=True)
class SurveyResult:
    """A caller's rating of a conversation."""

    call_id: str
    caller: str
    called: str
    rating: int
    queue: str | None
    rated_at: datetime


class IvrServices(Protocol):
    """Storage and lookups the engine uses (the server implements them over SQLite)."""

    async def contact_history(self, caller: str) -> ContactHistory:
        """Earlier calls of ``caller``."""
        ...

    async def customer(self, call_id: str, caller: str, now: datetime) -> Customer:
        """The customer record the call was recognised as (an empty one when none)."""
        ...

    async def identify(self, call_id: str, field: str, value: str,
                       now: datetime) -> Customer | None:
        """The customer whose free field ``field`` is ``value`` (the call joins them), or
        None when there is none."""
        ...

    async def create_callback(self, request: CallbackRequest) -> None:
        """Store a callback job."""
        ...

    def voicemail_path(self, queue: str, call_id: str) -> Path:
        """Where to record a message for ``queue`` (the directory exists)."""
        ...

    async def save_voicemail(self, message: VoicemailMessage) -> None:
        """Store a recorded message (listed per queue)."""
        ...

    async def save_survey(self, result: SurveyResult) -> None:
        """Store a rating with the call."""
        ...


class EndReason(StrEnum):
    """Why a flow ended."""

    HANGUP = "hangup"  # the IVR hung up (goodbye, hangup node)
    CALLER_HANGUP = "caller_hangup"
    LOOP = "loop"  # too many nodes in one call
    ERROR = "error"  # a bug or a failing service; the caller heard goodbye


@dataclass
class FlowResult:
    """What happened: the reason, the nodes entered in order and the final variables."""

    reason: EndReason
    path: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=256)
def number_pattern(pattern: str) -> re.Pattern[str]:
    """Asterisk-style number pattern: X any digit, Z 1-9, N 2-9, [1-5] a set, . one or more
    characters, ! zero or more; anything else is literal."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise ValueError(f"bad number pattern {pattern!r}: '[' without ']'")
            out.append(f"[{re.escape(pattern[i + 1:end]).replace(chr(92) + '-', '-')}]")
            i = end + 1
            continue
        out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(
            c, re.escape(c)))
        i += 1
    return re.compile("".join(out))


async def run_flow(
    call: CallControl,
    dialplan: Dialplan,
    *,
    services: IvrServices,
    sounds: Path,
    line: Line | None = None,
    max_steps: int = 500,
) -> FlowResult:
    """Run the call through its line's flow until it ends; never raises CallerHungUp.

    ``line`` defaults to ``dialplan.match(call.called)``. A line without a flow goes straight
    to its ``queue``, or plays its ``prompt`` and waits ``timeout`` seconds for keys (v0).
    """
    if line is None:
        line = dialplan.match(call.called)
    if line is None:
        call.event("ivr_end", reason="no_line")
        await call.hangup()
        return FlowResult(EndReason.HANGUP)
    session = _Session(call, dialplan.program(line), line, services, sounds, max_steps)
    return await session.run()


class _Session:
    """The state of one call in the IVR."""

    def __init__(
        self,
        call: CallControl,
        program: Program,
        line: Line,
        services: IvrServices,
        sounds: Path,
        max_steps: int,
    ) -> None:
        self.call = call
        self.program = program
        self.line = line
        self.services = services
        self.sounds = sounds
        self.max_steps = max_steps
        self.lang = line.language
        self.pending: deque[str] = deque(maxlen=PENDING_KEYS)
        self.path: list[str] = []
        self.queue: str | None = None
        self.vars: dict[str, str] = {
            "caller": call.caller,
            "called": call.called,
            "line": line.number,
            "language": line.language,
            "call_id": call.call_id,
            "digits": "",
            "outcome": "",
        }
        self._history_loaded = False
        self._customer_loaded = False

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> FlowResult:
        reason = EndReason.HANGUP
        try:
            if self.line.flow is None:
                await self._no_flow()
            else:
                target: str | None = self.line.flow
                while target is not None:
                    if len(self.path) >= self.max_steps:
                        self.call.event("ivr_error", error="too many steps", node=target)
                        reason = EndReason.LOOP
                        await self._goodbye()
                        break
                    target = await self._enter(target)
        except CallerHungUp:
            reason = EndReason.CALLER_HANGUP
        except Exception as exc:
            log.exception("ivr failed on call %s", self.call.call_id)
            self.call.event("ivr_error", error=repr(exc), node=self.path[-1] if self.path else "")
            reason = EndReason.ERROR
            try:
                await self._goodbye()
            except Exception:  # noqa: BLE001 - the caller may be gone already
                pass
        self.call.event("ivr_end", reason=reason.value, node=self.path[-1] if self.path else "",
                        digits=self.vars["digits"], path=self.path[-12:])
        return FlowResult(reason, self.path, dict(self.vars))

    async def _enter(self, name: str) -> str | None:
        self.path.append(name)
        node = self.program.nodes.get(name)
        if name == GOODBYE and self.path[-2:-1] == [GOODBYE]:
            node = None  # a user goodbye node going on to "goodbye" means the built-in one
        kind = node.type if node is not None else name
        self.call.event("ivr_node", node=name, node_type=kind, file=self.program.file,
                        language=self.lang, digits=self.vars["digits"])
        if node is None:
            if name == HANGUP:
                await self.call.hangup()
            else:  # built-in goodbye (or a target lost by a bug: still polite)
                await self._goodbye()
            return None
        handler = getattr(self, f"_node_{node.type}")
        result: str | None = await handler(name, node)
        return result

    async def _no_flow(self) -> None:
        """Lines without ``flow:``: straight into the queue, or the v0 prompt-and-keys path."""
        self.path.append(self.line.number)
        if self.line.queue is not None:
            outcome = await self.call.transfer_to_queue(self.line.queue, priority=0, skills={})
            self.vars["outcome"] = outcome
            if outcome == Outcome.HANGUP:
                raise CallerHungUp
        else:
            await self._play([self.line.prompt], interruptible=True, keep=True)
            while await self._next_key(self.line.timeout) is not None:
                pass
        await self._goodbye()

    # -- media helpers -----------------------------------------------------------------------

    def _path(self, prompt: str) -> str:
        own = self.sounds / self.lang / f"{prompt}.wav"
        if own.is_file():
            return str(own)
        common = self.sounds / f"{prompt}.wav"
        return str(common if common.is_file() else own)

    def _heard(self, digit: str | None) -> str | None:
        if digit is not None:
            self.vars["digits"] += digit
        return digit

    async def _play(
        self, prompts: Sequence[str | None], *, interruptible: bool, keep: bool = True
    ) -> str | None:
        """Play; with ``keep`` an interrupting key is kept for the next menu (barge-in)."""
        names = [p for p in prompts if p]
        if not names:
            return None
        digit = self._heard(
            await self.call.play([self._path(p) for p in names], interruptible=interruptible)
        )
        if digit is not None and keep:
            self.pending.append(digit)
        return digit

    async def _next_key(self, timeout: float) -> str | None:
        if self.pending:
            return self.pending.popleft()
        return self._heard(await self.call.get_digit(timeout))

    async def _ask(self, prompts: Sequence[str], timeout: float) -> str | None:
        """First key of an answer: type-ahead, else a key during the prompt, else a wait."""
        digit = await self._next_key(0)
        if digit is None:
            digit = await self._play(prompts, interruptible=True, keep=False)
        if digit is None:
            digit = await self._next_key(timeout)
        return digit

    async def _entry(self, first: str, max_digits: int, terminator: str | None,
                     inter_digit: float) -> str:
        """Digits from ``first`` until the terminator, ``max_digits`` or a pause."""
        digits = ""
        key: str | None = first
        while key is not None:
            if key == terminator:
                break
            digits += key
            if len(digits) >= max_digits:
                break
            key = await self._next_key(inter_digit)
        return digits

    async def _goodbye(self) -> None:
        """The built-in end: the goodbye prompt, then hang up."""
        await self._play([GOODBYE], interruptible=False)
        await self.call.hangup()

    # -- variables ---------------------------------------------------------------------------

    async def _value(self, name: str) -> str:
        if name.startswith("history.") and not self._history_loaded:
            self._history_loaded = True
            try:
                history = await self.services.contact_history(self.call.caller)
            except Exception as exc:  # noqa: BLE001 - a failed lookup is an empty history
                self.call.event("ivr_error", error=f"contact history: {exc!r}")
                history = ContactHistory()
            self.vars["history.previous_calls"] = str(history.previous_calls)
            self.vars["history.last_agent"] = history.last_agent or ""
            self.vars["history.open_callbacks"] = str(history.open_callbacks)
        if name.startswith("customer.") and not self._customer_loaded:
            self._customer_loaded = True
            try:
                customer = await self.services.customer(self.call.call_id, self.call.caller,
                                                        self.call.now())
            except Exception as exc:  # noqa: BLE001 - a failed lookup is an unknown caller
                self.call.event("ivr_error", error=f"customer: {exc!r}")
                customer = Customer()
            self.vars.update(customer.variables())
            self.call.event("ivr_customer", known=customer.known, name=customer.name)
        return self.vars.get(name, "")

    async def _identify(self, field: str, value: str) -> None:
        """The caller typed ``value`` of ``field``: the call joins that customer, if any."""
        try:
            customer = await self.services.identify(self.call.call_id, field, value,
                                                    self.call.now())
        except Exception as exc:  # noqa: BLE001 - a failed lookup leaves the caller as they were
            self.call.event("ivr_error", error=f"identify: {exc!r}")
            return
        self.call.event("ivr_identified", field=field, found=customer is not None)
        if customer is not None:
            self._customer_loaded = True
            for name in [v for v in self.vars if v.startswith("customer.")]:
                del self.vars[name]
            self.vars.update(customer.variables())

    async def _interpolate(self, text: str) -> str:
        out = text
        for name in set(VAR_REF.findall(text)):
            out = out.replace(f"${{{name}}}", await self._value(name))
        return out

    async def _holds(self, case: Case) -> bool:
        if case.caller is not None and not number_pattern(case.caller).fullmatch(self.call.caller):
            return False
        if case.called is not None and not number_pattern(case.called).fullmatch(self.call.called):
            return False
        if case.language is not None and case.language != self.lang:
            return False
        if case.variable is None:
            return True
        value = await self._value(case.variable)
        if case.equals is not None and value != await self._interpolate(case.equals):
            return False
        if case.not_equals is not None and value == await self._interpolate(case.not_equals):
            return False
        if case.in_ is not None and value not in case.in_:
            return False
        if case.matches is not None and not re.fullmatch(case.matches, value):
            return False
        if case.empty is not None and (value == "") != case.empty:
            return False
        if case.min is not None or case.max is not None:
            try:
                number = float(value)
            except ValueError:
                return False
            if math.isnan(number):
                return False
            if case.min is not None and number < case.min:
                return False
            if case.max is not None and number > case.max:
                return False
        return True

    # -- node handlers (one per type) --------------------------------------------------------

    async def _node_play(self, name: str, node: PlayNode) -> str:
        await self._play(node.prompts, interruptible=node.interruptible)
        return node.next

    async def _key(self, name: str, node: MenuNode | CollectNode) -> str | None:
        """The first key of an answer to the node's prompts, asked again (after its timeout
        prompt) on silence; None once ``retries`` silences in a row ran out."""
        timeouts = 0
        while (key := await self._ask(node.prompts, node.timeout)) is None:
            timeouts += 1
            self.call.event("ivr_timeout", node=name, count=timeouts)
            if timeouts >= node.retries:
                return None
            await self._play([node.timeout_prompt], interruptible=True)
        return key

    async def _node_menu(self, name: str, node: MenuNode) -> str:
        invalid = 0
        while (key := await self._key(name, node)) is not None:
            target = node.options.get(key.upper())
            if target == REPEAT:
                continue
            if target is not None:
                self.call.event("ivr_choice", node=name, key=key, target=target)
                return target
            invalid += 1
            self.call.event("ivr_invalid", node=name, key=key, count=invalid)
            if invalid >= node.retries:
                return node.on_invalid
            await self._play([node.invalid_prompt], interruptible=True)
        return node.on_timeout

    async def _node_collect(self, name: str, node: CollectNode) -> str:
        invalid = 0
        while (key := await self._key(name, node)) is not None:
            digits = await self._entry(key, node.max_digits, node.terminator,
                                       node.inter_digit_timeout)
            valid = node.min_digits <= len(digits) <= node.max_digits and (
                node.pattern is None or re.fullmatch(node.pattern, digits) is not None
            )
            if valid:
                self.vars[node.variable] = digits
                self.call.event("ivr_collected", node=name, variable=node.variable,
                                value=digits)
                if node.identify:
                    await self._identify(node.identify, digits)
                return node.next
            invalid += 1
            self.call.event("ivr_invalid", node=name, key=digits, count=invalid)
            if invalid >= node.retries:
                return node.on_invalid
            await self._play([node.invalid_prompt], interruptible=True)
        return node.on_timeout

    async def _node_set(self, name: str, node: SetNode) -> str:
        for variable, value in node.variables.items():
            self.vars[variable] = await self._interpolate(value)
        return node.next

    async def _node_branch(self, name: str, node: BranchNode) -> str:
        for case in node.cases:
            if await self._holds(case):
                return case.goto
        return node.else_

    async def _node_schedule(self, name: str, node: ScheduleNode) -> str:
        state = self.program.schedules[node.schedule].state(self.call.now())
        self.call.event("ivr_schedule", node=name, state=state.value)
        if state is ScheduleState.OPEN:
            return node.open
        if state is ScheduleState.HOLIDAY and node.holiday is not None:
            return node.holiday
        return node.closed

    async def _node_language(self, name: str, node: LanguageNode) -> str:
        self.lang = self.vars["language"] = node.language
        return node.next

    async def _node_say(self, name: str, node: SayNode) -> str:
        value = await self._interpolate(node.value)
        try:
            words = say(node.say, value, self.lang, node.gender)
        except SayError as exc:
            self.call.event("ivr_error", node=name, error=str(exc))
            words = []
        await self._play([*node.before, *words, *node.after], interruptible=node.interruptible)
        return node.next

    def _after_transfer(self, name: str, node: QueueNode | TransferNode, outcome: str) -> str:
        self.vars["outcome"] = outcome
        self.call.event("ivr_transfer", node=name, outcome=outcome)
        if outcome == Outcome.HANGUP:
            raise CallerHungUp
        if outcome == Outcome.ANSWERED:
            return node.next
        return node.outcomes.get(outcome, node.on_failure)

    async def _node_queue(self, name: str, node: QueueNode) -> str:
        await self._play(node.prompts, interruptible=False)
        self.queue = node.queue
        outcome = await self.call.transfer_to_queue(
            node.queue, priority=node.priority, skills=dict(node.skills)
        )
        return self._after_transfer(name, node, outcome)

    async def _node_transfer(self, name: str, node: TransferNode) -> str:
        await self._play(node.prompts, interruptible=False)
        if node.user is not None:
            user = await self._interpolate(node.user)
            outcome = await self.call.transfer_to_user(user) if user else "no_user"
        else:
            number = await self._interpolate(node.number or "")
            outcome = await self.call.transfer_to_number(number) if number else "no_number"
        return self._after_transfer(name, node, outcome)

    async def _node_voicemail(self, name: str, node: VoicemailNode) -> str:
        await self._play(node.prompts, interruptible=True, keep=False)  # a key skips the intro
        path = self.services.voicemail_path(node.queue, self.call.call_id)
        seconds = await self.call.record(path, max_seconds=node.max_seconds, beep=node.beep)
        if seconds < node.min_seconds:
            self.call.event("ivr_voicemail", node=name, queue=node.queue, saved=False,
                            seconds=seconds)
            return node.next
        message = VoicemailMessage(
            call_id=self.call.call_id, queue=node.queue, caller=self.call.caller,
            called=self.call.called, language=self.lang, path=path, seconds=seconds,
            recorded_at=self.call.now(),
        )
        await self.services.save_voicemail(message)
        self.call.event("ivr_voicemail", node=name, queue=node.queue, saved=True,
                        seconds=seconds, path=str(path))
        await self._play([node.saved_prompt], interruptible=True, keep=False)
        return node.next

    async def _node_callback(self, name: str, node: CallbackNode) -> str:
        caller = self.call.caller
        shape = rf"\+?[0-9]{{{node.min_digits},{node.max_digits}}}"
        own = caller if re.fullmatch(shape, caller) else None
        prompts = node.prompts if own else [node.enter_prompt]
        failures = 0
        number: str | None = None
        while number is None:
            key = await self._ask(prompts, node.timeout)
            if key is not None and own is not None and key == node.confirm_key:
                number = own
                break
            entry = "" if key is None else await self._entry(
                key, node.max_digits, node.terminator, node.inter_digit_timeout)
            if node.min_digits <= len(entry) <= node.max_digits and entry.isdigit():
                number = entry
                break
            failures += 1
            self.call.event("ivr_invalid" if key else "ivr_timeout", node=name, key=entry,
                            count=failures)
            if failures >= node.retries:
                return node.on_failure
            await self._play([node.invalid_prompt if key else node.timeout_prompt],
                             interruptible=True)
        request = CallbackRequest(
            call_id=self.call.call_id, caller=caller, number=number, queue=node.queue,
            language=self.lang, requested_at=self.call.now(),
        )
        await self.services.create_callback(request)
        self.vars["callback_number"] = number
        self.call.event("ivr_callback", node=name, queue=node.queue, number=number)
        await self._play([node.booked_prompt], interruptible=False)
        return node.next

    async def _node_survey(self, name: str, node: SurveyNode) -> str:
        for attempt in range(1, node.retries + 1):
            key = await self._ask(node.prompts, node.timeout)
            if key is not None and key.isdigit() and node.min_rating <= int(key) <= (
                node.max_rating
            ):
                result = SurveyResult(
                    call_id=self.call.call_id, caller=self.call.caller, called=self.call.called,
                    rating=int(key), queue=self.queue, rated_at=self.call.now(),
                )
                await self.services.save_survey(result)
                self.vars["rating"] = key
                self.call.event("ivr_survey", node=name, rating=int(key))
                await self._play([node.thank_you_prompt], interruptible=False)
                return node.next
            self.call.event("ivr_invalid" if key else "ivr_timeout", node=name, key=key or "",
                            count=attempt)
            if attempt < node.retries and key is not None:
                await self._play([node.invalid_prompt], interruptible=True)
        self.call.event("ivr_survey", node=name, rating=None)
        return node.next

    async def _node_hangup(self, name: str, node: HangupNode) -> None:
        await self._play(node.prompts, interruptible=False)
        await self.call.hangup()

    async def _node_goto(self, name: str, node: GotoNode) -> str:
        return node.target

