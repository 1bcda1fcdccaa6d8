"""Queue members by API, live (issue 15): agent 1001 (a member of sales only) is added to
support by POST and takes the next support call; the member is still there after a restart
and takes a call again; after DELETE it is rung for no more support calls.

Support's own member (1003) never registers, so only the added agent can take its calls.
The line 0800000002 goes straight into support (a dialplan file of this test).
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.artifacts import REPO
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp, wait_until

LINE_SUPPORT = "0800000002"
AGENT = "1001"
SUPPORT_LINE = f"""
lines:
  - number: "{LINE_SUPPORT}"
    name: Support (straight into the queue)
    kind: toll-free
    accept: [pstn]
    language: pl
    queue: support
    prompt: welcome
    timeout: 10
"""


def support_call(server: ServerProcess, workdir: Path, *, abandon_ms: int | None = None) -> None:
    """One caller into support: answered and released by the agent, or giving up."""
    scenario = "uac_queue_call.xml" if abandon_ms is None else "uac_queue_abandon.xml"
    result = run_sipp(scenario, workdir=workdir, ports=ports.allocate(8),
                      remote_port=server.sip_port, service=LINE_SUPPORT, timeout=40,
                      duration_ms=abandon_ms)
    assert result.returncode == 0, result.summary() + server.log_tail()


def _support_log(server: ServerProcess) -> list[dict[str, Any]]:
    return rows(server.db_path, "SELECT * FROM queue_log WHERE queue = 'support' ORDER BY id")


def _taken_by(server: ServerProcess, agent: str) -> int:
    return sum(1 for r in _support_log(server) if r["event"] == "connect" and r["agent"] == agent)


def support_server(artifacts: Path, sales: tuple[str, ...] = (AGENT,),
                   **support: Any) -> ServerProcess:
    """A server whose line 0800000002 goes straight into support (member 1003, ``support``
    settings more), sales having ``sales``; quick rings, no wrap-up or announcements."""
    require_binary("sipp")
    dialplans = artifacts / "dialplans"
    shutil.rmtree(dialplans, ignore_errors=True)
    shutil.copytree(REPO / "dialplans", dialplans)
    (dialplans / "support.yaml").write_text(SUPPORT_LINE, encoding="utf-8")
    queue = {"ring_timeout": 5, "wrapup": 0, "announce_every": None, "whisper": False}
    return ServerProcess(artifacts, overrides={"dialplans": str(dialplans), "queues": [
        {"name": "sales", "members": list(sales), **queue},
        {"name": "support", "members": ["1003"], **queue, **support},
    ]})


def test_member_added_by_api_takes_calls_until_deleted_and_survives_a_restart(
        artifacts: Path) -> None:
    server = support_server(artifacts)
    with server:
        status, body = http(server, "GET", "/api/queues/support")
        assert status == 200 and [m["agent"] for m in body["members"]] == ["1003"]
        with ExitStack() as stack:
            answering_phone(server, AGENT, artifacts / "before", stack, talk_ms=1500)
            status, member = http(server, "POST", "/api/queues/support/members",
                                  {"agent": AGENT, "penalty": 0})
            assert status == 201 and member["source"] == "api", member
            support_call(server, artifacts / "call1")
            assert _taken_by(server, AGENT) == 1, _support_log(server)

        server.stop()  # a restart on the same database
        server.start()
        status, body = http(server, "GET", "/api/queues/support")
        assert [(m["agent"], m["source"]) for m in body["members"]] == [
            ("1003", "file"), (AGENT, "api")], body
        with ExitStack() as stack:
            answering_phone(server, AGENT, artifacts / "after", stack, talk_ms=1500)
            support_call(server, artifacts / "call2")
            assert _taken_by(server, AGENT) == 2, _support_log(server)
            status, body = http(server, "DELETE", f"/api/queues/support/members/{AGENT}")
            assert status == 200 and [m["agent"] for m in body["members"]] == ["1003"]
            assert wait_until(lambda: any(
                a["id"] == AGENT and a["state"] == "available"
                for a in http(server, "GET", "/api/agents")[1]), 10)
            support_call(server, artifacts / "call3", abandon_ms=4000)  # rings nobody: gives up
        last = _support_log(server)[-2:]
        assert [r["event"] for r in last] == ["enter", "abandon"], _support_log(server)
        assert _taken_by(server, AGENT) == 2
        audit = rows(server.db_path, "SELECT who, action, object FROM audit ORDER BY id")
        assert [(r["who"], r["action"]) for r in audit] == [
            ("demo admin", "member.added"), ("demo admin", "member.removed")], audit
