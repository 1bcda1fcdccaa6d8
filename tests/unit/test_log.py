"""Logging: JSON lines carry level, timestamp, bound call_id; stdlib records are routed too."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.log import bind_call, configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging("info", "console", stream=io.StringIO())
    logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_call_id_inside_bind_call_only() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    log = get_logger("callcenter.test")
    with bind_call("call-42"):
        log.info("call answered", caller="0600111222", name="Wiśniewska")
    log.info("after")
    first, second = lines(out)
    assert first["event"] == "call answered" and first["call_id"] == "call-42"
    assert first["level"] == "info" and first["logger"] == "callcenter.test"
    assert first["caller"] == "0600111222" and first["name"] == "Wiśniewska"
    assert str(first["timestamp"]).endswith("Z") and "T" in str(first["timestamp"])
    assert "call_id" not in second


def test_tasks_started_inside_bind_call_inherit_it() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    log = get_logger("callcenter.test")

    async def leg() -> None:
        await asyncio.sleep(0)
        log.debug("leg running")

    async def main() -> None:
        with bind_call("call-1"):
            task = asyncio.create_task(leg())
        log.info("outside")
        await task

    asyncio.run(main())
    by_event = {line["event"]: line for line in lines(out)}
    assert by_event["leg running"]["call_id"] == "call-1"
    assert "call_id" not in by_event["outside"]


def test_level_filters_and_stdlib_records_are_rendered_alike() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)
    get_logger("x").info("hidden")
    with bind_call("c9"):
        logging.getLogger("asyncio").warning("socket %s closed", "udp")
        warnings.warn("deprecated option", UserWarning, stacklevel=1)
    records = lines(out)
    assert [r["logger"] for r in records] == ["asyncio", "py.warnings"]
    assert records[0]["event"] == "socket udp closed" and records[0]["call_id"] == "c9"
    assert "deprecated option" in str(records[1]["event"])


def test_exceptions_without_locals() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    password = "agent1001"  # noqa: F841 - must not leak into the log
    try:
        raise ValueError("bad digest")
    except ValueError:
        get_logger("x").exception("auth failed")
    text = out.getvalue()
    assert "bad digest" in text and "agent1001" not in text


def test_console_format_without_tty_has_no_colours() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    with bind_call("abc"):
        get_logger("x").info("hello", n=1)
    text = out.getvalue()
    assert "hello" in text and "call_id=abc" in text and "\x1b[" not in text


def test_auto_is_json_when_not_a_tty() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)
    get_logger("x").info("hi")
    assert lines(out)[0]["event"] == "hi"


def test_log_file(tmp_path: Path) -> None:
    path = tmp_path / "log" / "cc.log"
    configure_logging("info", "auto", path)
    get_logger("x").info("to file")
    logging.getLogger().handlers[-1].flush()
    assert json.loads(path.read_text().splitlines()[0])["event"] == "to file"


def test_reconfigure_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    configure_logging("info", "json", stream=second)
    get_logger("x").info("once")
    assert first.getvalue() == "" and len(lines(second)) == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        configure_logging("loud", "json")
    with pytest.raises(ValueError):
        configure_logging("info", "xml")


def test_our_lines_make_no_record_and_library_records_skip_what_no_line_shows() -> None:
    """Our lines are written without a stdlib LogRecord; a library's record carries no
    stack walk for the caller, no getpid, thread or process name: nothing rendered uses
    them. Both lines read the same."""
    out, records = io.StringIO(), []
    configure_logging("info", "json", stream=out)

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        get_logger("callcenter.test").info("call_started", caller="0600111222")
        logging.getLogger("somelib").info("library line")
    finally:
        logging.getLogger().removeHandler(keep)
    ours, theirs = lines(out)
    assert set(ours) == {"timestamp", "level", "logger", "event", "caller"}
    assert set(theirs) == {"timestamp", "level", "logger", "event"}
    assert theirs["logger"] == "somelib" and theirs["event"] == "library line"
    (record,) = records  # the library's only
    assert record.name == "somelib"
    assert record.funcName == "(unknown function)" and record.lineno == 0
    assert record.process is None and record.thread is None and record.processName is None

def test_a_logger_already_used_follows_the_new_level_format_and_rotated_file(
    tmp_path: Path,
) -> None:
    """Loggers are cached on first use (a module's ``log``); configuring again still applies
    to them: level, renderer and handler. A file moved away (logrotate) is reopened."""
    log = get_logger("callcenter.cached")
    console = io.StringIO()
    configure_logging("info", "console", stream=console)
    log.info("first", n=1)
    log.debug("not at info")
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    log.debug("now shown", n=2)
    log.info("call %s from %s", "c1", "pstn")
    assert "first" in console.getvalue() and "not at info" not in console.getvalue()
    shown, formatted = lines(out)
    assert shown["event"] == "now shown" and shown["level"] == "debug" and shown["n"] == 2
    assert formatted["event"] == "call c1 from pstn" and formatted["logger"] == "callcenter.cached"
    path = tmp_path / "server.log"
    configure_logging("warning", "json", path)
    log.info("below warning")
    log.warning("before rotation")
    path.rename(tmp_path / "server.log.1")
    log.error("after rotation")
    assert [json.loads(x)["event"] for x in (tmp_path / "server.log.1").read_text().splitlines()] \
        == ["before rotation"]
    (after,) = [json.loads(x) for x in path.read_text().splitlines()]
    assert after["event"] == "after rotation" and after["level"] == "error"
