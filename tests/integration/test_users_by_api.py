"""A user added over the API (issue 15), live: 1005 does not exist in the file; POSTed with a
password, made a support member and logged in over the API, a SIPp phone registers as 1005 with digest
(checked against the stored HA1) and takes the next support call; after DELETE its REGISTER
is refused."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone, sipp_register
from tests.integration.test_queue_members import support_call, support_server

USER, PASSWORD = "1005", "new-agent-1005"


def test_a_user_added_by_api_registers_and_takes_a_queue_call(artifacts: Path) -> None:
    require_binary("sipp")
    with support_server(artifacts) as server, ExitStack() as stack:
        refused = sipp_register(server, USER, ports.allocate(8), artifacts / "before",
                                password=PASSWORD)
        assert refused.returncode != 0  # no such user yet
        status, body = http(server, "POST", "/api/users", {
            "user": USER, "password": PASSWORD, "role": "agent", "name": "New Agent"})
        assert status == 201, body
        status, body = http(server, "POST", "/api/queues/support/members", {"agent": USER})
        assert status == 201, body
        status, body = http(server, "POST", f"/api/agents/{USER}/login")  # not a static member
        assert status == 200, body
        answering_phone(server, USER, artifacts, stack, talk_ms=1500, calls=1, timeout=60,
                        password=PASSWORD)
        support_call(server, artifacts / "call")
        connects = rows(server.db_path, "SELECT agent FROM queue_log WHERE event = 'connect'")
        assert [r["agent"] for r in connects] == [USER]
        assert http(server, "DELETE", f"/api/users/{USER}")[0] == 200
        refused = sipp_register(server, USER, ports.allocate(8), artifacts / "after",
                                password=PASSWORD)
        assert refused.returncode != 0
