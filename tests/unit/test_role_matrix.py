"""Roles of the API: every route of the OpenAPI document with every role (issue 15).

Tokens: the config's admin and read tokens, and logins of supervisor 2001 (limited to the
support queue: agents 1003 and 1004) and agent 1003 (in sales and support; vip is 1001's
only). Every route answers each role as the table says (401/403 never where allowed, 403
where the role may not use it), objects out of a user's scope answer 404, and lists carry
only what is in scope."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from callcenter.calls.call import Call, Leg
from callcenter.cli import load_setup
from callcenter.events import bus
from callcenter.events.bus import (
    AgentOffer,
    AgentStateChanged,
    CallStarted,
    QueueEntered,
    SupervisorStep,
)
from callcenter.store.records import CallRecord
from callcenter.web.auth import Principal
from callcenter.web.http import HttpRequest
from callcenter.web.roles import own_campaigns
from tests.unit.test_openapi import OPERATIONS, SPEC, Harness

ADMIN, READ = "demo-admin-token", "demo-wallboard-token"
SUPERVISOR, AGENT = ("2001", "super2001"), ("1003", "agent1003")
#: what users may use (the rest answers them 403); admin everything, read every GET
USER_ROUTES = {("GET", "/api/agents"), ("GET", "/api/agents/{id}"),
               ("POST", "/api/agents/{id}/{command}"), ("GET", "/api/queues"),
               ("GET", "/api/queues/{name}"), ("GET", "/api/callbacks"),
               ("GET", "/api/pause-reasons")}
AGENT_ROUTES = USER_ROUTES | {
    ("GET", "/api/calls"), ("GET", "/api/calls/{id}"),
    ("POST", "/api/campaigns/{name}/dispositions"), ("POST", "/api/campaigns/{name}/preview"),
    ("POST", "/api/campaigns/{name}/preview/{contact}/{action}"),
    ("GET", "/api/agents/{id}/offer"), ("GET", "/api/calls/{id}/offer"),
    ("GET", "/api/customers/{id}"), ("GET", "/api/customers/{id}/timeline"),
    ("POST", "/api/customers/{id}/notes"), ("GET", "/api/events/stream"),
    ("POST", "/api/calls/{id}/transfer"), ("POST", "/api/callbacks"),
    ("GET", "/api/stats/agents"), ("GET", "/api/campaigns"),
    ("PATCH", "/api/callbacks/{id}"), ("DELETE", "/api/callbacks/{id}")}
SUPERVISOR_ROUTES = USER_ROUTES | {
    ("GET", "/api/agents/{id}/offer"), ("GET", "/api/calls/{id}/offer"),
    ("GET", "/api/supervisor/sessions"), ("POST", "/api/supervisor/sessions"),
    ("GET", "/api/supervisor/sessions/{id}"), ("PATCH", "/api/supervisor/sessions/{id}"),
    ("DELETE", "/api/supervisor/sessions/{id}"), ("GET", "/api/stats/intervals"),
    ("GET", "/api/events/stream"), ("GET", "/api/cdr.csv"), ("GET", "/api/stats/agents"),
    ("PATCH", "/api/callbacks/{id}"), ("DELETE", "/api/callbacks/{id}")}
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
QUERY = {"/api/cdr.csv": {"from": ["2026-11-23"]}, "/api/stats/intervals": {"queue": ["support"]},
         "/api/queue-log": {"from": ["2026-11-23"]}}
BODY = {"/api/supervisor/sessions": {"supervisor": "2001", "agent": "1003", "mode": "nosuch"},
        "/api/campaigns/{name}/dispositions": {"attempt": 1, "code": "1"},
        "/api/campaigns/{name}/preview": {"agent": "1003"},
        "/api/campaigns/{name}/preview/{contact}/{action}": {"agent": "1003"},
        "/api/login": {"user": "1004", "password": "agent1004"},
        "/api/callbacks": {"queue": "support", "number": "+48221234567", "at": 4102444800}}


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
                 "/desk/call/c1", "/desk/supervisor", "/desk/supervisor.js"):
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


def test_a_supervisor_gets_the_events_and_cdrs_of_its_queues_only(roles: Roles) -> None:
    app, sup = roles.app, roles.login(*SUPERVISOR)
    for cid, queue in (("q-support", "support"), ("q-sales", "sales")):
        app.store.start_call(CallRecord(id=cid, sip_call_id=f"{cid}@y", direction="inbound",
                                        caller="48221234567", called="0800123456",
                                        source="trunk:pstn", start=1.7e9))
        app.store.update_call(cid, queue=queue)
    day = {"from": ["2023-11-14"]}
    for token, ids in ((sup, {"q-support"}), (ADMIN, {"q-support", "q-sales"})):
        resp = roles.request("GET", "/api/cdr.csv", {**day, "token": [token]}, {})
        assert resp.status == 200
        assert {line.split(",")[0] for line in resp.body.decode().splitlines()[1:]} == ids

    loop = roles.loop
    req = HttpRequest("GET", "/api/events/stream", {"token": [sup]}, {}, b"")
    resp = loop.run_until_complete(app.http._dispatch(req))
    assert resp.status == 200 and resp.stream is not None
    assert loop.run_until_complete(resp.stream.__anext__()).startswith(b"retry:")
    for event in (bus.QueueEntered(call_id="a", queue="sales"),
                  bus.AgentStateChanged(agent="1001", old="idle", new="paused"),
                  bus.AuditChanged(ts=1.0, who="x", action="a", object="o", detail={}),
                  bus.QueueEntered(call_id="b", queue="support"),
                  bus.AgentStateChanged(agent="1003", old="idle", new="paused")):
        app.events.stream(event)
    got = [loop.run_until_complete(asyncio.wait_for(resp.stream.__anext__(), 5))
           for _ in range(2)]
    loop.run_until_complete(resp.stream.aclose())
    assert [json.loads(chunk.split(b"data: ")[1])["type"] for chunk in got] == [
        "queue.enter", "agent.state"]
    assert b'"support"' in got[0] and b'"1003"' in got[1]
    assert app.events.stream.clients == set()


def test_the_queue_log_by_api_is_the_clis(roles: Roles) -> None:
    from callcenter.report import queue_log
    from callcenter.report.stats import LocalTime

    app = roles.app
    app.store.log_queue(ts=1.7e9 + 10, queue="support", call_id="q-support", event="enter",
                        position=1)
    t0, t1 = LocalTime.zone(app.cfg.timezone).day_range(date(2023, 11, 14), date(2023, 11, 14))
    status = roles.request("GET", "/api/queue-log", {"from": ["2023-11-14"]},
                           {"authorization": f"Bearer {READ}"})
    assert status.status == 200 and status.content_type.startswith("text/plain")
    text = status.body.decode()
    assert text == queue_log.export(app.store.path, t0, t1, app.cfg.queues)
    assert "|q-support|support|NONE|ENTERQUEUE|" in text
    assert roles.request("GET", "/api/queue-log", {"from": ["2023-11-14"]},
                         {"authorization": f"Bearer {roles.login(*SUPERVISOR)}"}).status == 403


def test_an_agent_desk_uses_its_own_events_callbacks_and_figures(roles: Roles) -> None:
    """The desk's routes: the event stream carries only events naming the agent; callbacks
    are booked in its queues only; transfers only of a live call it is on; its figures."""
    agent = roles.login(*AGENT)
    resp = roles.loop.run_until_complete(roles.app.http._dispatch(HttpRequest(
        "GET", "/api/events/stream", {"token": [agent]}, {}, b"")))
    assert resp.stream is not None
    roles.loop.run_until_complete(resp.stream.__anext__())  # retry:, connected
    for who in ("1004", "1003"):
        roles.app.events.publish(AgentStateChanged(agent=who, old="available", new="paused"))
    roles.app.events.publish(SupervisorStep(call_id="c9", step="supervisor_joined",
                                            session="s1", supervisor="2001", agent="1003",
                                            mode="listen"))
    roles.app.events.publish(AgentOffer(call_id="c9", agent="1004", queue="", caller="+48"))
    roles.app.events.publish(AgentOffer(call_id="c9", agent="1003", queue="", caller="+48"))
    got = [roles.loop.run_until_complete(asyncio.wait_for(resp.stream.__anext__(), 5))
           for _ in range(2)]
    roles.loop.run_until_complete(resp.stream.aclose())
    assert [json.loads(c.partition(b"data: ")[2])["agent"] for c in got] == ["1003", "1003"]
    assert [c.split(b"\n")[0] for c in got] == [b"event: agent.state", b"event: agent.offer"]
    assert roles.app.events.stream.clients == set()  # closing the page closes the hub's queue
    booking = {"queue": "vip", "number": "+48221234567"}
    assert roles.call("POST", "/api/callbacks", agent, booking)[0] == 403
    status, row = roles.call("POST", "/api/callbacks", agent, {**booking, "queue": "sales"})
    assert status == 201 and row["queue"] == "sales", row
    assert roles.call("POST", "/api/calls/c1/transfer", agent, {"to": "1004"})[0] == 404
    assert {"code": "1", "name": "lunch"}.items() <= roles.call(
        "GET", "/api/pause-reasons", agent)[1][0].items()
    status, figures = roles.call("GET", "/api/stats/agents", agent)
    assert status == 200 and {a["agent"] for a in figures["agents"]} <= {"1003"}, figures
    campaigns = roles.call("GET", "/api/campaigns", agent)[1]
    assert [(c["name"], c["dispositions"]["1"]) for c in campaigns] == [("telesales", "sale")]


def test_an_agent_sees_the_campaigns_of_its_queues_and_its_own_calls_in_them() -> None:
    class Scope:
        def queues(self, p: Principal) -> set[str]:
            return {"sales"}

    data = [{"name": "a", "queue": "sales", "calls": [{"agent": "1003"}, {"agent": "1004"}],
             "callbacks": [{"owner": "1004"}, {"owner": "1003"}]},
            {"name": "b", "queue": "vip", "calls": [], "callbacks": []}]
    req = HttpRequest("GET", "/api/campaigns", {}, {}, b"")
    only = own_campaigns().check(Principal("agent", "user 1003", "1003"), req, Scope())
    assert callable(only)
    assert only(data) == [{"name": "a", "queue": "sales", "calls": [{"agent": "1003"}],
                           "callbacks": [{"owner": "1003"}]}]


def test_an_agent_transfers_the_queue_caller_bridged_to_its_leg(
        roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue's caller is on a call of its own, bridged to the agent's leg of another (or
    on hold while the agent consults): the agent may see and transfer that call; another
    agent may not."""
    caller = Call(caller="+48221234567", called="0800", source="trunk:pstn",
                  direction="inbound")
    caller.legs.append(Leg(call=caller, direction="inbound", peer=("127.0.0.1", 5060),
                           transport="udp", party="+48221234567"))
    agent_call = Call(caller="+48221234567", called="1003", source="queue:support",
                      direction="outbound")
    agent_leg = Leg(call=agent_call, direction="outbound", peer=("127.0.0.1", 5062),
                    transport="udp", party="1003")
    monkeypatch.setitem(roles.app.b2bua.calls, caller.id, caller)
    monkeypatch.setattr(roles.app.b2bua, "partner",
                        lambda leg: agent_leg if leg is caller.legs[0] else None)
    mine, other = roles.login(*AGENT), roles.login("1004", "agent1004")
    path, body = f"/api/calls/{caller.id}/transfer", {"action": "complete"}
    assert [c["id"] for c in roles.call("GET", "/api/calls", mine)[1]["live"]] == [caller.id]
    assert roles.call("POST", path, mine, body)[0] == 409  # in scope: no consultation yet
    assert roles.call("GET", "/api/calls", other)[1]["live"] == []
    assert roles.call("POST", path, other, body)[0] == 404
    # consulting (its own leg now bridged to the target's), the agent still acts on the call
    monkeypatch.setattr(roles.app.b2bua, "partner", lambda leg: None)
    assert roles.call("POST", path, mine, body)[0] == 404
    monkeypatch.setitem(roles.app.transfers.consultants, caller.id, "1003")
    assert roles.call("POST", path, mine, body)[0] == 409
    assert roles.call("POST", path, other, body)[0] == 404


def test_a_supervisors_event_stream_carries_only_its_queues_and_agents(roles: Roles) -> None:
    """2001 supervises support (agents 1003, 1004): events of sales, of 1001, and of calls
    that name neither never reach its stream; the admin's stream has them all."""
    app, loop = roles.app, roles.loop

    def stream(token: str) -> Any:
        req = HttpRequest("GET", "/api/events/stream", {"token": [token]}, {}, b"")
        resp = loop.run_until_complete(app.http._dispatch(req))
        assert resp.status == 200 and resp.stream is not None
        assert loop.run_until_complete(resp.stream.__anext__()).startswith(b"retry:")
        return resp.stream

    mine, everything = stream(roles.login(*SUPERVISOR)), stream(ADMIN)
    events = [AgentStateChanged(agent="1001", old="available", new="paused"),
              QueueEntered(call_id="x1", queue="sales"),
              CallStarted(call_id="x2", caller="1", called="2", source="s", direction="inbound"),
              AgentOffer(call_id="x3", agent="1003", queue="sales", caller="+4822"),
              AgentStateChanged(agent="1003", old="available", new="ringing"),
              QueueEntered(call_id="x4", queue="support"),
              AgentOffer(call_id="x4", agent="1004", queue="support", caller="+4822")]
    for event in events:
        app.events.publish(event)

    def read(source: Any, n: int) -> list[str]:
        chunks = [loop.run_until_complete(source.__anext__()) for _ in range(n)]
        return [json.loads(c.partition(b"data: ")[2])["call_id" if b'"call_id"' in c
                                                       else "agent"] for c in chunks]
    assert read(everything, len(events)) == ["1001", "x1", "x2", "x3", "1003", "x4", "x4"]
    assert read(mine, 3) == ["1003", "x4", "x4"]
    loop.run_until_complete(mine.aclose())
    loop.run_until_complete(everything.aclose())
    assert not app.events.stream.clients  # both streams left the hub


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


def test_users_move_and_cancel_the_callbacks_in_their_scope(roles: Roles) -> None:
    """A supervisor moves and cancels the callbacks of its queues; an agent those it booked
    or took; others answer 404, a finished one 409. An agent lists just its own."""
    sup, agent = roles.login(*SUPERVISOR), roles.login(*AGENT)
    later = {"number": "+48221234567", "at": 4102444800}

    def book(queue: str, token: str = ADMIN) -> int:
        status, row = roles.call("POST", "/api/callbacks", token, {**later, "queue": queue})
        assert status == 201, row
        return int(row["id"])

    sales, support, mine, taken = book("sales"), book("support"), book("sales", agent), \
        book("sales")
    roles.app.callbacks.store.update(taken, agent="1003")  # 1003 took it; a retry is due
    assert roles.app.callbacks.store.get(mine)["booked_by"] == "1003"  # type: ignore[index]
    move = {"at": 4102448400}
    for token, out, ours in ((sup, sales, support), (agent, support, mine)):
        assert roles.call("PATCH", f"/api/callbacks/{out}", token, move)[0] == 404
        assert roles.call("DELETE", f"/api/callbacks/{out}", token)[0] == 404
        assert roles.call("DELETE", "/api/callbacks/99999", token)[0] == 404
        status, row = roles.call("PATCH", f"/api/callbacks/{ours}", token, move)
        assert (status, row["next_at"]) == (200, 4102448400), row
        status, row = roles.call("DELETE", f"/api/callbacks/{ours}", token)
        assert (status, row["status"]) == (200, "cancelled"), row
        assert roles.call("DELETE", f"/api/callbacks/{ours}", token)[0] == 409
    assert roles.call("PATCH", f"/api/callbacks/{taken}", agent, move)[0] == 200
    listed = {r["id"] for r in roles.call("GET", "/api/callbacks", agent)[1]}
    assert listed & {sales, support, mine, taken} == {mine, taken}
    assert all(r["booked_by"] == "1003" or r["agent"] == "1003"
               for r in roles.call("GET", "/api/callbacks", agent)[1])
    assert roles.app.callbacks.store.get(sales)["status"] == "open"  # type: ignore[index]
