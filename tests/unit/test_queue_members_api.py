"""Dynamic queue members through the API: the contract's statuses, the file wins, the audit
trail, and the members kept over a restart (a second Application on the same database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from callcenter.app import Application
from callcenter.cli import load_setup
from callcenter.events.bus import AuditChanged, Event
from callcenter.log import configure_logging
from callcenter.web.http import HttpRequest

ADMIN, READ = "demo-admin-token", "demo-wallboard-token"


class Server:
    """The real Application without sockets: requests go straight to the dispatcher."""

    def __init__(self, db: Path) -> None:
        configure_logging("error", "json", None)
        cfg, dialplan, _ = load_setup(None)
        cfg = cfg.model_copy(update={"database": db})
        self.loop = asyncio.new_event_loop()
        self.events: list[Event] = []

        async def build() -> Application:
            app = Application(cfg, dialplan)
            app.stack.loop = self.loop
            await app.queues.start()
            app.members.start()
            return app

        self.app = self.loop.run_until_complete(build())
        self.app.events.bus.subscribe(self.events.append)

    def __call__(self, method: str, path: str, body: Any = None,
                 token: str = ADMIN) -> tuple[int, Any]:
        status, data = self.raw(method, path, body, token)
        return status, json.loads(data)

    def raw(self, method: str, path: str, body: Any = None,
            token: str = ADMIN) -> tuple[int, bytes]:
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(
            body).encode()
        path, _, query = path.partition("?")
        req = HttpRequest(method, path, parse_qs(query), {"authorization": f"Bearer {token}"},
                          data)
        resp = self.loop.run_until_complete(self.app.http._dispatch(req))
        return resp.status, resp.body

    def close(self) -> None:
        self.loop.run_until_complete(self.app.queues.close())
        self.app.store.close()
        self.loop.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "cc.db")
    yield s
    s.close()


def agents(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["agent"], m["source"]) for m in body["members"]]


def test_add_conflicts_and_errors(server: Server) -> None:
    status, body = server("GET", "/api/queues/support", token=READ)
    assert status == 200 and agents(body) == [("1003", "file"), ("1004", "file")]
    assert body["settings"]["ring_timeout"] == 15
    status, member = server("POST", "/api/queues/support/members", {"agent": "1001",
                                                                     "penalty": 2})
    assert status == 201, member
    assert (member["agent"], member["penalty"], member["tier"], member["source"],
            member["added_by"]) == ("1001", 2, 1, "api", "demo admin")
    assert server.app.queues.engine is not None
    assert "1001" in server.app.queues.engine.members("support")
    status, body = server("POST", "/api/queues/support/members", {"agent": "1001"})
    assert status == 409 and "already a member" in body["error"]
    status, body = server("POST", "/api/queues/support/members", {"agent": 1003})
    assert status == 409 and "config file" in body["error"]
    status, body = server("DELETE", "/api/queues/support/members/1004")
    assert status == 409 and "config file" in body["error"]
    assert server("POST", "/api/queues/nope/members", {"agent": "1001"})[0] == 404
    assert server("GET", "/api/queues/nope")[0] == 404
    assert server("POST", "/api/queues/support/members", {"agent": "2001"})[0] == 404  # no agent
    assert server("DELETE", "/api/queues/support/members/1002")[0] == 404  # not a member
    for bad in ([], {}, {"agent": ""}, {"agent": "1002", "penalty": -1},
                {"agent": "1002", "tier": 0}, {"agent": "1002", "penalty": True}):
        assert server("POST", "/api/queues/support/members", bad)[0] == 400, bad
    assert server("POST", "/api/queues/support/members", {"agent": "1002"}, READ)[0] == 403
    audits = [e for e in server.events if isinstance(e, AuditChanged)]
    assert [(e.who, e.action, e.object) for e in audits] == [
        ("demo admin", "member.added", "queue/support/member/1001")]
    (row,) = server.app.store.audit()
    assert (row["who"], row["action"], row["detail"]) == (
        "demo admin", "member.added", {"queue": "support", "agent": "1001", "penalty": 2,
                                       "tier": 1})


def test_dynamic_members_survive_a_restart_until_deleted(tmp_path: Path) -> None:
    first = Server(tmp_path / "cc.db")
    try:
        assert first("POST", "/api/queues/support/members", {"agent": "1001", "tier": 2})[0] == 201
    finally:
        first.close()
    again = Server(tmp_path / "cc.db")
    try:
        status, body = again("GET", "/api/queues/support")
        assert agents(body) == [("1003", "file"), ("1004", "file"), ("1001", "api")]
        assert body["members"][2]["tier"] == 2
        status, body = again("DELETE", "/api/queues/support/members/1001")
        assert status == 200 and "1001" not in [m["agent"] for m in body["members"]]
        assert [r["action"] for r in again.app.store.audit()] == ["member.added",
                                                                   "member.removed"]
        assert again.app.store.queue_members() == []
    finally:
        again.close()
