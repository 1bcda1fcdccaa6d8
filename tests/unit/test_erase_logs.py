"""GDPR erase reaches the server's own log files (issue 16): the JSON lines the server wrote
with the caller's number, in every form it was logged, and its rotated copies beside it, keep
no trace of it; nothing else changes, and lines logged while the file is rewritten are kept."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from callcenter import log as logmod
from callcenter.log import configure_logging
from callcenter.store import CallRecord
from tests.unit.test_queue_members_api import Server

FORMS = ("0048221234567", "+48221234567", "48221234567", "221234567", "0221234567")
OTHER = "+48601000001"  # another customer: stays


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "cc.db")
    configure_logging("info", "json", tmp_path / "logs" / "server.log")
    yield s
    configure_logging("error", "json", None)
    s.close()


def test_erase_scrubs_the_number_from_the_server_logs(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    calls = structlog.get_logger("calls")
    store, customers = server.app.store, server.app.customers
    store.start_call(CallRecord(id="c1", sip_call_id="c1", direction="inbound",
                                caller=FORMS[0], called="0800123456", source="trunk:pstn",
                                start=100.0))
    customers.recognise("c1", FORMS[0], now=100.0)
    for form in FORMS:  # as the server logs a call, a SIP URI, a callback, a campaign
        calls.info("call_started", caller=form, called="0800123456", source="trunk:pstn")
        calls.info("dial", uri=f"sip:{form}@127.0.0.1:5070;transport=udp")
    calls.info("callback_dial", id=7, number=OTHER, agent="1001")
    calls.info("not_a_number", digits="1221234567890")  # holds a form, but is longer
    (logs / "server.log.1").write_text(json.dumps({"caller": FORMS[1]}) + "\n")
    with gzip.open(logs / "server.log.2.gz", "wt") as old:
        old.write(json.dumps({"caller": FORMS[3], "event": "call_started"}) + "\n")
    real_copy, copies = logmod._copy, []

    def copy_then_log(*args: Any) -> int:  # a line logged while the file is rewritten
        copies.append(args[2])
        if len(copies) == 3:
            calls.info("meanwhile", caller=FORMS[1])
        return real_copy(*args)

    monkeypatch.setattr(logmod, "_copy", copy_then_log)
    lines_before = (logs / "server.log").read_text().count("\n")
    status, erased = server("DELETE", f"/api/customers/{customers.by_number(FORMS[1])['id']}")
    assert status == 200 and erased["log_lines"] == 2 * len(FORMS) + 1 + 2, erased
    calls.info("after_erase", agent="1001")  # the handler writes to the new file
    text = (logs / "server.log").read_text()
    assert text.count("\n") == lines_before + 2  # meanwhile and after_erase
    everything = text + (logs / "server.log.1").read_text() + gzip.decompress(
        (logs / "server.log.2.gz").read_bytes()).decode()
    for form in FORMS:
        assert form not in everything.replace("1221234567890", ""), form
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["caller"] for e in events if e["event"] == "call_started"] == ["erased"] * 5
    assert "sip:erased@127.0.0.1:5070;transport=udp" in text
    assert OTHER in text and "1221234567890" in text
    assert events[-1]["event"] == "after_erase"
    assert [e["caller"] for e in events if e["event"] == "meanwhile"] == ["erased"]
    assert sorted(p.name for p in logs.iterdir()) == [
        "server.log", "server.log.1", "server.log.2.gz"]  # no temporary file left
