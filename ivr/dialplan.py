"""Dialplan files: the numbers we answer, their IVR flows, schedules, and validation.

Every ``*.yaml`` in the dialplans directory may hold ``lines:`` (dialled numbers, exact or with
``X`` for any digit, the sources allowed to call them, and the ``flow:`` node they start in),
``schedules:`` (opening hours) and ``nodes:`` (the IVR, see ``ivr.nodes``). Node names and
schedules are local to their file. Every problem is reported as ``file:line:col: path: what was
expected``; a file with any problem is never activated.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from ivr.nodes import (
    BUILTIN_TARGETS,
    GOODBYE,
    NAME_RE,
    NODE_TYPES,
    REPEAT,
    LanguageNode,
    Node,
    SayNode,
    ScheduleNode,
)
from ivr.say import LANGUAGES, SayError, required_prompts
from ivr.schedule import Schedule, parse_days, parse_ranges
from ivr.yamldoc import (
    ConfigError,
    Loc,
    Mark,
    QuotedStr,
    YamlDocument,
    dotted,
    load_yaml,
    validate_document,
    validation_messages,
)

NUMBER_PATTERN = re.compile(r"^\+?[0-9*#X]+$")
_POSITION = re.compile(r"^.*?:(\d+):(\d+): ")

#: variables every flow can read; ``history.*`` are looked up on first use
BUILTIN_VARIABLES = frozenset(
    {
        "caller", "called", "line", "language", "digits", "outcome", "call_id",
        "callback_number", "rating", "history.previous_calls", "history.last_agent",
        "history.open_callbacks", "customer.known", "customer.name", "customer.tier",
        "customer.language", "customer.open_callbacks", "customer.last_agent",
        "customer.last_contact_days",
    }
)
#: ``customer.fields.<name>``: any free field of the caller's customer record
FIELD_VARIABLE = re.compile(r"customer\.fields\.[A-Za-z0-9_]+")
FIELDS = "customer.fields.<name>"


def _number(value: str) -> str:
    if not NUMBER_PATTERN.match(value):
        raise ValueError(
            f"bad number {value!r}: expected digits (and * #, optional leading +), with X for "
            'any digit, e.g. "0800123456" or "0800XXXXXX"'
        )
    return value


class DialplanError(ConfigError):
    """One or more dialplan files are invalid; ``errors`` holds ``file:line:col: ...`` lines."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Model):
    """A number we answer."""

    number: Annotated[QuotedStr, AfterValidator(_number)]
    name: str = ""
    kind: Literal["toll-free", "shared-cost", "other"] = "other"
    #: trunk names and/or "users" (calls from registered users)
    accept: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")] = "pl"
    #: the IVR node the call starts in (a node of this file's ``nodes:``)
    flow: Annotated[str, Field(pattern=NAME_RE)] | None = None
    #: without a flow: the prompt played (v0 path); kept for the server's first hotline path
    prompt: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_/-]+$")] = "welcome"
    #: without a flow: seconds without a key press before goodbye and hang-up
    timeout: float = Field(default=10, gt=0)
    #: without a flow: send the caller straight to this ACD queue (no IVR)
    queue: str | None = None
    #: not answered at once: a ``transfer`` node rings its target while the caller hears it
    #: ring (180), and the caller is answered when the target answers; the first node that
    #: needs the line's audio (a prompt, a menu, a queue, a recording) answers it
    ring_through: bool = False

    @property
    def is_pattern(self) -> bool:
        """True when the number contains X wildcards."""
        return "X" in self.number

    def matches(self, number: str) -> bool:
        """Whether ``number`` is this line's number (X = any digit)."""
        if len(number) != len(self.number):
            return False
        return all(
            p == c or (p == "X" and c.isdigit()) for p, c in zip(self.number, number, strict=True)
        )

    def accepts(self, source: str) -> bool:
        """Whether a call from ``source`` ("trunk:<name>" or "user:<user>") may use this line."""
        kind, _, name = source.partition(":")
        if kind == "user":
            return "users" in self.accept
        return kind == "trunk" and name in self.accept


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


class OutboundRule(_Model):
    """Who may dial which outside numbers, through which trunk, with which caller ID."""

    #: regular expression searched in the dialled number (anchor it with ^ and $)
    pattern: Annotated[QuotedStr, Field(min_length=1), AfterValidator(_regex)]
    #: roles (agent, supervisor), user names and/or "ivr" (a transfer node's number:) this
    #: rule applies to; empty: everyone
    allow: list[Annotated[str, Field(min_length=1)]] = []
    #: refuse matching numbers (403 with ``reason``) instead of dialling them
    deny: bool = False
    reason: str = ""
    #: the trunk (config.yaml) that carries the call; required unless ``deny``
    trunk: str | None = None
    #: the number presented to the called party; default the caller's own
    caller_id: Annotated[QuotedStr, AfterValidator(_number)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> OutboundRule:
        if self.deny and (self.trunk or self.caller_id):
            raise ValueError("a `deny: true` rule takes no `trunk:` or `caller_id:`")
        if not self.deny and self.trunk is None:
            raise ValueError("expected `trunk:` (the trunk that carries the call) or "
                             "`deny: true`")
        return self

    def applies(self, number: str, who: frozenset[str]) -> bool | None:
        """None: another number; else whether the rule's ``allow`` takes ``who``."""
        if re.search(self.pattern, number) is None:
            return None
        return not self.allow or bool(who.intersection(self.allow))


@dataclass(frozen=True)
class OutboundMatch:
    """The outbound rules' answer for a number: dial through ``rule.trunk``, or refused."""

    rule: OutboundRule | None  #: None: a rule matched the number but allows nobody of ``who``
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.rule is not None and not self.rule.deny


class ScheduleSpec(_Model):
    """Opening hours as written in YAML (compiled to ``ivr.schedule.Schedule``)."""

    timezone: str = "Europe/Warsaw"
    #: day spec ("mon-fri", "sat", "sat,sun") -> "08:00-20:00", a list of ranges, or "closed"
    hours: dict[str, str | list[str]] = Field(min_length=1)
    #: built-in holiday calendars ("poland"); [] for none
    holidays: list[str] = ["poland"]
    #: extra days closed all day
    closed_days: list[date] = []
    #: days with their own hours (e.g. {2026-12-31: "08:00-12:00"})
    special_days: dict[date, str | list[str]] = {}


class DialplanFile(_Model):
    """The contents of one dialplan file (nodes are validated one by one, see ``ivr.nodes``)."""

    lines: list[Line] = []
    outbound: list[OutboundRule] = []
    schedules: dict[Annotated[str, Field(pattern=NAME_RE)], ScheduleSpec] = {}
    nodes: dict[str, Any] = {}


@dataclass(frozen=True)
class Program:
    """The nodes and schedules of one file: what a call whose line is in that file runs."""

    file: str
    nodes: Mapping[str, Node] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    #: node name -> "file:line:col" (for runtime messages)
    origins: Mapping[str, str] = field(default_factory=dict)


class Dialplan:
    """All lines from all dialplan files, with the program (nodes) each line runs."""

    def __init__(
        self,
        lines: Iterable[Line] = (),
        *,
        origins: dict[str, str] | None = None,
        programs: Mapping[str, Program] | None = None,
        outbound: Iterable[OutboundRule] = (),
    ):
        self.lines = list(lines)
        #: rules for calls to outside numbers, in file order (the first that applies wins)
        self.outbound = list(outbound)
        #: number -> "file:line:col" where it was defined (for runtime messages)
        self.origins = dict(origins or {})
        #: number -> the program of the file that defines the line
        self.programs = dict(programs or {})
        self._exact = {line.number: line for line in self.lines if not line.is_pattern}
        # Most specific pattern first (fewest X), then file order.
        self._patterns = sorted(
            (line for line in self.lines if line.is_pattern), key=lambda x: x.number.count("X")
        )

    def match(self, number: str) -> Line | None:
        """The line for a dialled number: an exact match wins over a pattern."""
        exact = self._exact.get(number)
        if exact is not None:
            return exact
        return next((line for line in self._patterns if line.matches(number)), None)

    def route_out(self, number: str, who: Iterable[str]) -> OutboundMatch | None:
        """The first outbound rule for ``number`` that allows ``who`` (a user's name and role,
        or "ivr"); a refusal when rules match the number but none allows ``who``; None when
        no rule matches the number."""
        group, matched = frozenset(who), False
        for rule in self.outbound:
            applies = rule.applies(number, group)
            if applies:
                return OutboundMatch(rule, rule.reason or "not allowed")
            matched = matched or applies is False
        return OutboundMatch(None, "not allowed") if matched else None

    def program(self, line: Line) -> Program:
        """The program (nodes, schedules) of the file defining ``line``."""
        return self.programs.get(line.number) or Program(file="<none>")

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"Dialplan({[line.number for line in self.lines]})"


def _display(path: Path) -> str:
    """A short name for messages: relative to the cwd when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def dialplan_files(dir: Path) -> list[Path]:
    """The files ``load_dialplans`` reads, in load order."""
    return sorted([*dir.glob("*.yaml"), *dir.glob("*.yml")])


def load_dialplans(dir: Path, sounds_dir: Path, *, trunks: Iterable[str] | None = None) -> Dialplan:
    """Load every ``*.yaml`` in ``dir`` (sorted by name) and check it against ``sounds_dir``.

    With ``trunks`` (the configured trunk names) every ``accept`` entry is checked as well.
    Raises DialplanError listing every problem found.
    """
    if not dir.is_dir():
        raise DialplanError(
            [f"{_display(dir)}: dialplans directory not found; create it or set `dialplans:`"]
        )
    known_sources = None if trunks is None else {*trunks, "users"}
    errors: list[str] = []
    lines: list[Line] = []
    outbound: list[OutboundRule] = []
    origins: dict[str, str] = {}
    programs: dict[str, Program] = {}
    for path in dialplan_files(dir):
        loader = _FileLoader(path, sounds_dir, known_sources, origins)
        file_lines, program = loader.load()
        errors.extend(loader.errors)
        lines.extend(file_lines)
        outbound.extend(loader.outbound)
        for line in file_lines:
            programs[line.number] = program
    if errors:
        raise DialplanError(errors)
    return Dialplan(lines, origins=origins, programs=programs, outbound=outbound)


@cache
def _holder(model: type[BaseModel]) -> type[BaseModel]:
    """A model ``{nodes: {name: model}}`` so pydantic errors carry document paths."""
    holder: type[BaseModel] = create_model(
        f"_{model.__name__}Holder",
        __config__=ConfigDict(extra="forbid"),
        nodes=(dict[str, model], ...),  # type: ignore[valid-type]
    )
    return holder


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _FileLoader:
    """Validate one file; ``errors`` collects ``file:line:col: path: message`` lines."""

    def __init__(
        self,
        path: Path,
        sounds_dir: Path,
        known_sources: set[str] | None,
        origins: dict[str, str],
    ) -> None:
        self.path = path
        self.name = _display(path)
        self.sounds = sounds_dir
        self.known_sources = known_sources
        self.origins = origins
        self.errors: list[str] = []
        self.outbound: list[OutboundRule] = []
        self._problems: list[tuple[Mark, str]] = []
        self.doc = YamlDocument(self.name, None)

    # -- reporting ---------------------------------------------------------------------------

    def _raw_loc(self, loc: Loc) -> Loc:
        """``loc`` with keys as they appear in the YAML (menu key 1 may be the integer 1)."""
        out: list[str | int] = []
        current: Any = self.doc.data
        for part in loc:
            if isinstance(current, dict) and part not in current:
                for alt in (str(part), int(part) if str(part).isdigit() else None):
                    if alt is not None and alt in current:
                        part = alt
                        break
            out.append(part)
            if isinstance(current, dict):
                current = current.get(part)
            elif isinstance(current, list) and isinstance(part, int) and part < len(current):
                current = current[part]
            else:
                current = None
        return tuple(out)

    def problem(self, loc: Loc, message: str, *, key: bool = False) -> None:
        mark = self.doc.mark(self._raw_loc(loc), key=key)
        path = dotted(loc)
        where = f"{self.name}:{mark.line}:{mark.col}"
        self._problems.append((mark, f"{where}: {path}: {message}" if path else f"{where}: "
                               f"{message}"))

    def where(self, loc: Loc, *, key: bool = False) -> str:
        mark = self.doc.mark(self._raw_loc(loc), key=key)
        return f"{self.name}:{mark.line}:{mark.col}"

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> tuple[list[Line], Program]:
        empty = Program(file=self.name)
        try:
            self.doc = load_yaml(self.path.read_text(encoding="utf-8"), self.name)
        except ConfigError as exc:
            self.errors.extend(exc.errors)
            return [], empty
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(f"{self.name}:1:1: cannot read: {exc}")
            return [], empty
        content: DialplanFile | None
        try:
            content = validate_document(DialplanFile, self.doc)
        except ConfigError as exc:
            self.errors.extend(exc.errors)
            content = None
        raw: dict[Any, Any] = self.doc.data if isinstance(self.doc.data, dict) else {}
        found = raw.get("nodes")
        raw_nodes: dict[Any, Any] = found if isinstance(found, dict) else {}
        nodes = self._nodes(raw_nodes)
        if content is None:
            self._flush()
            return [], empty
        schedules = self._schedules(content.schedules)
        lines = self._lines(content.lines, raw_nodes)
        self._outbound(content.outbound)
        self._graph(
            lines, nodes, schedules,
            names=[str(n) for n in raw_nodes], schedule_names=list(content.schedules),
        )
        self._flush()
        if self.errors:
            return [], empty
        program = Program(
            file=self.name,
            nodes=nodes,
            schedules=schedules,
            origins={n: self.where(("nodes", n), key=True) for n in nodes},
        )
        return lines, program

    def _flush(self) -> None:
        self._problems.sort(key=lambda item: (item[0].line, item[0].col))
        self.errors.extend(text for _, text in self._problems)
        self._problems.clear()

    def _nodes(self, raw_nodes: Mapping[Any, Any]) -> dict[str, Node]:
        out: dict[str, Node] = {}
        types = ", ".join(NODE_TYPES)
        for name, raw in raw_nodes.items():
            loc: Loc = ("nodes", name)
            if not isinstance(name, str) or not re.match(NAME_RE, name):
                self.problem(loc, f"bad node name {name!r}: expected letters, digits, _ and -, "
                             "starting with a letter", key=True)
                continue
            if name in (*BUILTIN_TARGETS, REPEAT) and name != GOODBYE:
                self.problem(loc, f"{name!r} is a built-in target; pick another node name",
                             key=True)
                continue
            if not isinstance(raw, dict):
                self.problem(loc, f"expected a mapping with `type:` ({types})")
                continue
            kind = raw.get("type")
            if kind is None:
                self.problem(loc, f"required key 'type' is missing; expected one of {types}")
                continue
            model = NODE_TYPES.get(kind) if isinstance(kind, str) else None
            if model is None:
                self.problem(
                    (*loc, "type"),
                    f"unknown node type {kind!r}{_suggest(str(kind), NODE_TYPES)} "
                    f"(expected one of {types})",
                )
                continue
            allowed = {info.alias or n for n, info in model.model_fields.items()}
            clean = dict(raw)
            for key in raw:
                if key not in allowed:
                    self.problem(
                        (*loc, key),
                        f"unknown key {key!r} for a {kind} node{_suggest(str(key), allowed)} "
                        f"(allowed: {', '.join(sorted(allowed))})",
                        key=True,
                    )
                    del clean[key]
            if isinstance(clean.get("options"), dict):
                clean["options"] = self._menu_keys(loc, clean["options"])
            holder = _holder(model)
            try:
                held: Any = holder.model_validate({"nodes": {name: clean}})
            except ValidationError as exc:
                for message in validation_messages(holder, self.doc, exc):
                    found = _POSITION.match(message)
                    mark = Mark(int(found[1]), int(found[2])) if found else Mark(1, 1)
                    self._problems.append((mark, message))
                continue
            out[name] = held.nodes[name]
        return out

    def _menu_keys(self, loc: Loc, options: dict[Any, Any]) -> dict[Any, Any]:
        seen: dict[str, Any] = {}
        out: dict[Any, Any] = {}
        for key, target in options.items():
            text = str(key).upper()
            if text in seen:
                first = self.doc.mark((*loc, "options", seen[text]), key=True)
                self.problem(
                    (*loc, "options", key),
                    f"key {text!r} is used twice (first at line {first.line}); each key may "
                    "lead to one target",
                    key=True,
                )
                continue
            seen[text] = key
            out[key] = target
        return out

    def _schedules(self, specs: Mapping[str, ScheduleSpec]) -> dict[str, Schedule]:
        out: dict[str, Schedule] = {}
        for name, spec in specs.items():
            loc: Loc = ("schedules", name)
            ok = True
            week: dict[int, tuple[tuple[int, int], ...]] = {}
            for days, ranges in spec.hours.items():
                try:
                    numbers = parse_days(days)
                except ValueError as exc:
                    self.problem((*loc, "hours", days), str(exc), key=True)
                    ok = False
                    continue
                try:
                    parsed = tuple(parse_ranges(ranges))
                except ValueError as exc:
                    self.problem((*loc, "hours", days), str(exc))
                    ok = False
                    continue
                for day in numbers:
                    if day in week:
                        self.problem(
                            (*loc, "hours", days),
                            f"{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[day]} is given "
                            "hours twice; each day may appear in one entry",
                            key=True,
                        )
                        ok = False
                    week[day] = parsed
            special: dict[date, tuple[tuple[int, int], ...]] = {}
            for day_date, ranges in spec.special_days.items():
                try:
                    special[day_date] = tuple(parse_ranges(ranges))
                except ValueError as exc:
                    self.problem((*loc, "special_days", day_date.isoformat()), str(exc))
                    ok = False
            try:
                schedule = Schedule(
                    week=week,
                    timezone=spec.timezone,
                    holidays=tuple(spec.holidays),
                    closed_days=frozenset(spec.closed_days),
                    special_days=special,
                )
            except ValueError as exc:
                field_name = "timezone" if "time zone" in str(exc) else "holidays"
                self.problem((*loc, field_name), str(exc))
                continue
            if ok:
                out[name] = schedule
        return out

    def _lines(self, lines: list[Line], raw_nodes: Mapping[Any, Any]) -> list[Line]:
        out: list[Line] = []
        for i, line in enumerate(lines):
            loc: Loc = ("lines", i)
            if line.number in self.origins:
                self.problem(
                    (*loc, "number"),
                    f"number {line.number!r} is already defined at {self.origins[line.number]}; "
                    "each number may appear once",
                )
                continue
            self.origins[line.number] = self.where((*loc, "number"))
            wav = self.sounds / line.language / f"{line.prompt}.wav"
            if not wav.is_file():
                self.problem(
                    (*loc, "prompt"),
                    f"prompt {line.prompt!r} has no sound file {_display(wav)} for language "
                    f"{line.language!r}; add the WAV (8 kHz mono) or pick an existing prompt",
                )
            if self.known_sources is not None:
                for j, source in enumerate(line.accept):
                    if source not in self.known_sources:
                        self.problem(
                            (*loc, "accept", j),
                            f"unknown source {source!r}; expected a trunk name from "
                            f"config.yaml ({', '.join(sorted(self.known_sources - {'users'}))}) "
                            "or 'users'",
                        )
            if line.flow is not None:
                if line.flow not in raw_nodes and line.flow not in BUILTIN_TARGETS:
                    names = [str(n) for n in raw_nodes]
                    self.problem(
                        (*loc, "flow"),
                        f"unknown node {line.flow!r}{_suggest(line.flow, names)}; expected a "
                        f"node of this file's `nodes:` ({', '.join(names) or 'none defined'})",
                    )
                if line.queue is not None:
                    self.problem(
                        (*loc, "queue"),
                        "a line with a `flow:` does not take `queue:`; use a queue node in the "
                        "flow, or drop `flow:` to send callers straight to the queue",
                    )
            out.append(line)
        return out

    def _outbound(self, rules: list[OutboundRule]) -> None:
        trunks = None if self.known_sources is None else self.known_sources - {"users"}
        for i, rule in enumerate(rules):
            if rule.trunk is not None and trunks is not None and rule.trunk not in trunks:
                self.problem(
                    ("outbound", i, "trunk"),
                    f"unknown trunk {rule.trunk!r}{_suggest(rule.trunk, trunks)}; expected a "
                    f"trunk name from config.yaml ({', '.join(sorted(trunks)) or 'none'})",
                )
        self.outbound = rules  # a file with any problem fails the whole load

    # -- cross-references --------------------------------------------------------------------

    def _graph(
        self,
        lines: list[Line],
        nodes: Mapping[str, Node],
        schedules: Mapping[str, Schedule],
        *,
        names: list[str],
        schedule_names: list[str],
    ) -> None:
        """Targets, schedules, variables; with every node valid also reachability, prompts per
        language and silent loops (a broken node's targets are unknown)."""
        complete = len(nodes) == len(names)
        valid_targets = {*names, *BUILTIN_TARGETS}
        assigned = {v for node in nodes.values() for v in node.variables_set()}
        for name, node in nodes.items():
            loc: Loc = ("nodes", name)
            for sub, target in node.target_refs():
                if target not in valid_targets:
                    self.problem(
                        (*loc, *sub),
                        f"unknown target {target!r}{_suggest(target, valid_targets)}; expected "
                        f"a node of this file ({', '.join(names)}) or {' / '.join(BUILTIN_TARGETS)}",
                    )
            if isinstance(node, ScheduleNode) and node.schedule not in schedule_names:
                self.problem(
                    (*loc, "schedule"),
                    f"unknown schedule {node.schedule!r}{_suggest(node.schedule, schedule_names)}"
                    f"; expected one of this file's `schedules:` "
                    f"({', '.join(schedule_names) or 'none'})",
                )
            for sub, var in node.variables_read():
                if var not in BUILTIN_VARIABLES and var not in assigned and not \
                        FIELD_VARIABLE.fullmatch(var):
                    self.problem(
                        (*loc, *sub),
                        f"unknown variable {var!r}; expected one set by a collect or set node, or "
                        f"a built-in ({', '.join(sorted(BUILTIN_VARIABLES | {FIELDS}))})",
                    )
        if not complete:
            return
        # Which languages each node can run in, from every line's flow.
        reached: dict[str, set[str]] = {}
        goodbye_languages: dict[str, Loc] = {}
        todo: list[tuple[str, str, Loc]] = [
            (line.flow, line.language, ("lines", i, "flow"))
            for i, line in enumerate(lines)
            if line.flow is not None
        ]
        while todo:
            name, lang, via = todo.pop()
            if name not in nodes:
                if name == GOODBYE:
                    goodbye_languages.setdefault(lang, via)
                continue
            langs = reached.setdefault(name, set())
            if lang in langs:
                continue
            langs.add(lang)
            node = nodes[name]
            next_lang = node.language if isinstance(node, LanguageNode) else lang
            for sub, target in node.target_refs():
                todo.append((target, next_lang, ("nodes", name, *sub)))
        for name in nodes:
            if name not in reached:
                self.problem(
                    ("nodes", name),
                    f"unreachable node {name!r}: no line's flow and no other node leads here; "
                    "remove it or point a target at it",
                    key=True,
                )
        for name, langs in reached.items():
            self._check_prompts(name, nodes[name], sorted(langs))
        for lang, via in sorted(goodbye_languages.items()):
            self._check_wav(via, GOODBYE, lang, "the built-in goodbye target plays it; ")
        self._check_silent_loops(nodes)

    def _check_wav(self, loc: Loc, prompt: str, lang: str, why: str = "") -> None:
        wav = self.sounds / lang / f"{prompt}.wav"
        if not wav.is_file() and not (self.sounds / f"{prompt}.wav").is_file():
            self.problem(
                loc,
                f"prompt {prompt!r} has no sound file {_display(wav)} for language {lang!r}; "
                f"{why}add the WAV (8 kHz mono) or pick an existing prompt",
            )

    def _check_prompts(self, name: str, node: Node, langs: list[str]) -> None:
        loc: Loc = ("nodes", name)
        for lang in langs:
            for sub, prompt in node.prompt_refs():
                self._check_wav((*loc, *sub), prompt, lang)
            if isinstance(node, SayNode):
                try:
                    needed = required_prompts(lang)
                except SayError:
                    self.problem(
                        (*loc, "say"),
                        f"no number grammar for language {lang!r}; say nodes work in "
                        f"{', '.join(LANGUAGES)}",
                    )
                    continue
                missing = [p for p in needed if not (self.sounds / lang / f"{p}.wav").is_file()]
                if missing:
                    self.problem(
                        (*loc, "say"),
                        f"saying numbers in {lang!r} needs prompts missing from "
                        f"{_display(self.sounds / lang)}: {', '.join(missing)}",
                    )

    def _check_silent_loops(self, nodes: Mapping[str, Node]) -> None:
        """A cycle of nodes that never wait (goto, set, branch...) would spin forever."""
        state: dict[str, int] = {}

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            stack.append(name)
            for _, target in nodes[name].target_refs():
                node = nodes.get(target)
                if node is None or node.waits:
                    continue
                if state.get(target) == 1:
                    cycle = [*stack[stack.index(target):], target]
                    self.problem(
                        ("nodes", target),
                        f"loop that never waits for the caller: {' -> '.join(cycle)}; put a "
                        "menu, play or other waiting node in it",
                        key=True,
                    )
                elif target not in state:
                    visit(target, stack)
            stack.pop()
            state[name] = 2

        for name, node in nodes.items():
            if not node.waits and name not in state:
                visit(name, [])

