"""Dialplan node types: one frozen pydantic model per ``type:``.

Every node names where the call goes next (``next``, ``on_timeout``, options...). A target is
a node name of the same file, or one of the built-ins ``goodbye`` (the goodbye prompt, then
hang up; a node of that name overrides it) and ``hangup``. Menu options may also say
``repeat``. Every wait has a timeout and every failure a destination, by default ``goodbye``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ivr.say import Gender

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_-]*$"
VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
PROMPT_RE = r"^[A-Za-z0-9_][A-Za-z0-9_/-]*$"
DTMF_KEYS = "0123456789*#ABCD"
GOODBYE, HANGUP, REPEAT = "goodbye", "hangup", "repeat"
BUILTIN_TARGETS = (GOODBYE, HANGUP)
VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")

SubLoc = tuple[str | int, ...]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _text(value: Any) -> Any:
    """Numbers written without quotes become text (values are interpolated strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _key(value: Any) -> Any:
    value = _text(value)
    if not isinstance(value, str) or len(value) != 1 or value.upper() not in DTMF_KEYS:
        raise ValueError(f"expected one key of 0-9 * # A-D, got {value!r}")
    return value.upper()


def _regex(value: Any) -> Any:
    if value is not None:
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


Target = Annotated[str, Field(pattern=NAME_RE)]
Prompt = Annotated[str, Field(pattern=PROMPT_RE)]
Prompts = Annotated[list[Prompt], BeforeValidator(_one_or_many)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Key = Annotated[str, BeforeValidator(_key)]
Text = Annotated[str, BeforeValidator(_text)]
Regex = Annotated[str | None, BeforeValidator(_regex)]
VarName = Annotated[str, Field(pattern=VAR_RE)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    #: fields holding one target, then fields holding one prompt (or None)
    _targets: ClassVar[tuple[str, ...]] = ()
    _prompts: ClassVar[tuple[str, ...]] = ()
    #: True when the node waits for the caller or the network (loop guard)
    waits: ClassVar[bool] = True

    def target_refs(self) -> Iterator[tuple[SubLoc, str]]:
        """``(field path, target)`` of every destination."""
        for name in self._targets:
            value = getattr(self, name)
            if value is not None:
                yield (name,), value

    def prompt_refs(self) -> Iterator[tuple[SubLoc, str]]:
        """``(field path, prompt name)`` of every prompt the node may play."""
        for name in self._prompts:
            value = getattr(self, name)
            if isinstance(value, list):
                yield from (((name, i), p) for i, p in enumerate(value))
            elif value is not None:
                yield (name,), value

    def variables_set(self) -> Iterator[str]:
        """Names of variables this node assigns."""
        return iter(())

    def variables_read(self) -> Iterator[tuple[SubLoc, str]]:
        """``(field path, name)`` of every ``${name}`` the node uses."""
        return iter(())


class PlayNode(_Node):
    """Play prompts, then go on; ``interruptible`` prompts stop on a key, which is kept."""

    type: Literal["play"]
    prompts: Prompts = Field(min_length=1)
    interruptible: bool = False
    next: Target = GOODBYE
    _targets = ("next",)
    _prompts = ("prompts",)


class MenuNode(_Node):
    """Prompt, then one key picks a target; invalid keys and silence are retried."""

    type: Literal["menu"]
    prompts: Prompts = Field(min_length=1)
    options: dict[Key, Target] = Field(min_length=1)
    timeout: Seconds = 5
    #: attempts before on_timeout (silence, in a row) or on_invalid (wrong keys)
    retries: int = Field(default=3, ge=1, le=10)
    invalid_prompt: Prompt | None = "invalid_option"
    timeout_prompt: Prompt | None = "no_input"
    on_invalid: Target = GOODBYE
    on_timeout: Target = GOODBYE
    _targets = ("on_invalid", "on_timeout")
    _prompts = ("prompts", "invalid_prompt", "timeout_prompt")

    @field_validator("options", mode="before")
    @classmethod
    def _keys_once(cls, value: Any) -> Any:
        if isinstance(value, dict):
            seen: dict[str, Any] = {}
            for key in value:
                text = str(key).upper()
                if text in seen:
                    raise ValueError(
                        f"key {text!r} is used twice (as {seen[text]!r} and {key!r}); "
                        "each key may lead to one target"
                    )
                seen[text] = key
        return value

    def target_refs(self) -> Iterator[tuple[SubLoc, str]]:
        for key, target in self.options.items():
            if target != REPEAT:
                yield ("options", key), target
        yield from super().target_refs()


class CollectNode(_Node):
    """Collect digits into a variable (account number, PIN...), with validation and retries."""

    type: Literal["collect"]
    prompts: Prompts = Field(min_length=1)
    variable: VarName
    min_digits: int = Field(default=1, ge=0, le=64)
    max_digits: int = Field(default=20, ge=1, le=64)
    terminator: Key | None = "#"
    timeout: Seconds = 5
    inter_digit_timeout: Seconds = 3
    #: the whole entry must match (Python regular expression)
    pattern: Regex = None
    #: the entry identifies the caller: the customer whose free field of this name holds it
    #: (the call joins that customer; ``customer.*`` then describe them)
    identify: VarName | None = None
    retries: int = Field(default=3, ge=1, le=10)
    invalid_prompt: Prompt | None = "invalid_option"
    timeout_prompt: Prompt | None = "no_input"
    next: Target = GOODBYE
    on_invalid: Target = GOODBYE
    on_timeout: Target = GOODBYE
    _targets = ("next", "on_invalid", "on_timeout")
    _prompts = ("prompts", "invalid_prompt", "timeout_prompt")

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_digits > self.max_digits:
            raise ValueError(
                f"expected min_digits <= max_digits, got {self.min_digits} > {self.max_digits}"
            )
        return self

    def variables_set(self) -> Iterator[str]:
        yield self.variable


class SetNode(_Node):
    """Assign variables; values may use ``${name}``."""

    type: Literal["set"]
    variables: dict[VarName, Text] = Field(min_length=1)
    next: Target = GOODBYE
    _targets = ("next",)
    waits: ClassVar[bool] = False

    def variables_set(self) -> Iterator[str]:
        yield from self.variables

    def variables_read(self) -> Iterator[tuple[SubLoc, str]]:
        for name, value in self.variables.items():
            yield from ((("variables", name), ref) for ref in VAR_REF.findall(value))


class Case(BaseModel):
    """One branch condition; every key given must hold (AND)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    variable: str | None = None
    equals: Text | None = None
    not_equals: Text | None = None
    in_: list[Text] | None = Field(default=None, alias="in")
    matches: Regex = None
    min: float | None = None
    max: float | None = None
    empty: bool | None = None
    #: number patterns: X any digit, Z 1-9, N 2-9, [1-5] a set, . one or more of anything
    caller: str | None = None
    called: str | None = None
    language: str | None = None
    goto: Target

    @model_validator(mode="after")
    def _complete(self) -> Case:
        tests = (self.equals, self.not_equals, self.in_, self.matches, self.min, self.max,
                 self.empty)
        has_test = any(t is not None for t in tests)
        if self.variable is None and has_test:
            raise ValueError("expected `variable:` to say what equals/in/matches/min/max test")
        if self.variable is not None and not has_test:
            raise ValueError(
                "expected a test for the variable: equals, not_equals, in, matches, min, max "
                "or empty"
            )
        if self.variable is None and self.caller is None and self.called is None and (
            self.language is None
        ):
            raise ValueError("expected a condition: variable, caller, called or language")
        return self


class BranchNode(_Node):
    """The first case that holds picks the target, else ``else``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["branch"]
    cases: list[Case] = Field(min_length=1)
    else_: Target = Field(default=GOODBYE, alias="else")
    waits: ClassVar[bool] = False

    def target_refs(self) -> Iterator[tuple[SubLoc, str]]:
        for i, case in enumerate(self.cases):
            yield ("cases", i, "goto"), case.goto
        yield ("else",), self.else_

    def variables_read(self) -> Iterator[tuple[SubLoc, str]]:
        for i, case in enumerate(self.cases):
            if case.variable is not None:
                yield ("cases", i, "variable"), case.variable
            for name in ("equals", "not_equals"):
                value = getattr(case, name)
                if value is not None:
                    yield from ((("cases", i, name), ref) for ref in VAR_REF.findall(value))


class ScheduleNode(_Node):
    """Open, closed or holiday, by a schedule of the file's ``schedules:``."""

    type: Literal["schedule"]
    schedule: str
    open: Target
    closed: Target
    #: where holidays go (default: same as closed)
    holiday: Target | None = None
    _targets = ("open", "closed", "holiday")
    waits: ClassVar[bool] = False


class LanguageNode(_Node):
    """Switch the prompt folder (``sounds/<language>/``) for the rest of the call."""

    type: Literal["language"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")]
    next: Target = GOODBYE
    _targets = ("next",)
    waits: ClassVar[bool] = False


class SayNode(_Node):
    """Say a number, digits, a queue position or a wait time with the language's grammar."""

    type: Literal["say"]
    say: Literal["number", "digits", "position", "wait_time", "duration"]
    #: text or ``${variable}``
    value: Text
    gender: Gender = Gender.MASCULINE
    before: Prompts = []
    after: Prompts = []
    interruptible: bool = False
    next: Target = GOODBYE
    _targets = ("next",)
    _prompts = ("before", "after")

    def variables_read(self) -> Iterator[tuple[SubLoc, str]]:
        yield from ((("value",), ref) for ref in VAR_REF.findall(self.value))


class _Transfer(_Node):
    prompts: Prompts = []
    #: outcome string -> target, e.g. {timeout: voicemail, no_agents: callback}
    outcomes: dict[str, Target] = {}
    #: after a conversation that the agent ended (e.g. a survey)
    next: Target = GOODBYE
    #: any other outcome without an entry in ``outcomes``
    on_failure: Target = GOODBYE
    _targets = ("next", "on_failure")
    _prompts = ("prompts",)

    def target_refs(self) -> Iterator[tuple[SubLoc, str]]:
        yield from super().target_refs()
        for outcome, target in self.outcomes.items():
            yield ("outcomes", outcome), target


class QueueNode(_Transfer):
    """Hand the call to an ACD queue with a priority and required skills."""

    type: Literal["queue"]
    queue: Annotated[str, Field(min_length=1)]
    priority: int = Field(default=0, ge=0, le=100)
    skills: dict[str, Annotated[int, Field(ge=0, le=100)]] = {}


class TransferNode(_Transfer):
    """Ring a user (agent) or an external number; either may use ``${variable}``."""

    type: Literal["transfer"]
    user: Text | None = None
    number: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> TransferNode:
        if (self.user is None) == (self.number is None):
            raise ValueError("expected exactly one of `user:` or `number:`")
        return self

    def variables_read(self) -> Iterator[tuple[SubLoc, str]]:
        for name in ("user", "number"):
            value = getattr(self, name)
            if value is not None:
                yield from (((name,), ref) for ref in VAR_REF.findall(value))


class VoicemailNode(_Node):
    """Record a message for a queue's voicemail box after a beep."""

    type: Literal["voicemail"]
    queue: Annotated[str, Field(min_length=1)]
    prompts: Prompts = ["voicemail_intro"]
    max_seconds: Seconds = 120
    #: shorter recordings (hang-up right after the beep) are not kept
    min_seconds: float = Field(default=1, ge=0)
    beep: bool = True
    saved_prompt: Prompt | None = "voicemail_saved"
    next: Target = GOODBYE
    _targets = ("next",)
    _prompts = ("prompts", "saved_prompt")


class CallbackNode(_Node):
    """Book a callback: the caller confirms their number or enters another one."""

    type: Literal["callback"]
    queue: Annotated[str, Field(min_length=1)]
    prompts: Prompts = ["callback_confirm"]
    #: played instead when the caller's number is hidden or not a phone number
    enter_prompt: Prompt = "callback_enter_number"
    confirm_key: Key = "1"
    terminator: Key = "#"
    min_digits: int = Field(default=6, ge=1, le=32)
    max_digits: int = Field(default=15, ge=1, le=32)
    timeout: Seconds = 6
    inter_digit_timeout: Seconds = 4
    retries: int = Field(default=3, ge=1, le=10)
    booked_prompt: Prompt | None = "callback_booked"
    invalid_prompt: Prompt | None = "invalid_option"
    timeout_prompt: Prompt | None = "no_input"
    next: Target = GOODBYE
    on_failure: Target = GOODBYE
    _targets = ("next", "on_failure")
    _prompts = ("prompts", "enter_prompt", "booked_prompt", "invalid_prompt", "timeout_prompt")


class SurveyNode(_Node):
    """After the conversation: the caller rates it with one key (1-5 by default); stored."""

    type: Literal["survey"]
    prompts: Prompts = ["survey"]
    min_rating: int = Field(default=1, ge=0, le=9)
    max_rating: int = Field(default=5, ge=0, le=9)
    timeout: Seconds = 6
    retries: int = Field(default=2, ge=1, le=10)
    invalid_prompt: Prompt | None = "invalid_option"
    thank_you_prompt: Prompt | None = "thank_you"
    next: Target = GOODBYE
    _targets = ("next",)
    _prompts = ("prompts", "invalid_prompt", "thank_you_prompt")


class HangupNode(_Node):
    """Play optional prompts, then hang up."""

    type: Literal["hangup"]
    prompts: Prompts = []
    _prompts = ("prompts",)


class GotoNode(_Node):
    """Jump to another node."""

    type: Literal["goto"]
    target: Target
    _targets = ("target",)
    waits: ClassVar[bool] = False


Node = (
    PlayNode | MenuNode | CollectNode | SetNode | BranchNode | ScheduleNode | LanguageNode
    | SayNode | QueueNode | TransferNode | VoicemailNode | CallbackNode | SurveyNode | HangupNode
    | GotoNode
)

NODE_TYPES: dict[str, type[_Node]] = {
    "play": PlayNode,
    "menu": MenuNode,
    "collect": CollectNode,
    "set": SetNode,
    "branch": BranchNode,
    "schedule": ScheduleNode,
    "language": LanguageNode,
    "say": SayNode,
    "queue": QueueNode,
    "transfer": TransferNode,
    "voicemail": VoicemailNode,
    "callback": CallbackNode,
    "survey": SurveyNode,
    "hangup": HangupNode,
    "goto": GotoNode,
}
