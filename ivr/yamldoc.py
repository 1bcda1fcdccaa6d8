"""YAML with positions: every node's file, line and column, so each mistake in a config file
or a dialplan is reported as ``FILE:LINE:COL: dotted.path: what was expected``.

Shared by the dialplan loader (:mod:`ivr.dialplan`) and the server's configuration
(:mod:`callcenter.config`), so both speak the same error language.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError


class ConfigError(Exception):
    """Configuration (or dialplan) is invalid; ``errors`` holds one ``file:line:col: ...`` each."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a YAML file."""

    line: int
    col: int


@dataclass(slots=True)
class YamlDocument:
    """Parsed YAML plus the position of every node, keyed by its path (keys and indices)."""

    filename: str
    data: Any
    #: path -> position of the value (scalar, mapping or sequence item)
    values: dict[Loc, Mark] = field(default_factory=dict)
    #: path -> position of the mapping key naming it (for "unknown key" errors)
    keys: dict[Loc, Mark] = field(default_factory=dict)
    #: problems found while parsing (duplicate keys); reported by validate_document
    errors: list[str] = field(default_factory=list)

    def clean_loc(self, loc: Iterable[str | int]) -> Loc:
        """Drop the parts of a pydantic ``loc`` that are not real paths (union member tags)."""
        out: list[str | int] = []
        current: Any = self.data
        for part in loc:
            if isinstance(current, dict):
                out.append(part)
                current = current.get(part)
            elif isinstance(current, list) and isinstance(part, int):
                out.append(part)
                current = current[part] if 0 <= part < len(current) else None
            else:
                break
        return tuple(out)

    def mark(self, loc: Loc, *, key: bool = False) -> Mark:
        """Position of ``loc``, or of its closest existing ancestor."""
        if key and loc in self.keys:
            return self.keys[loc]
        for n in range(len(loc), -1, -1):
            found = self.values.get(loc[:n])
            if found is not None:
                return found
        return Mark(1, 1)

    def errors_at(self, problems: Iterable[tuple[Loc, str]]) -> list[str]:
        """Format ``(loc, message)`` pairs, sorted by position in the file."""
        marked = [(self.mark(loc), self.error(loc, msg)) for loc, msg in problems]
        marked.sort(key=lambda item: (item[0].line, item[0].col))
        return [text for _, text in marked]

    def error(self, loc: Loc, message: str, *, key: bool = False) -> str:
        """Format ``FILE:LINE:COL: path: message``."""
        m = self.mark(loc, key=key)
        path = dotted(loc)
        where = f"{self.filename}:{m.line}:{m.col}"
        return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def dotted(loc: Iterable[str | int]) -> str:
    """``("users", 2, "role")`` -> ``users[2].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, filename: str) -> YamlDocument:
    """Parse ``text`` safely, recording positions; raise ConfigError on syntax errors.

    Duplicate keys are collected in ``doc.errors`` (the last value wins, as in PyYAML).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(filename=filename, data=None)
        if node is not None:
            _walk(loader, node, (), doc, doc.errors)
            doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise ConfigError([f"{where}: YAML syntax error: {problem}{context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}:1:1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()


def _walk(
    loader: yaml.SafeLoader, node: yaml.Node, path: Loc, doc: YamlDocument, errors: list[str]
) -> None:
    doc.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve "<<" merge keys like the constructor does
        seen: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                continue
            key_mark = _mark(key_node)
            if key in seen:
                first = seen[key]
                errors.append(
                    f"{doc.filename}:{key_mark.line}:{key_mark.col}: {dotted((*path, key))}: "
                    f"duplicate key (first defined at line {first.line}); remove one of them"
                )
                continue
            seen[key] = key_mark
            doc.keys[(*path, key)] = key_mark
            _walk(loader, value_node, (*path, key), doc, errors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(loader, item, (*path, index), doc, errors)


M = TypeVar("M", bound=BaseModel)


def validate_document(model: type[M], doc: YamlDocument, *, empty_ok: bool = True) -> M:
    """Validate ``doc.data`` against ``model``; raise ConfigError with positioned messages."""
    data = doc.data
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [*doc.errors, doc.error((), "expected a mapping of keys at the top level")]
        )
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(doc.errors + validation_messages(model, doc, exc)) from None
    if doc.errors:
        raise ConfigError(doc.errors)
    return result


def validation_messages(
    model: type[BaseModel], doc: YamlDocument, exc: ValidationError
) -> list[str]:
    """Turn pydantic errors into ``file:line:col: path: message`` lines, in file order."""
    found: list[tuple[Mark, str]] = []
    for err in exc.errors(include_url=False):
        loc = doc.clean_loc(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            msg = f"unknown key {loc[-1]!r}"
            if parent is not None:
                names = list(parent.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), names, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else ""
                msg += f" (allowed: {', '.join(names)})"
            found.append((doc.mark(loc, key=True), doc.error(loc, msg, key=True)))
            continue
        if kind == "missing":
            msg = "required key is missing"
        else:
            msg = _expected(err)
        found.append((doc.mark(loc), doc.error(loc, msg)))
    found.sort(key=lambda item: (item[0].line, item[0].col))
    return [text for _, text in found]


def _expected(err: Any) -> str:
    msg: str = err["msg"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "too_short" and isinstance(value, list):
        n = ctx.get("min_length", 1)
        return f"expected at least {n} item{'s' if n != 1 else ''}, got {len(value)}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')!s}, got {value!r}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be ") :]
    elif msg.startswith("Input "):
        msg = "expected valid input: " + msg[len("Input ") :]
    if not isinstance(value, dict | list):
        msg += f", got {value!r}"
    return msg


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for listing allowed keys)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            if get_origin(current) is not list or not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated / Optional wrappers."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        args = [a for a in get_args(tp) if a is not type(None)]
        if origin is not None and origin is not list and len(args) == 1:
            tp = args[0]
            continue
        return tp


def _quoted_string(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(
            f"expected a quoted string, got the number {value!r}; write it in quotes "
            f'(e.g. "{value}") so YAML keeps leading zeros'
        )
    return value


QuotedStr = Annotated[str, BeforeValidator(_quoted_string)]
