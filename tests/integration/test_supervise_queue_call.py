"""A supervisor joins an agent's *queue* call, and the queue's recording policy records it.

A queue call's agent leg is placed by the server in a call of its own (not the caller's), so
finding "the agent's conversation" must look at every live leg, not only the inbound calls.
SIPp plays the caller (line 0800000001, straight to queue ``sales``), the agent 1001 and the
supervisor 2001 (the server calls it for an API session).
"""

from __future__ import annotations

import wave
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until

LINE_SALES = "0800000001"
TALK_MS = 9000
OVERRIDES = {
    "queues": [{"name": "sales", "members": ["1001"], "wrapup": 1, "ring_timeout": 5,
                "whisper": False, "announce_every": None}],
    "recording": {"queues": ["sales"]},
}


def test_supervisor_joins_a_queue_call_and_it_is_recorded(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=OVERRIDES) as server, ExitStack() as stack:
        answering_phone(server, "1001", artifacts, stack, talk_ms=TALK_MS, calls=1,
                        timeout=60)
        answering_phone(server, "2001", artifacts, stack, talk_ms=TALK_MS, calls=1,
                        timeout=60)
        caller = stack.enter_context(Sipp(
            "uac_queue_call.xml", workdir=artifacts / "caller", ports=ports.allocate(8),
            remote_port=server.sip_port, service=LINE_SALES, calls=1, timeout=60))

        def talking() -> bool:
            return bool(rows(server.db_path, "SELECT id FROM queue_log WHERE event = 'connect'"))
        assert wait_until(talking, 20, 0.2), server.log_tail()

        status, session = http(server, "POST", "/api/supervisor/sessions",
                               {"supervisor": "2001", "agent": "1001", "mode": "listen"})
        assert status == 201, session

        def state() -> str:
            live = http(server, "GET", "/api/supervisor/sessions")[1]["live"]
            return next((s["state"] for s in live if s["id"] == session["id"]), "gone")
        assert wait_until(lambda: state() == "active", 10, 0.2), (state(), server.log_tail())
        assert caller.wait().returncode == 0, caller.summary() + server.log_tail()
        db = server.db_path
        # the session and the CDR are closed just after the caller's BYE: wait for both
        ended = 'SELECT id FROM {} WHERE "end" IS NOT NULL'
        wait_until(lambda: rows(db, ended.format("supervisor_sessions"))
                   and rows(db, ended.format("calls") + f" AND called = '{LINE_SALES}'"),
                   10, 0.2)
        sessions = rows(db, "SELECT * FROM supervisor_sessions")
        cdrs = rows(db, f"SELECT * FROM calls WHERE called = '{LINE_SALES}'")

    assert len(sessions) == 1 and sessions[0]["agent"] == "1001" and sessions[0]["joined"]
    assert len(cdrs) == 1 and cdrs[0]["recording"], cdrs
    assert sessions[0]["call_id"] == cdrs[0]["id"]
    with wave.open(cdrs[0]["recording"]) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        assert wav.getnframes() > 8000 * 3  # seconds of the conversation, not an empty file
