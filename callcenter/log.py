"""Logging: structlog on top of the stdlib ``logging`` module.

One handler on the root logger writes both structlog events and plain stdlib records (asyncio,
libraries, ``warnings``) the same way: a console renderer (colours only on a TTY) or JSON lines
with ``timestamp`` (ISO 8601, UTC), ``level``, ``event``, ``logger`` and every bound field.
Our own lines do not go through stdlib ``logging``: structlog renders them and writes the line
through that handler (its stream, lock and reopening), and a line below the level costs one
comparison. Going through ``logging`` cost two LogRecords and a formatter per line (about 32 µs
a line against 16-20 now), and 5 debug lines a B2BUA call were built only to be dropped.
``bind_call(call_id)`` puts ``call_id`` on every line logged inside it, including from asyncio
tasks created there (they copy the context). ``scrub(words)`` takes words (an erased
customer's numbers) out of the log file and its rotated copies beside it.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import logging
import logging.handlers
import os
import re
import shutil
import sys
import threading
from collections.abc import Collection, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast

import structlog
from structlog.typing import Processor

LEVELS = ("debug", "info", "warning", "error", "critical")

_HANDLER_MARK = "_callcenter_handler"


def _json_fallback(obj: object) -> object:
    """What JSON cannot hold, written as structlog's own renderer does: __structlog__, else
    repr."""
    method = getattr(obj, "__structlog__", None)
    return method() if method is not None else repr(obj)


_JSON = json.JSONEncoder(ensure_ascii=False, default=_json_fallback)


def _json_line(event_dict: object, **_options: object) -> str:
    """A JSON line from one encoder for all (``json.dumps`` with options, which structlog's
    renderer always passes, builds a new encoder for every line)."""
    return _JSON.encode(event_dict)


class _Output:
    """Where our lines go: the handler ``configure_logging`` set up, and its level."""

    handler: logging.StreamHandler[Any] | None = None
    level = logging.INFO
    final: list[Processor] = []
    """The renderer's processors (console or JSON), read at each line like the level."""


def _render(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
    result: Any = event
    for processor in _Output.final:
        result = processor(logger, name, result)
    return result


class Logger(structlog.BoundLoggerBase):
    """A bound logger whose methods drop a line below the configured level before anything
    is built (the level is read at each call, so configuring again applies to loggers already
    made). ``log.info("event", key=value)``; positional arguments are %-formatted into it."""

    def _emit(self, level: int, method: str, event: str | None, args: tuple[Any, ...],
              kw: dict[str, Any]) -> Any:
        if level < _Output.level:
            return None
        if args:
            kw["positional_args"] = args
        return self._proxy_to_logger(method, event, **kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._emit(logging.DEBUG, "debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._emit(logging.INFO, "info", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._emit(logging.WARNING, "warning", event, args, kw)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._emit(logging.ERROR, "error", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._emit(logging.CRITICAL, "critical", event, args, kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        kw.setdefault("exc_info", True)
        return self._emit(logging.ERROR, "error", event, args, kw)


class _Writer:
    """structlog's end of a line: writes the rendered line through the configured handler,
    under its lock (``scrub`` swaps the file under it), reopening a rotated file first."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or "root"

    def msg(self, line: str) -> None:
        handler = _Output.handler
        if handler is None:
            return
        with handler.lock or contextlib.nullcontext():
            try:
                if isinstance(handler, logging.handlers.WatchedFileHandler):
                    handler.reopenIfNeeded()
                handler.stream.write(line + handler.terminator)
                handler.flush()
            except (OSError, ValueError):  # a full disk or a closed stream must not end a call
                if logging.raiseExceptions and sys.stderr is not None:
                    sys.stderr.write(f"--- logging failed: {sys.exc_info()[1]!r}\n{line}\n")

    debug = info = warning = error = critical = msg


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

    handler: logging.StreamHandler[Any]
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
        # one encoder for every line (json.dumps with options builds one per call)
        renderer = structlog.processors.JSONRenderer(_json_line)
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
    _Output.handler, _Output.final = handler, final
    _Output.level = logging.getLevelNamesMapping()[level.upper()]
    logging.captureWarnings(True)
    # What no line shows, left out of every record of the libraries' lines, which still go
    # through logging (the logging HOWTO's "Optimization"): the caller's frame (a stack
    # walk), thread, process id (a getpid call) and process name.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False

    structlog.configure(
        processors=[*shared, _render],
        logger_factory=_Writer,
        wrapper_class=Logger,
        # Each module's logger is built once, not at every line (about 3 us a line, debug
        # lines included). Safe to cache: calling this again changes the handler, level and
        # renderer (_Output), which the cached loggers read; these processors stay the same.
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None, **initial: Any) -> Logger:
    """A structlog logger named ``name`` (use ``__name__``), with optional bound fields."""
    return cast(Logger, structlog.get_logger(name, **initial))


@contextmanager
def bind_call(call_id: str, **fields: Any) -> Iterator[None]:
    """Every log line inside the block (and tasks started in it) carries ``call_id``."""
    with structlog.contextvars.bound_contextvars(call_id=call_id, **fields):
        yield



def scrub(words: Collection[str], replacement: str) -> int:
    """Replace ``words`` (whole numbers: no digit just before or after) with ``replacement``
    in the log file this process writes and its rotated copies beside it (``server.log.1``,
    ``server.log.2.gz``, ``server.log-20261204``); the number of lines changed.

    Each file is rewritten into a new one swapped in by rename (a crash midway leaves the old
    one whole). The one being written: first what it holds, without holding up logging, then,
    under the handler's lock, what was appended meanwhile, the swap, and the handler reopens
    it; nothing logged is lost."""
    handler = next((h for h in logging.getLogger().handlers if getattr(h, _HANDLER_MARK, False)
                    and isinstance(h, logging.handlers.WatchedFileHandler)), None)
    if handler is None or not words:
        return 0
    pattern = re.compile("(?<![0-9])(?:{})(?![0-9])".format("|".join(
        re.escape(w) for w in sorted(words, key=len, reverse=True))))
    path = Path(handler.baseFilename)
    changed = 0
    with _SCRUBBING:  # two erases at once: one after the other (one temporary file each)
        for copy in sorted(path.parent.glob(glob.escape(path.name) + "[.-]*")):
            if copy.suffix not in (".bz2", ".xz", ".zst", ".zip"):
                changed += _rewrite(copy, pattern, replacement, gz=copy.suffix == ".gz")
        return changed + _rewrite(path, pattern, replacement, writer=handler)


_SCRUBBING = threading.Lock()


def _rewrite(path: Path, pattern: re.Pattern[str], replacement: str, *, gz: bool = False,
             writer: logging.handlers.WatchedFileHandler | None = None) -> int:
    """Scrub ``path`` into a new file that replaces it; ``writer``: the handler appending to
    it (its lock held from the last lines read to its reopening the new file)."""
    tmp = path.with_name(f".{path.name}.scrub")
    try:
        for _ in range(3):  # the written file rotated meanwhile: once more on the new one
            with _locked(writer):
                start = _identity(path)
            if start is None:
                return 0
            with contextlib.ExitStack() as files:
                raw_src, raw = files.enter_context(open(path, "rb")), files.enter_context(
                    open(tmp, "wb"))
                src = cast(IO[bytes], files.enter_context(gzip.GzipFile(fileobj=raw_src))
                           if gz else raw_src)
                out = cast(IO[bytes], files.enter_context(gzip.GzipFile(
                    path.stem, "wb", fileobj=raw)) if gz else raw)
                changed = _copy(src, out, start[2] if writer else None, pattern, replacement)
                with _locked(writer):
                    now = _identity(path)
                    if now is None or now[:2] != start[:2]:
                        continue
                    changed += _copy(src, out, None, pattern, replacement)
                    files.close()
                    shutil.copymode(path, tmp)
                    os.replace(tmp, path)
                    if writer:
                        writer.reopenIfNeeded()
                    return changed
        return 0
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _identity(path: Path) -> tuple[int, int, int] | None:
    """Device, inode and size of ``path`` (None: not there)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size


@contextmanager
def _locked(handler: logging.Handler | None) -> Iterator[None]:
    """Nothing is logged to ``handler`` meanwhile (and what it buffered is written)."""
    if handler is None:
        yield
        return
    handler.acquire()
    try:
        handler.flush()
        yield
    finally:
        handler.release()


def _copy(src: IO[bytes], out: IO[bytes], limit: int | None, pattern: re.Pattern[str],
          replacement: str) -> int:
    """Lines of ``src`` (up to offset ``limit``, or its end) into ``out``, scrubbed."""
    changed = 0
    while limit is None or src.tell() < limit:
        line = src.readline() if limit is None else src.readline(limit - src.tell())
        if not line:
            break
        text, n = pattern.subn(replacement, line.decode("utf-8", "surrogateescape"))
        changed += n > 0
        out.write(text.encode("utf-8", "surrogateescape"))
    return changed
