"""Users and queues by API (issue 15): added and removed while the server runs, stored (a
user's password as its digest HA1 only), audited, kept over restarts and reloads; the file
wins; the same checks as the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.web.http import HttpRequest
from tests.unit.test_config_reload import Running

ADMIN = {"authorization": "Bearer demo-admin-token"}


def api(r: Running, method: str, path: str, body: Any = None,
        headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
    req = HttpRequest(method, path, {}, dict(headers),
                      b"" if body is None else json.dumps(body).encode())
    resp = r.loop.run_until_complete(r.app.http._dispatch(req))
    return resp.status, json.loads(resp.body)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    yield r
    r.close()


NEW = {"user": "1005", "password": "agent1005", "role": "agent", "name": "New Agent"}


def test_a_user_added_by_api_is_an_agent_at_once_and_can_log_in(running: Running) -> None:
    app = running.app
    status, body = api(running, "POST", "/api/users", NEW)
    assert status == 201 and body["source"] == "api" and body["added_by"] == "demo admin"
    assert app.passwords["1005"].startswith("ha1:")  # the password itself is not kept
    assert "agent1005" not in json.dumps(app.store.api_users())
    assert "1005" in app.queues.engine.agent_ids  # type: ignore[union-attr]
    status, login = api(running, "POST", "/api/login", {"user": "1005",
                                                        "password": "agent1005"}, {})
    assert status == 200 and login["role"] == "agent"
    assert api(running, "POST", "/api/users", NEW)[0] == 409
    # a reload of the file keeps it; removing it logs it out of the ACD and the API
    running.edit("  port: 5060", "  port: 5061")
    assert running.reload()["status"] == "unchanged"
    running.edit('password: "agent1001"', 'password: "other1001"')
    assert running.reload()["status"] == "applied" and "1005" in app.passwords
    assert api(running, "DELETE", "/api/users/1005")[0] == 200
    assert "1005" not in app.passwords
    assert "1005" not in app.queues.engine.agent_ids  # type: ignore[union-attr]
    assert api(running, "GET", "/api/agents/1005",
               headers={"authorization": f"Bearer {login['token']}"})[0] == 401
    assert [(r["who"], r["action"], r["object"]) for r in app.store.audit()
            if r["action"].startswith("user.")] == [
        ("demo admin", "user.added", "user/1005"), ("demo admin", "user.removed", "user/1005")]


def test_the_file_wins_and_bad_users_get_the_files_answers(running: Running) -> None:
    assert api(running, "POST", "/api/users", {**NEW, "user": "1001"})[0] == 409
    assert api(running, "DELETE", "/api/users/1001")[0] == 409
    assert api(running, "DELETE", "/api/users/4242")[0] == 404
    status, body = api(running, "POST", "/api/users", {**NEW, "role": "boss"})
    assert status == 422 and any(e.startswith("role:") for e in body["errors"]), body
    status, body = api(running, "POST", "/api/users", {"user": "a b", "role": "agent"})
    assert status == 422 and {e.split(":")[0] for e in body["errors"]} == {"user", "password"}
    assert api(running, "POST", "/api/users", NEW,
               {"authorization": "Bearer demo-wallboard-token"})[0] == 403
    listed = api(running, "GET", "/api/users")[1]
    assert [u["user"] for u in listed] == ["1001", "1002", "1003", "1004", "2001"]
    assert all("password" not in u for u in listed)


def test_users_and_queues_added_by_api_survive_a_restart(tmp_path: Path) -> None:
    first = Running(tmp_path)
    try:
        assert api(first, "POST", "/api/users", NEW)[0] == 201
        assert api(first, "POST", "/api/queues", {"name": "vip"})[0] == 201
    finally:
        first.close()
    again = Running(tmp_path)
    try:
        assert "1005" in again.app.passwords and "1005" in again.app.queues.engine.agent_ids  # type: ignore[union-attr]
        assert [u["source"] for u in api(again, "GET", "/api/users")[1]][-1] == "api"
        assert "vip" in again.app.queues.engine.queue_names  # type: ignore[union-attr]
    finally:
        again.close()


def test_a_queue_added_by_api_takes_members_and_calls_and_can_go(running: Running) -> None:
    app = running.app
    engine = app.queues.engine
    assert engine is not None
    status, body = api(running, "POST", "/api/queues", {"name": "vip", "strategy": "rrmemory",
                                                        "overflow": "support"})
    assert status == 201 and body["strategy"] == "round-robin", body
    assert "vip" in engine.queue_names and app.cfg.queue("vip") is not None
    status, body = api(running, "POST", "/api/queues/vip/members", {"agent": "1001"})
    assert status == 201 and body["source"] == "api", body
    assert engine.members("vip") == ["1001"]
    assert api(running, "GET", "/api/queues/vip")[0] == 200
    # a reload of the file keeps it and its member
    running.edit('password: "agent1001"', 'password: "other1001"')
    assert running.reload()["status"] == "applied" and engine.members("vip") == ["1001"]
    assert api(running, "POST", "/api/queues", {"name": "vip"})[0] == 409
    assert api(running, "DELETE", "/api/queues/vip")[0] == 200
    assert "vip" not in engine.queue_names and app.cfg.queue("vip") is None
    assert [r["action"] for r in app.store.audit()][-3:] == [
        "member.added", "config.reloaded", "queue.removed"]


def test_queues_by_api_get_the_files_checks(running: Running) -> None:
    for body, where in [({"name": "x", "strategy": "dice"}, "strategy"),
                        ({"name": "x", "overflow": "nowhere"}, "queues"),
                        ({"name": "x", "members": ["1001"]}, "expected"),
                        ({"name": "bad name"}, "name")]:
        status, answer = api(running, "POST", "/api/queues", body)
        assert status == 422 and answer["errors"][0].startswith(where), (body, answer)
    assert api(running, "POST", "/api/queues", {"name": "sales"})[0] == 409
    assert api(running, "DELETE", "/api/queues/sales")[0] == 409
    assert api(running, "DELETE", "/api/queues/nope")[0] == 404
    assert api(running, "POST", "/api/queues", {"name": "a"})[0] == 201
    assert api(running, "POST", "/api/queues", {"name": "b", "overflow": "a"})[0] == 201
    assert api(running, "DELETE", "/api/queues/a")[0] == 409  # b overflows to it
