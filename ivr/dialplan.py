"""Dialplan files (v0): the numbers we answer and what a caller hears first.

Every ``*.yaml`` in the dialplans directory holds ``lines:``; each line maps a dialled number
(exact, or a pattern where ``X`` is any digit) to a prompt, a language, an optional queue and
the sources allowed to call it. Errors carry ``file:line:col: path: message`` like the config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from callcenter.config import ConfigError, Loc, QuotedStr, load_yaml, validate_document

__all__ = ["Dialplan", "DialplanError", "DialplanFile", "Line", "load_dialplans"]

NUMBER_PATTERN = re.compile(r"^\+?[0-9*#X]+$")


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
    prompt: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_/-]+$")] = "welcome"
    #: seconds without a key press before goodbye and hang-up
    timeout: float = Field(default=10, gt=0)
    #: send the caller to this ACD queue (until the ACD exists: play the prompt)
    queue: str | None = None

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


class DialplanFile(_Model):
    """The contents of one dialplan file."""

    lines: list[Line] = []


class Dialplan:
    """All lines from all dialplan files."""

    def __init__(self, lines: Iterable[Line] = (), *, origins: dict[str, str] | None = None):
        self.lines = list(lines)
        #: number -> "file:line:col" where it was defined (for runtime messages)
        self.origins = dict(origins or {})
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


def load_dialplans(dir: Path, sounds_dir: Path, *, trunks: Iterable[str] | None = None) -> Dialplan:
    """Load every ``*.yaml`` in ``dir`` (sorted by name) and check it against ``sounds_dir``.

    With ``trunks`` (the configured trunk names) every ``accept`` entry is checked as well.
    Raises DialplanError listing every problem found.
    """
    if not dir.is_dir():
        raise DialplanError(
            [f"{_display(dir)}: dialplans directory not found; create it or set `dialplans:`"]
        )
    files = sorted([*dir.glob("*.yaml"), *dir.glob("*.yml")])
    known_sources = None if trunks is None else {*trunks, "users"}
    errors: list[str] = []
    lines: list[Line] = []
    origins: dict[str, str] = {}
    for path in files:
        name = _display(path)
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"), name)
            content = validate_document(DialplanFile, doc)
        except ConfigError as exc:
            errors.extend(exc.errors)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{name}:1:1: cannot read: {exc}")
            continue
        problems: list[tuple[Loc, str]] = []
        for i, line in enumerate(content.lines):
            loc: Loc = ("lines", i)
            if line.number in origins:
                problems.append(
                    (
                        (*loc, "number"),
                        f"number {line.number!r} is already defined at {origins[line.number]}; "
                        "each number may appear once",
                    )
                )
                continue
            m = doc.mark((*loc, "number"))
            origins[line.number] = f"{name}:{m.line}:{m.col}"
            wav = sounds_dir / line.language / f"{line.prompt}.wav"
            if not wav.is_file():
                problems.append(
                    (
                        (*loc, "prompt"),
                        f"prompt {line.prompt!r} has no sound file {_display(wav)} for language "
                        f"{line.language!r}; add the WAV (8 kHz mono) or pick an existing prompt",
                    )
                )
            if known_sources is not None:
                for j, source in enumerate(line.accept):
                    if source not in known_sources:
                        problems.append(
                            (
                                (*loc, "accept", j),
                                f"unknown source {source!r}; expected a trunk name from "
                                f"config.yaml ({', '.join(sorted(known_sources - {'users'}))}) "
                                "or 'users'",
                            )
                        )
            lines.append(line)
        errors.extend(doc.errors_at(problems))
    if errors:
        raise DialplanError(errors)
    return Dialplan(lines, origins=origins)
