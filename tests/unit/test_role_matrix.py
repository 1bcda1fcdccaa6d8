"""Roles of the API: every route of the OpenAPI document with every role (issue 15).

Tokens: the config's admin and read tokens, and logins of supervisor 2001 (limited to the
support queue: agents 1003 and 1004) and agent 1003 (in sales and support; vip is 1001's
only). Every route answers each role as the table says (401/403 never where allowed, 403
where the role may not use it), objects out of a user's scope answer 404, and lists carry
only what is in scope."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.calls.call import Call, Leg
from callcenter.cli import load_setup
from callcenter.store.records import CallRecord
from tests.unit.test_openapi import OPERATIONS, SPEC, Harness

ADMIN, READ = "demo-admin-token", "demo-wallboard-token"
SUPERVISOR, AGENT = ("2001", "super2001"), ("1003", "agent1003")
#: what users may use (the rest answers them 403); admin everything, read every GET
USER_ROUTES = {("GET", "/api/agents"), ("GET", "/api/agents/{id}"),
               ("POST", "/api/agents/{id}/{command}"), ("GET", "/api/queues"),
               ("GET", "/api/queues/{name}"), ("GET", "/api/callbacks")}
AGENT_ROUTES = USER_ROUTES | {
    ("GET", "/api/calls"), ("GET", "/api/calls/{id}"),
    ("POST", "/api/campaigns/{name}/dispositions"), ("POST", "/api/campaigns/{name}/preview"),
    ("POST", "/api/campaigns/{name}/preview/{contact}/{action}"),
    ("GET", "/api/agents/{id}/offer"), ("GET", "/api/calls/{id}/offer"),
    ("GET", "/api/customers/{id}"), ("GET", "/api/customers/{id}/timeline"),
    ("POST", "/api/customers/{id}/notes")}
SUPERVISOR_ROUTES = USER_ROUTES | {
    ("GET", "/api/agents/{id}/offer"), ("GET", "/api/calls/{id}/offer"),
    ("GET", "/api/supervisor/sessions"), ("POST", "/api/supervisor/sessions"),
    ("GET", "/api/supervisor/sessions/{id}"), ("PATCH", "/api/supervisor/sessions/{id}"),
    ("DELETE", "/api/supervisor/sessions/{id}"), ("GET", "/api/stats/intervals")}
#: a POST that only looks (validates the files on disk): read tokens may use it
READ_POSTS = {("POST", "/api/dialplans/validate")}
#: GETs of personal data in bulk (the GDPR export and its recordings): admin only
ADMIN_GETS = {("GET", "/api/customers/{id}/export"), ("GET", "/api/customers/{id}/files/{n}")}
#: in-scope values of path parameters, by route
VALUES = {"id": "1003", "name": "support", "command": "pause", "agent": "1003",
          "contact": "1", "action": "skip", "verb": "start"}
BY_PATH = {"/api/calls/{id}": {"id": "c1"}, "/api/calls/{id}/transfer": {"id": "c1"},
           "/api/callbacks/{id}": {"id": "1"}, "/api/supervisor/sessions/{id}": {"id": "s1"},
           "/api/campaigns/{name}/contacts": {"name": "telesales"},
           "/api/campaigns/{name}/attempts": {"name": "telesales"},
           "/api/campaigns/{name}/dispositions": {"name": "telesales"},
           "/api/campaigns/{name}/preview": {"name": "telesales"},
           "/api/campaigns/{name}/preview/{contact}/{action}": {"name": "telesales"},
           "/api/campaigns/{name}/{verb}": {"name": "telesales"}}
QUERY = {"/api/cdr.csv": {"from": ["2026-11-23"]}, "/api/stats/intervals": {"queue": ["support"]}}
BODY = {"/api/supervisor/sessions": {"supervisor": "2001", "agent": "1003", "mode": "nosuch"},
        "/api/campaigns/{name}/dispositions": {"attempt": 1, "code": "1"},
        "/api/campaigns/{name}/preview": {"agent": "1003"},
        "/api/campaigns/{name}/preview/{contact}/{action}": {"agent": "1003"},
        "/api/login": {"user": "1004", "password": "agent1004"}}


class Roles(Harness):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.app.store.start_call(CallRecord(id="c2", sip_call_id="z@y", direction="internal",
                                             caller="1001", called="1003",
                                             source="user:1001", start=1.0e9 + 5))

    def call(self, method: str, path: str, token: str | None, body: Any = None,
             query: dict[str, list[str]] | None = None) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        resp = self.request(method, path, query or {}, headers,
                            b"" if body is None else json.dumps(body).encode())
        data = json.loads(resp.body) if resp.content_type == "application/json" else None
        return resp.status, data

    def login(self, user: str, password: str) -> str:
        status, body = self.call("POST", "/api/login", None, {"user": user,
                                                                "password": password})
        assert status == 200, body
        return str(body["token"])


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any) -> Iterator[Roles]:
    h = Roles(tmp_path_factory.mktemp("roles"))
    yield h
    h.close()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """The shipped config with supervisor 2001 limited to support and a queue vip of 1001."""
    mp = pytest.MonkeyPatch()

    def setup(path: Path | None) -> Any:
        cfg, dialplan, warnings = load_setup(path)
        vip = cfg.queues[0].model_copy(update={"name": "vip", "members": [
            cfg.queues[0].members[0]]})
        sup = cfg.supervisor.model_copy(update={"queues": {"2001": ["support"]}})
        return cfg.model_copy(update={"queues": [*cfg.queues, vip], "supervisor": sup}), \
            dialplan, warnings

    mp.setattr("tests.unit.test_openapi.load_setup", setup)
    yield mp
    mp.undo()


def _concrete(path: str) -> str:
    values = {**VALUES, **BY_PATH.get(path, {})}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_login_gives_a_token_of_the_users_role_and_refuses_a_wrong_password(
        roles: Roles) -> None:
    status, body = roles.call("POST", "/api/login", None, {"user": "1001",
                                                            "password": "agent1001"})
    assert status == 200 and body["role"] == "agent" and body["expires"] > 0
    assert roles.call("GET", "/api/agents/1001", body["token"])[0] == 200
    assert roles.call("POST", "/api/login", None, {"user": "1001", "password": "nope"})[0] == 401
    assert roles.call("POST", "/api/login", None, {"user": "nobody", "password": "x"})[0] == 401
    assert roles.call("GET", "/api/agents/1001", "not-a-token")[0] == 401


def test_logins_are_throttled_like_sip(roles: Roles) -> None:
    for _ in range(5):  # sip.auth.max_failures
        assert roles.call("POST", "/api/login", None, {"user": "1002", "password": "x"})[0] == 401
    assert roles.call("POST", "/api/login", None, {"user": "1002",
                                                    "password": "agent1002"})[0] == 429


def test_every_route_with_every_role(roles: Roles) -> None:
    tokens = {"admin": ADMIN, "read": READ, "supervisor": roles.login(*SUPERVISOR),
              "agent": roles.login(*AGENT)}
    allowed = {"agent": AGENT_ROUTES, "supervisor": SUPERVISOR_ROUTES}
    ops = sorted({(m, p) for p, m, _ in OPERATIONS}, key=lambda x: x[1] == "/api/drain")
    for role in ("agent", "supervisor", "read", "admin"):
        for method, path in ops:
            op = SPEC["paths"][path][method.lower()]
            public = op.get("security", SPEC["security"]) == []
            status, body = roles.call(method, _concrete(path), tokens[role],
                                      BODY.get(path, {}) if method != "GET" else None,
                                      QUERY.get(path))
            reads = role == "read" and (
                method == "GET" and (method, path) not in ADMIN_GETS
                or (method, path) in READ_POSTS)
            if public or role == "admin" or reads or (method, path) in allowed.get(role, set()):
                assert status not in (401, 403), (role, method, path, status, body)
            else:
                assert status == 403, (role, method, path, status, body)
            assert str(status) in op["responses"] or status == 403, (role, method, path, status)


def test_nothing_out_of_scope_leaks(roles: Roles) -> None:
    sup, agent = roles.login(*SUPERVISOR), roles.login(*AGENT)
    for token, method, path in [
            (sup, "GET", "/api/queues/sales"), (sup, "GET", "/api/agents/1001"),
            (sup, "POST", "/api/agents/1001/pause"), (agent, "GET", "/api/agents/1004"),
            (agent, "POST", "/api/agents/1004/logout"), (agent, "GET", "/api/queues/vip")]:
        assert roles.call(method, path, token)[0] == 404, (method, path)
    assert [q["name"] for q in roles.call("GET", "/api/queues", sup)[1]] == ["support"]
    assert {a["id"] for a in roles.call("GET", "/api/agents", sup)[1]} == {"1003", "1004"}
    assert [a["id"] for a in roles.call("GET", "/api/agents", agent)[1]] == ["1003"]
    assert {q["name"] for q in roles.call("GET", "/api/queues", agent)[1]} == {"sales",
                                                                              "support"}
    assert roles.call("GET", "/api/stats/intervals", sup, query={"queue": ["sales"]})[0] == 403
    assert roles.call("GET", "/api/stats/intervals", sup)[0] == 403
    assert roles.call("POST", "/api/supervisor/sessions", sup,
                      {"supervisor": "2001", "agent": "1001", "mode": "listen"})[0] == 404
    assert roles.call("POST", "/api/supervisor/sessions", sup,
                      {"supervisor": "2002", "agent": "1003", "mode": "listen"})[0] == 403
    assert roles.call("GET", "/api/agents/1003", agent)[0] == 200
    calls = roles.call("GET", "/api/calls", agent)[1]
    assert [c["id"] for c in calls["history"]] == ["c2"] and calls["live"] == []
    assert roles.call("GET", "/api/calls/c2", agent)[0] == 200
    assert roles.call("GET", "/api/calls/c1", agent)[0] == 404
    assert roles.call("POST", "/api/campaigns/telesales/preview", agent, {"agent": "1004"})[0] \
        == 403
    assert roles.call("POST", "/api/campaigns/telesales/dispositions", agent,
                      {"number": "+48221234567", "code": "1"})[0] == 403


def test_the_pages_load_without_a_token(roles: Roles) -> None:
    """The wallboard and the desk are static pages (their data needs the token they are given):
    a phone's Call-Info link opens the desk without an Authorization header."""
    for path in ("/wallboard", "/wallboard/wallboard.js", "/desk", "/desk/desk.js",
                 "/desk/call/c1"):
        assert roles.call("GET", path, None)[0] == 200, path


def test_an_agent_reads_the_customers_it_talked_to_and_no_others(roles: Roles) -> None:
    app = roles.app
    anna = app.customers.create(now=1.0e9, name="Anna", numbers=["+48221234567"])
    app.customers.attach("c1", anna)
    app.store.log_queue(ts=1.0e9 + 1, queue="support", call_id="c1", event="connect",
                        agent="1003", wait=1.0)
    bob = app.customers.create(now=1.0e9, name="Bob", numbers=["+48221112233"])
    agent = roles.login(*AGENT)
    assert roles.call("GET", f"/api/customers/{anna}", agent)[0] == 200
    assert roles.call("GET", f"/api/customers/{anna}/timeline", agent)[0] == 200
    assert roles.call("POST", f"/api/customers/{anna}/notes", agent,
                      {"text": "called back"})[0] == 201
    for method, path in (("GET", f"/api/customers/{bob}"),
                         ("GET", f"/api/customers/{bob}/timeline"),
                         ("POST", f"/api/customers/{bob}/notes")):
        assert roles.call(method, path, agent, {"text": "x"} if method == "POST" else None)[
            0] == 404, path
    assert roles.call("GET", "/api/customers", agent, query={"q": ["Anna"]})[0] == 403
    # the call the agent took (its CDR names it since issue 13) is in its history
    app.store.update_call("c1", agent="1003")
    assert "c1" in [c["id"] for c in roles.call("GET", "/api/calls", agent)[1]["history"]]


def test_a_calls_card_is_for_those_who_may_see_the_call(roles: Roles) -> None:
    """``/api/calls/{id}/offer`` (the desk's ``/desk/call/ID``) answers for any call, live or
    past: an agent its own calls (on it, took it, or rung for it), a supervisor its queues'."""
    app, sup, agent = roles.app, roles.login(*SUPERVISOR), roles.login(*AGENT)
    for id, queue, took in (("s1", "support", "1004"), ("s2", "sales", "1001")):
        app.store.start_call(CallRecord(id=id, sip_call_id=id, direction="inbound",
                                        caller="600100200", called="0800123456",
                                        source="trunk:pstn", start=1.0e9 + 10))
        app.store.finish_call(id, end=1.0e9 + 70, hangup_cause="normal", hangup_side="caller",
                              sip_status=200, digits="", queue=queue, agent=took)
    assert roles.call("GET", "/api/calls/c2/offer", agent)[0] == 200  # 1001 called 1003
    assert roles.call("GET", "/api/calls/s1/offer", agent)[0] == 404  # 1004 took it
    assert roles.call("GET", "/api/calls/s1/offer", sup)[0] == 200  # support is 2001's
    assert roles.call("GET", "/api/calls/s2/offer", sup)[0] == 404
    app._offer("s2", "1003", "sales", "600100200", {"kind": "queue"})  # 1003's phone rings
    status, card = roles.call("GET", "/api/calls/s2/offer", agent)
    assert status == 200 and card["why"] == {"kind": "queue"}
    live = Call(caller="600300400", called="0800123456", source="trunk:pstn")
    live.legs.append(Leg(call=live, direction="outbound", peer=("127.0.0.1", 5062),
                         transport="udp", party="1003"))
    assert roles.call("GET", f"/api/calls/{live.id}/offer", agent)[0] == 404  # not yet a call
    app.b2bua.calls[live.id] = live
    try:
        assert roles.call("GET", f"/api/calls/{live.id}/offer", agent)[0] == 200
        assert roles.call("GET", f"/api/calls/{live.id}/offer", sup)[0] == 200  # its agent
    finally:
        del app.b2bua.calls[live.id]
