"""A dynamic member's penalty changed by API applies to the next call (issue 15).

Support rings its members top-down (``linear``: 1001, added first, before 1002) among those
of the lowest penalty; its own member 1003 never registers. 1001 (penalty 0) takes the first
call over 1002 (penalty 5); after ``PATCH .../members/1001 {"penalty": 9}`` the next call goes
to 1002, which the order alone would never pick.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone
from tests.integration.test_queue_members import (
    _support_log,
    _taken_by,
    support_call,
    support_server,
)


def test_a_penalty_changed_by_api_decides_the_next_call(artifacts: Path) -> None:
    server = support_server(artifacts, ("1001", "1002"), strategy="linear")
    with server, ExitStack() as stack:
        for agent, penalty in (("1001", 0), ("1002", 5)):
            answering_phone(server, agent, artifacts / f"phone{agent}", stack, talk_ms=1000)
            status, member = http(server, "POST", "/api/queues/support/members",
                                  {"agent": agent, "penalty": penalty})
            assert status == 201, member
        support_call(server, artifacts / "call1")
        assert (_taken_by(server, "1001"), _taken_by(server, "1002")) == (1, 0), \
            _support_log(server)
        status, member = http(server, "PATCH", "/api/queues/support/members/1001",
                              {"penalty": 9})
        assert status == 200 and member["penalty"] == 9, member
        support_call(server, artifacts / "call2")
        assert (_taken_by(server, "1001"), _taken_by(server, "1002")) == (1, 1), \
            _support_log(server)
    stored = rows(server.db_path, "SELECT agent, penalty FROM queue_members ORDER BY agent")
    assert [(r["agent"], r["penalty"]) for r in stored] == [("1001", 9), ("1002", 5)]
