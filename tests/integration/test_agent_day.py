"""An agent's day, live (issue 13): per-queue log-in and log-out, named pause reasons and an
inbound disposition, by the phone's feature codes and by the API.

1001 is a dynamic member of ``sales`` (queue number 1, line 0800000001) and ``support``
(number 2). It logs into support only with ``*412``, pauses with ``*432`` (``training`` in the
shipped ``pause_reasons``), unpauses, is logged into sales by the API, takes a sales caller
and codes the call with ``*51`` afterwards; the CDR has the agent, the queue and the
disposition, and the queue log has the per-queue rows with the pause reason. Paused for
lunch (code 1), it is still paused for lunch, in sales only, after a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp, wait_until
from tests.integration.demo import USERS

OVERRIDES = {"queues": [
    {"name": "sales", "members": [{"user": "1001", "static": False}], "whisper": False,
     "dispositions": {"1": "resolved", "2": "escalated"}},
    {"name": "support", "members": [{"user": "1001", "static": False}]},
]}


def test_per_queue_login_pause_reasons_and_a_disposition(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=OVERRIDES) as srv:
        block = ports.allocate(8)
        register(srv, "1001", block, artifacts / "reg")

        def dial(code: str) -> None:
            result = run_sipp("uac_feature_code.xml", workdir=artifacts / f"code{code[1:]}",
                              ports=block, remote_port=srv.sip_port, service=code,
                              auth=("1001", USERS["1001"]), keys={"user": "1001"}, timeout=20)
            assert result.returncode == 0, result.summary() + srv.log_tail()

        def agent() -> dict[str, Any]:
            return next(a for a in http(srv, "GET", "/api/agents")[1] if a["id"] == "1001")

        dial("*412")
        assert (agent()["state"], agent()["queues"]) == ("available", ["support"]), agent()
        dial("*432")
        assert (agent()["state"], agent()["reason"]) == ("paused", "training"), agent()
        dial("*44")
        assert http(srv, "POST", "/api/agents/1001/pause", {"reason": "golf"})[0] == 400
        assert http(srv, "POST", "/api/agents/1001/login", {"queue": "nope"})[0] == 400
        status, body = http(srv, "POST", "/api/agents/1001/login", {"queue": "sales"})
        assert (status, body["queues"]) == (200, ["sales", "support"]), body
        status, body = http(srv, "POST", "/api/agents/1001/logout", {"queue": "support"})
        assert (status, body["state"], body["queues"]) == (200, "available", ["sales"]), body

        with Sipp("uas_agent.xml", workdir=artifacts / "phone", ports=block, calls=1,
                  timeout=60, duration_ms=1500, extra=["-aa"]) as phone:
            caller = run_sipp("uac_queue_call.xml", workdir=artifacts / "caller",
                              ports=ports.allocate(8), remote_port=srv.sip_port,
                              service="0800000001", timeout=60)
            assert caller.returncode == 0, caller.summary() + srv.log_tail()
            assert phone.wait(30).returncode == 0
        assert http(srv, "POST", "/api/agents/1001/disposition", {"code": "7"})[0] == 400
        dial("*51")
        cdr = "SELECT agent, queue, disposition FROM calls WHERE source LIKE 'trunk:%'"
        assert wait_until(lambda: rows(srv.db_path, cdr) and rows(srv.db_path, cdr)[0][
            "disposition"], 10), rows(srv.db_path, cdr)
        calls = rows(srv.db_path, cdr)
        status, body = http(srv, "POST", "/api/agents/1001/pause", {"reason": "1"})
        assert (status, body["reason"]) == (200, "lunch"), body
        log = rows(srv.db_path, "SELECT queue, event, detail FROM queue_log "
                   "WHERE call_id = 'NONE' ORDER BY id")
    with ServerProcess(artifacts, overrides=OVERRIDES) as again:  # a restart keeps all that
        after = next(a for a in http(again, "GET", "/api/agents")[1] if a["id"] == "1001")
    assert (after["state"], after["reason"], after["queues"]) == ("paused", "lunch", ["sales"])
    assert calls == [{"agent": "1001", "queue": "sales", "disposition": "resolved"}], calls
    assert [tuple(r.values()) for r in log] == [
        ("support", "addmember", ""), ("support", "pause", "training"),
        ("support", "unpause", ""), ("sales", "addmember", ""),
        ("support", "removemember", ""), ("sales", "pause", "lunch")], log
