"""The rest of the admin API (issue 15): users and queues of the API changed in place, a
dynamic member's penalty, pause reasons, and a separate web password for the API login; all
with the file's checks, audited, applied live, kept over restarts; the file wins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from acd import events as ev
from tests.unit.test_config_reload import Running
from tests.unit.test_users_api import ADMIN, NEW, api


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    yield r
    r.close()


def login(r: Running, user: str, password: str) -> int:
    return api(r, "POST", "/api/login", {"user": user, "password": password}, {})[0]


def actions(r: Running) -> list[tuple[str, str]]:
    return [(row["action"], row["object"]) for row in r.app.store.audit()
            if row["action"].endswith(".changed") and row["action"] != "config.reloaded"]


def test_a_user_of_the_api_is_changed_in_place(running: Running) -> None:
    app = running.app
    engine = app.queues.engine
    assert engine is not None and api(running, "POST", "/api/users", NEW)[0] == 201
    token = api(running, "POST", "/api/login", {"user": "1005", "password": "agent1005"},
                {})[1]["token"]
    me = {"authorization": f"Bearer {token}"}
    status, body = api(running, "PATCH", "/api/users/1005",
                       {"name": "Renamed", "skills": {"english": 80}})
    assert status == 200 and body["name"] == "Renamed" and body["skills"] == {"english": 80}
    assert engine._agents["1005"].skills == {"english": 80}  # the ACD's, at once
    assert api(running, "GET", "/api/agents/1005", headers=me)[0] == 200  # still logged in
    ha1 = app.passwords["1005"]
    assert api(running, "PATCH", "/api/users/1005", {"password": "new-1005"})[0] == 200
    assert app.passwords["1005"].startswith("ha1:") and app.passwords["1005"] != ha1
    assert api(running, "GET", "/api/agents/1005", headers=me)[0] == 401  # its session ended
    assert login(running, "1005", "agent1005") == 401 and login(running, "1005", "new-1005") == 200
    assert api(running, "PATCH", "/api/users/1005", {"role": "supervisor"})[0] == 200
    assert "1005" not in engine.agent_ids
    # the file wins; the file's checks; nothing else
    assert api(running, "PATCH", "/api/users/1001", {"name": "x"})[0] == 409
    assert api(running, "PATCH", "/api/users/4242", {"name": "x"})[0] == 404
    for bad in ({"role": "boss"}, {"skills": {"english": 101}}, {"colour": "red"}, {},
                {"web_password": ""}, {"user": "1006"}):
        status, body = api(running, "PATCH", "/api/users/1005", bad)
        assert status == 422 and body["errors"], (bad, body)
    assert actions(running) == [("user.changed", "user/1005")] * 3
    details = [r["detail"] for r in app.store.audit() if r["action"] == "user.changed"]
    assert details[1] == {"user": "1005", "changed": ["password"]}  # never a password
    assert "new-1005" not in json.dumps(app.store.audit())


def test_a_web_password_logs_in_beside_the_sip_password(running: Running) -> None:
    app = running.app
    assert api(running, "POST", "/api/users", {**NEW, "web_password": "first-web"})[0] == 201
    assert login(running, "1005", "first-web") == 200
    assert api(running, "PATCH", "/api/users/1005", {"web_password": "desk-secret"})[0] == 200
    stored = app.store.api_users()[0]["web_password"]
    assert stored.startswith("scrypt:16384:8:1:") and "desk-secret" not in stored
    assert app.passwords["1005"] == app.store.api_users()[0]["password"]  # SIP: HA1 as it was
    assert login(running, "1005", "desk-secret") == 200
    assert login(running, "1005", "agent1005") == 200  # the SIP password too
    assert login(running, "1005", "first-web") == 401
    assert api(running, "GET", "/api/users")[1][-1]["web_password"] is True
    assert api(running, "PATCH", "/api/users/1005", {"web_password": None})[0] == 200
    assert login(running, "1005", "desk-secret") == 401
    assert api(running, "GET", "/api/users")[1][-1]["web_password"] is False


def test_a_file_user_gets_a_web_password_by_api(running: Running) -> None:
    """The file wins for a user it defines, but for the web password it does not give: the
    API sets that one (stored apart, kept over reloads); the file's own wins (409); a user
    the file drops loses it, so a name given to someone else does not log in with it."""
    from callcenter.config.web_password import hash_web_password

    app = running.app
    status, body = api(running, "PATCH", "/api/users/1001", {"web_password": "desk-1001"})
    assert status == 200 and (body["source"], body["web_password"]) == ("file", True), body
    assert login(running, "1001", "desk-1001") == 200
    assert login(running, "1001", "agent1001") == 200  # the SIP password too
    for other in ({"name": "x"}, {"web_password": "y", "role": "supervisor"}):
        status, body = api(running, "PATCH", "/api/users/1001", other)
        assert status == 409 and "only its web_password" in body["error"], body
    running.edit('name: "Anna Nowak"', 'name: "Anna Kowalska"')  # the file's fields win
    assert running.reload()["status"] == "applied"
    assert app.cfg.user("1001").name == "Anna Kowalska"  # type: ignore[union-attr]
    assert login(running, "1001", "desk-1001") == 200
    assert api(running, "PATCH", "/api/users/1001", {"web_password": None})[0] == 200
    assert login(running, "1001", "desk-1001") == 401
    filed = hash_web_password("from-the-file")
    running.edit('role: agent, name: "Piotr Kowalski"',
                 f'role: agent, name: "Piotr Kowalski", web_password: "{filed}"')
    assert running.reload()["status"] == "applied"
    status, body = api(running, "PATCH", "/api/users/1002", {"web_password": "z"})
    assert status == 409 and "config file" in body["error"], body
    assert api(running, "PATCH", "/api/users/2001", {"web_password": "desk-2001"})[0] == 200
    line = '  - {user: "2001", password: "super2001", role: supervisor, name: "Ewa Supervisor"}\n'
    running.edit(line, "")
    assert running.reload()["status"] == "applied"
    running.edit("trunks:\n", line + "trunks:\n")
    assert running.reload()["status"] == "applied"
    assert login(running, "2001", "desk-2001") == 401 and login(running, "2001", "super2001") == 200
    assert actions(running) == [("user.changed", "user/1001")] * 2 + [
        ("user.changed", "user/2001")]
    assert "desk-1001" not in json.dumps(app.store.audit())


def test_a_queue_of_the_api_is_changed_while_callers_wait(running: Running) -> None:
    app = running.app
    engine = app.queues.engine
    assert engine is not None
    assert api(running, "POST", "/api/queues", {"name": "vip", "ring_timeout": 20})[0] == 201
    for call in ("w1", "w2"):
        engine.handle(ev.CallArrived(call, "vip"), app.queues.now())
    status, body = api(running, "PATCH", "/api/queues/vip",
                       {"strategy": "round-robin", "music": "other_music", "max_wait": 90})
    assert status == 200 and body == {"name": "vip", "ring_timeout": 20, "max_wait": 90,
                                      "strategy": "round-robin", "music": "other_music"}
    assert engine._queues["vip"].cfg.strategy == "round-robin"
    assert engine._queues["vip"].cfg.max_wait == 90
    assert engine.waiting("vip") == ["w1", "w2"]  # they keep their places
    assert app.cfg.queue("vip").music == "other_music"  # type: ignore[union-attr]
    assert api(running, "PATCH", "/api/queues/sales", {"strategy": "random"})[0] == 409
    assert api(running, "PATCH", "/api/queues/nope", {"strategy": "random"})[0] == 404
    for bad, where in [({"strategy": "dice"}, "strategy"), ({"members": ["1001"]}, "expected"),
                       ({"name": "other"}, "expected"), ({"overflow": "nowhere"}, "queues")]:
        status, answer = api(running, "PATCH", "/api/queues/vip", bad)
        assert status == 422 and answer["errors"][0].startswith(where), (bad, answer)
    assert engine._queues["vip"].cfg.strategy == "round-robin"
    assert actions(running) == [("queue.changed", "queue/vip")]


def test_a_dynamic_members_penalty_changes_in_place(running: Running) -> None:
    app = running.app
    engine = app.queues.engine
    assert engine is not None
    assert api(running, "POST", "/api/queues/support/members", {"agent": "1001"})[0] == 201
    status, body = api(running, "PATCH", "/api/queues/support/members/1001", {"penalty": 3})
    assert status == 200 and (body["penalty"], body["tier"], body["source"]) == (3, 1, "api")
    assert engine._agents["1001"].tiers["support"] == (1, 3)
    assert app.store.queue_members()[0]["penalty"] == 3
    assert api(running, "PATCH", "/api/queues/support/members/1001", {"tier": 2})[0] == 200
    assert engine._agents["1001"].tiers["support"] == (2, 3)
    assert api(running, "PATCH", "/api/queues/support/members/1003", {"penalty": 1})[0] == 409
    assert api(running, "PATCH", "/api/queues/support/members/1002", {"penalty": 1})[0] == 404
    for bad in ({"penalty": -1}, {"tier": 0}, {"agent": "1002"}, {}):
        assert api(running, "PATCH", "/api/queues/support/members/1001", bad)[0] == 400, bad
    assert actions(running) == [("member.changed", "queue/support/member/1001")] * 2


def test_pause_reasons_by_api_are_usable_at_once(running: Running) -> None:
    app = running.app
    listed = api(running, "GET", "/api/pause-reasons")[1]
    assert [(r["code"], r["name"], r["source"]) for r in listed][0] == ("1", "lunch", "file")
    with pytest.raises(ValueError):
        app.queues.pause_reason("7")
    status, body = api(running, "POST", "/api/pause-reasons", {"code": "7", "name": "coaching"})
    assert status == 201 and body["source"] == "api" and body["added_by"] == "demo admin"
    assert app.queues.pause_reason("7") == "coaching"  # *437 and the API's reason
    status, agent = api(running, "POST", "/api/agents/1003/pause", {"reason": "7"})
    assert status == 200 and agent["reason"] == "coaching"
    assert api(running, "POST", "/api/pause-reasons", {"code": "1", "name": "x"})[0] == 409
    assert api(running, "POST", "/api/pause-reasons", {"code": "8", "name": "lunch"})[0] == 409
    for bad in ({"code": "123", "name": "x"}, {"code": "8", "name": "no spaces"}, {"code": "8"}):
        assert api(running, "POST", "/api/pause-reasons", bad)[0] == 422, bad
    assert api(running, "POST", "/api/pause-reasons", bad,
               {"authorization": "Bearer demo-wallboard-token"})[0] == 403
    # a reload of the file keeps it; the file's cannot be removed here
    running.edit('password: "agent1001"', 'password: "other1001"')
    assert running.reload()["status"] == "applied" and app.queues.pause_reason("7") == "coaching"
    assert api(running, "DELETE", "/api/pause-reasons/1")[0] == 409
    assert api(running, "DELETE", "/api/pause-reasons/7")[0] == 200
    assert api(running, "DELETE", "/api/pause-reasons/7")[0] == 404
    with pytest.raises(ValueError):
        app.queues.pause_reason("7")
    assert [r["action"] for r in app.store.audit() if "pause" in r["action"]] == [
        "pause_reason.added", "pause_reason.removed"]


def test_the_files_pause_reasons_reload_live(running: Running) -> None:
    running.edit('"4": meeting}', '"4": meeting, "5": coaching}')
    result = running.reload()
    assert result["changed"] == ["pause_reasons"] and result["restart_required"] == []
    assert running.app.queues.pause_reason("5") == "coaching"


def test_changes_by_api_survive_a_restart(tmp_path: Path) -> None:
    first = Running(tmp_path)
    try:
        assert api(first, "POST", "/api/users", NEW)[0] == 201
        assert api(first, "PATCH", "/api/users/1005", {"skills": {"polish": 5},
                                                      "web_password": "desk"})[0] == 200
        assert api(first, "POST", "/api/queues", {"name": "vip"})[0] == 201
        assert api(first, "PATCH", "/api/queues/vip", {"wrapup": 7})[0] == 200
        assert api(first, "POST", "/api/pause-reasons", {"code": "9", "name": "cover"})[0] == 201
        assert api(first, "PATCH", "/api/users/1001", {"web_password": "desk-1001"})[0] == 200
    finally:
        first.close()
    again = Running(tmp_path)
    try:
        engine = again.app.queues.engine
        assert engine is not None and engine._agents["1005"].skills == {"polish": 5}
        assert login(again, "1005", "desk") == 200 and login(again, "1001", "desk-1001") == 200
        assert again.app.cfg.queue("vip").wrapup == 7  # type: ignore[union-attr]
        assert again.app.queues.pause_reason("9") == "cover"
        assert api(again, "GET", "/api/users", headers=ADMIN)[1][-1]["skills"] == {"polish": 5}
    finally:
        again.close()


def test_web_password_hashes_are_salted_scrypt_and_checked_in_the_file() -> None:
    from pydantic import ValidationError

    from callcenter.config.models import User
    from callcenter.config.web_password import hash_web_password, web_password_matches

    one, two = hash_web_password("same"), hash_web_password("same")
    assert one != two and one.startswith("scrypt:16384:8:1:")  # a random salt each time
    assert web_password_matches(one, "same") and not web_password_matches(one, "Same")
    assert not web_password_matches("scrypt:3:8:1:" + one.split(":", 4)[4], "same")  # N
    assert User(user="1", password="p", role="agent", web_password=one).web_password == one
    with pytest.raises(ValidationError, match="web_password"):
        User(user="1", password="p", role="agent", web_password="plain text")
