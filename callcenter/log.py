"""Logging: structlog on top of the stdlib ``logging`` module.

One handler on the root logger renders both structlog events and plain stdlib records (asyncio,
libraries, ``warnings``) the same way: a console renderer (colours only on a TTY) or JSON lines
with ``timestamp`` (ISO 8601, UTC), ``level``, ``event``, ``logger`` and every bound field.
``bind_call(call_id)`` puts ``call_id`` on every line logged inside it, including from asyncio
tasks created there (they copy the context).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, cast

import structlog
from structlog.typing import Processor

LEVELS = ("debug", "info", "warning", "error", "critical")

_HANDLER_MARK = "_callcenter_handler"


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _order_keys(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """Put timestamp, level, logger and event first so JSON lines read well."""
    head: dict[str, Any] = {
        k: event.pop(k) for k in ("timestamp", "level", "logger", "event") if k in event
    }
    if isinstance(head.get("event"), str):
        head["event"] = head["event"].rstrip()  # py.warnings records end in a newline
    head.update(event)
    return head


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    file: Path | None = None,
    *,
    stream: TextIO | None = None,
) -> None:
    """Route all logging to ``file`` (if given) or ``stream`` (default stderr).

    ``fmt``: ``console``, ``json`` or ``auto`` (console when the output is a TTY, else JSON).
    Calling it again replaces the previous setup.
    """
    level = level.lower()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    if fmt not in ("auto", "console", "json"):
        raise ValueError(f"unknown log format {fmt!r}; expected auto, console or json")

    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        # Watched: reopens the file after logrotate moves it.
        handler = logging.handlers.WatchedFileHandler(file, encoding="utf-8")
        tty = False
    else:
        out = stream if stream is not None else sys.stderr
        handler = logging.StreamHandler(out)
        tty = bool(getattr(out, "isatty", lambda: False)())
    use_json = fmt == "json" or (fmt == "auto" and not tty)

    renderer: Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
        # No locals in tracebacks: they may hold passwords and SIP credentials.
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        final: list[Processor] = [tracebacks, _order_keys, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
        final = [renderer]

    shared = _shared_processors()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use ``__name__``), with optional bound fields."""
    return cast(structlog.stdlib.BoundLogger, structlog.get_logger(name, **initial))


@contextmanager
def bind_call(call_id: str, **fields: Any) -> Iterator[None]:
    """Every log line inside the block (and tasks started in it) carries ``call_id``."""
    with structlog.contextvars.bound_contextvars(call_id=call_id, **fields):
        yield
