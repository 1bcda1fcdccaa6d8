"""A user added over the API (issue 15), live: 1005 does not exist in the file; POSTed with a
password, made a support member and logged in over the API, a SIPp phone registers as 1005 with digest
(checked against the stored HA1) and takes the next support call; after DELETE its REGISTER
is refused."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.artifacts import REPO
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp
from tests.integration.test_queue_members import LINE_SUPPORT, SUPPORT_LINE

USER, PASSWORD = "1005", "new-agent-1005"


def _register(server: ServerProcess, block: ports.PortBlock, workdir: Path) -> int:
    return run_sipp("uac_register_auth.xml", workdir=workdir, ports=block,
                    remote_port=server.sip_port, service=USER, auth=(USER, PASSWORD),
                    timeout=15, keys={"contact_port": str(block[0]), "expires": "300"}
                    ).returncode


def test_a_user_added_by_api_registers_and_takes_a_queue_call(artifacts: Path) -> None:
    require_binary("sipp")
    dialplans = artifacts / "dialplans"
    shutil.rmtree(dialplans, ignore_errors=True)
    shutil.copytree(REPO / "dialplans", dialplans)
    (dialplans / "support.yaml").write_text(SUPPORT_LINE, encoding="utf-8")
    queue = {"ring_timeout": 5, "wrapup": 0, "announce_every": None, "whisper": False}
    server = ServerProcess(artifacts, overrides={"dialplans": str(dialplans), "queues": [
        {"name": "sales", "members": ["1001"], **queue},
        {"name": "support", "members": ["1003"], **queue}]})
    with server, ExitStack() as stack:
        block = ports.allocate(8)
        assert _register(server, block, artifacts / "before") != 0  # no such user yet
        status, body = http(server, "POST", "/api/users", {
            "user": USER, "password": PASSWORD, "role": "agent", "name": "New Agent"})
        assert status == 201, body
        status, body = http(server, "POST", "/api/queues/support/members", {"agent": USER})
        assert status == 201, body
        status, body = http(server, "POST", f"/api/agents/{USER}/login")  # not a static member
        assert status == 200, body
        assert _register(server, block, artifacts / "reg") == 0, server.log_tail()
        stack.enter_context(Sipp("uas_agent.xml", workdir=artifacts / "phone", ports=block,
                                 calls=1, timeout=60, duration_ms=1500, extra=["-aa"],
                                 trace_msg=False))
        result = run_sipp("uac_queue_call.xml", workdir=artifacts / "call",
                          ports=ports.allocate(8), remote_port=server.sip_port,
                          service=LINE_SUPPORT, timeout=40)
        assert result.returncode == 0, result.summary() + server.log_tail()
        connects = rows(server.db_path, "SELECT agent FROM queue_log WHERE event = 'connect'")
        assert [r["agent"] for r in connects] == [USER]
        assert http(server, "DELETE", f"/api/users/{USER}")[0] == 200
        assert _register(server, ports.allocate(8), artifacts / "after") != 0
