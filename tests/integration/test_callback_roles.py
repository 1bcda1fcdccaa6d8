"""Callbacks moved and cancelled by users' logins over HTTP, live (issue 15).

Supervisor 2001 limited to ``support``; agent 1003 logs in with its password and books a
callback in ``sales`` (its login is recorded as the booker). The supervisor moves and cancels
a ``support`` request but gets 404 for the ``sales`` ones; the agent moves and cancels its
own booking but gets 404 for one an admin token booked; a cancelled request answers 409.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.api import http
from tests.helpers.server import ServerProcess

LATER = {"number": "+48600500001", "at": "2099-01-02T15:30"}
MOVE = {"at": "2099-01-03T10:00"}


def test_supervisors_and_agents_change_the_callbacks_in_their_scope(artifacts: Path) -> None:
    with ServerProcess(artifacts, overrides={"supervisor": {"queues": {"2001": ["support"]}}}
                       ) as srv:
        def login(user: str, password: str) -> str:
            status, body = http(srv, "POST", "/api/login", {"user": user, "password": password})
            assert status == 200, body
            return str(body["token"])

        def book(queue: str, token: str = "demo-admin-token") -> dict[str, object]:
            status, row = http(srv, "POST", "/api/callbacks", {**LATER, "queue": queue}, token)
            assert status == 201, row
            return dict(row)

        sup, agent = login("2001", "super2001"), login("1003", "agent1003")
        sales, support, mine = book("sales"), book("support"), book("sales", agent)
        assert (mine["booked_by"], sales["booked_by"]) == ("1003", ""), (mine, sales)
        for token, out, ours in ((sup, sales, support), (agent, sales, mine)):
            assert http(srv, "PATCH", f"/api/callbacks/{out['id']}", MOVE, token)[0] == 404
            assert http(srv, "DELETE", f"/api/callbacks/{out['id']}", None, token)[0] == 404
            status, row = http(srv, "PATCH", f"/api/callbacks/{ours['id']}", MOVE, token)
            assert (status, row["at"][:16]) == (200, "2099-01-03T10:00"), row
            status, row = http(srv, "DELETE", f"/api/callbacks/{ours['id']}", None, token)
            assert (status, row["status"]) == (200, "cancelled"), row
            assert http(srv, "PATCH", f"/api/callbacks/{ours['id']}", MOVE, token)[0] == 409
        status, rows = http(srv, "GET", "/api/callbacks", None, agent)
        assert status == 200 and [r["id"] for r in rows] == [mine["id"]], rows
        status, rows = http(srv, "GET", "/api/callbacks?state=open")
        assert [r["id"] for r in rows] == [sales["id"]], rows
