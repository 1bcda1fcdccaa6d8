"""An agent on a call the queue did not give it is not offered queue calls (issues 13, 16).

Agent 1001 (the only member of ``sales``) has two SIPp phones: one answers queue calls, from
the other 1001 calls user 1002 directly (a phone signals from its registered address). A
trunk caller enters ``sales`` meanwhile: the ACD sees 1001's phone in use (``in_use`` in
/api/agents) and keeps the caller waiting; the moment 1002 hangs up, the caller rings 1001
(no wrap-up after a call the ACD did not place) and is answered. Meanwhile /api/agents shows
the direct call at 1001 (``phone_call``); after, the day's figures count it for both.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone, register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.demo import USERS

LINE_SALES = "0800000001"  # straight to queue sales
DIRECT_MS = 12000  # 1002 hangs up the direct call after this long
OVERRIDES = {"queues": [{"name": "sales", "members": ["1001"], "wrapup": 1, "ring_timeout": 5,
                         "whisper": False, "announce_every": None}]}


def test_a_queue_caller_waits_for_the_agents_direct_call_to_end(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=OVERRIDES) as server, ExitStack() as stack:
        db = server.db_path
        answering_phone(server, "1001", artifacts, stack, talk_ms=2000, calls=1, timeout=90)
        answering_phone(server, "1002", artifacts, stack, talk_ms=DIRECT_MS, calls=1,
                        timeout=90)
        block = ports.allocate(8)
        register(server, "1001", block, artifacts / "reg_direct")
        direct = stack.enter_context(Sipp(
            "uac_feature_code.xml", workdir=artifacts / "direct", ports=block,
            remote_port=server.sip_port, service="1002", auth=("1001", USERS["1001"]),
            keys={"user": "1001"}, timeout=60))
        talking = "SELECT answer, \"end\" FROM calls WHERE caller = '1001' AND called = '1002'"
        assert wait_until(lambda: any(r["answer"] for r in rows(db, talking)), 20, 0.2), \
            server.log_tail()

        def agent() -> dict[str, Any]:
            return next(a for a in http(server, "GET", "/api/agents")[1] if a["id"] == "1001")
        assert agent()["in_use"] and agent()["state"] == "available", agent()
        phone = agent()["phone_call"]  # what the supervisor's view shows
        assert phone is not None and (phone["kind"], phone["outgoing"], phone["other"],
                                      phone["answered"]) == ("direct", True, "1002", True), phone
        caller = stack.enter_context(Sipp(
            "uac_queue_call.xml", workdir=artifacts / "caller", ports=ports.allocate(8),
            remote_port=server.sip_port, service=LINE_SALES, calls=1, timeout=90))
        connect = "SELECT agent, ts FROM queue_log WHERE event = 'connect'"
        assert wait_until(lambda: rows(db, "SELECT id FROM queue_log WHERE event = 'enter'")
                          or rows(db, connect), 20, 0.2), server.log_tail()
        seen: list[dict[str, Any]] = []

        def direct_ended() -> bool:
            """Until the direct call ends: no queue call reaches 1001 (read in this order)."""
            connected, status = rows(db, connect), agent()
            ended = any(r["end"] for r in rows(db, talking))
            if not ended:
                seen.append({"connected": connected, **status})
            return ended
        assert wait_until(direct_ended, 30, 0.2), server.log_tail()
        assert seen and all(not s["connected"] and s["call"] is None and s["in_use"]
                            for s in seen), seen
        assert wait_until(lambda: rows(db, connect), 20, 0.2), server.log_tail()
        assert [r["agent"] for r in rows(db, connect)] == ["1001"]
        assert not agent()["in_use"], agent()
        assert direct.wait(30).returncode == 0, direct.summary()
        assert caller.wait(30).returncode == 0, caller.summary() + server.log_tail()
        today = {a["agent"]: a for a in http(server, "GET", "/api/stats/agents")[1]["agents"]}
        assert (today["1001"]["calls"], today["1001"]["queue_calls"]) == (2, 1), today
        assert (today["1002"]["calls"], today["1002"]["queue_calls"]) == (1, 0), today
        assert today["1002"]["talk"] >= DIRECT_MS / 1000 - 1, today
