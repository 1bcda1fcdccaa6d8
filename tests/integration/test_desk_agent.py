"""The agent's desk driven in headless Chromium (issue 16): sign in, state, transfer,
callback, preview, consult and conference, each through the page.

Agent 1003 (support's only member; 1004 is in sales only) opens ``/desk`` with no token and
signs in through the form with its SIP password. It pauses for "training" and goes ready
again from the page, logs out of support (its only queue: logged out) and in again: the
server's state follows each click. A SIPp caller from ``+48221234577`` dials a line straight
into support; 1003's SIPp phone rings 12 s: the page shows the card (by the agent-scoped
event stream) while the server says ringing. The phone answers; the page's call buttons
appear; the agent types 1004 and presses Transfer: 1004's SIPp phone gets the call and the
call's events say it was transferred to user 1004. After the call the agent sets the
disposition and books a callback two days on at 10:30 with a note: the request is in
``/api/callbacks`` for the caller's number at that time, the note in the customer's timeline,
which the page shows with the disposition; today's figures show the call. Signing out shows
the form again. Screenshots of each step go to ``tests/artifacts/<test>/``.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http
from tests.helpers.browser import Page
from tests.helpers.carrier import Carrier
from tests.helpers.phones import answering_phone, register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, wait_until
from tests.integration.test_desk import _caller, desk_server
from tests.integration.test_dialer import CLOCK, cli
from tests.integration.test_dialer_preview import overrides
from tests.integration.test_wallboard import FLAGS

AGENT, TARGET, NUMBER, LINE = "1003", "1004", "+48221234577", "0800000062"
SUPPORT_LINE = f"""
lines:
  - {{number: "{LINE}", accept: [pstn], language: pl, flow: support}}
nodes:
  support:
    type: queue
    queue: support
"""


def _ringing_phone(workdir: Path, ring_ms: int = 12000) -> str:
    """uas_answer.xml without audio that rings ``ring_ms`` before it answers, then waits for
    BYE."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (SCENARIOS / "uas_answer.xml").read_text(encoding="iso-8859-1")
    start = text.index("  <nop>")
    text = text[:start] + text[text.index("</nop>", start) + len("</nop>"):]
    out = workdir / "uas_ringing.xml"
    out.write_text(text.replace('<send retrans="500">', f'<pause milliseconds="{ring_ms}"/>\n'
                                '  <send retrans="500">', 1), encoding="iso-8859-1")
    return str(out)


class Desk:
    """The page, driven by its elements' ids."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page, self.artifacts = page, artifacts

    def js(self, expr: str) -> Any:
        return self.page.eval(expr)

    def text(self, id: str) -> str:
        return str(self.js(f"document.getElementById({id!r})?.textContent ?? ''"))

    def shown(self, id: str) -> bool:
        return bool(self.js(f"document.getElementById({id!r})?.hidden === false"))

    def set(self, id: str, value: str) -> None:
        self.js(f"document.getElementById({id!r}).value = {json.dumps(value)}; 1")

    def click(self, id: str) -> None:
        self.js(f"document.getElementById({id!r}).click(); 1")

    def submit(self, form: str) -> None:
        self.js(f"document.getElementById({form!r}).requestSubmit(); 1")

    def state(self) -> str:
        return str(self.js("document.getElementById('state')?.dataset.state ?? ''"))

    def shot(self, name: str) -> None:
        self.page.screenshot(self.artifacts / name)

    def sign_in(self, user: str, password: str) -> None:
        assert wait_until(lambda: self.shown("login-form"), 30)
        self.set("login-user", user)
        self.set("login-password", password)
        self.submit("login-form")


def test_agent_signs_in_changes_state_transfers_and_books_a_callback(artifacts: Path) -> None:
    server = desk_server(artifacts, SUPPORT_LINE, TARGET, AGENT)
    keys = {"codec_pt": "0", "codec_name": "PCMU"}
    later = (date.today() + timedelta(days=2)).isoformat()

    def agent() -> dict[str, Any]:
        return dict(http(server, "GET", f"/api/agents/{AGENT}")[1])

    with server, ExitStack() as stack:
        block = ports.allocate(8)
        register(server, AGENT, block, artifacts / "register")
        stack.enter_context(Sipp(_ringing_phone(artifacts / "phone"), workdir=artifacts / "phone",
                                 ports=block, timeout=180, extra=["-aa"]))
        answering_phone(server, TARGET, artifacts, stack, talk_ms=60000, calls=1,
                                 timeout=180)
        assert wait_until(lambda: agent()["state"] == "available", 20), agent()

        page = stack.enter_context(Page(f"http://127.0.0.1:{server.http_port}/desk",
                                        artifacts, FLAGS))
        desk = Desk(page, artifacts)
        desk.sign_in(AGENT, "wrong")
        assert wait_until(lambda: desk.text("login-error"), 15)
        refused = desk.text("login-error")
        desk.set("login-password", f"agent{AGENT}")
        desk.shot("desk-signin.png")
        desk.submit("login-form")
        assert wait_until(lambda: desk.state() == "available", 30), desk.text("error")
        stored = desk.js("sessionStorage.getItem('callcenter.desk')")
        assert wait_until(lambda: "live" in str(desk.js(
            "document.getElementById('link').className")), 30)

        desk.set("pause-reason", "2")
        desk.click("pause")
        assert wait_until(lambda: agent()["state"] == "paused", 15), agent()
        paused = agent()
        assert wait_until(lambda: desk.state() == "paused", 15)
        page_reason = desk.text("reason")
        desk.shot("desk-paused.png")
        desk.click("ready")
        assert wait_until(lambda: agent()["state"] == "available", 15), agent()
        desk.js("document.querySelector('#queues li[data-queue=support] button').click(); 1")
        assert wait_until(lambda: agent()["state"] == "logged_out", 15), agent()
        out_of_support = agent()["queues"]
        assert wait_until(lambda: desk.state() == "logged_out", 15)
        desk.click("ready")  # logged out: ready logs in to every queue
        assert wait_until(lambda: agent()["state"] == "available", 15), agent()
        back_in = agent()["queues"]

        steps = '  <pause milliseconds="90000"/>'
        caller = stack.enter_context(Sipp(
            str(_caller(artifacts / "call", steps, NUMBER)), workdir=artifacts / "call",
            ports=ports.allocate(8), remote_port=server.sip_port, service=LINE,
            keys=keys, timeout=120))
        assert wait_until(lambda: desk.shown("card") and desk.state() == "ringing", 30), (
            desk.text("error"), server.log_tail())
        ringing = agent()["state"]
        card = {f: desk.js(f"document.querySelector('[data-field={f}]').textContent")
                for f in ("caller", "queue", "known", "why")}
        desk.shot("desk-ringing.png")

        assert wait_until(lambda: desk.shown("call-controls"), 40), desk.state()
        call_id = str(desk.js("document.body.dataset.call"))
        desk.set("transfer-to", TARGET)
        desk.shot("desk-on-call.png")
        desk.click("blind")
        assert wait_until(lambda: desk.text("call-said"), 15)
        said = desk.text("call-said")
        assert wait_until(lambda: any(
            e["type"] == "transferred" for e in http(server, "GET", f"/api/calls/{call_id}")[1][
                "events"]), 30), (said, server.log_tail()[-3000:])
        events = http(server, "GET", f"/api/calls/{call_id}")[1]["events"]
        assert wait_until(lambda: any(leg["party"] == TARGET and leg["state"] == "answered"
                                      for c in http(server, "GET", "/api/calls")[1]["live"]
                                      for leg in c["legs"]), 30), server.log_tail()
        assert wait_until(lambda: desk.state() not in ("on_call", "ringing"), 30), desk.state()
        desk.shot("desk-transferred.png")

        desk.set("code", "1")
        desk.submit("disposition-form")
        assert wait_until(lambda: desk.text("saved"), 15)
        disposition = desk.text("saved")
        desk.set("callback-at", f"{later}T10:30")
        desk.set("callback-note", "Wants a call about the invoice")
        desk.submit("callback-form")
        assert wait_until(lambda: desk.text("saved").startswith("callback"), 15)
        booked = desk.text("saved")
        assert wait_until(lambda: desk.text("fig-calls") == "1", 30), desk.text("fig-calls")
        contacts = desk.text("contacts")
        desk.shot("desk-callback.png")
        callbacks = http(server, "GET", "/api/callbacks?queue=support")[1]
        customer = http(server, "GET", f"/api/calls/{call_id}/offer")[1]["customer"]
        timeline = http(server, "GET", f"/api/customers/{customer['id']}/timeline")[1]["items"]

        desk.click("logout")
        assert wait_until(lambda: desk.shown("login-form"), 15)
        after = desk.js("sessionStorage.getItem('callcenter.desk')")
        caller.stop()

    assert refused == "wrong user or password"
    assert stored and json.loads(stored)["user"] == AGENT and "token=" not in stored
    assert (paused["state"], paused["reason"], page_reason) == ("paused", "training", "training")
    assert (out_of_support, back_in) == ([], ["support"])
    assert ringing == "ringing"  # the card was on the page before the phone answered
    assert card == {"caller": NUMBER, "queue": "support", "known": "new customer",
                    "why": "queue"}, card
    assert said == f"transferring to {TARGET}"
    transfer = [json.dumps(e) for e in events if e["type"] == "transferred"]
    assert len(transfer) == 1 and f'"user:{TARGET}"' in transfer[0], transfer
    assert disposition == "disposition: Solved"
    assert [(c["number"], c["status"], c["at"][:16], c["booked_by"]) for c in callbacks] == [
        (NUMBER, "open", f"{later}T10:30", AGENT)], callbacks  # the desk's login booked it
    assert booked.startswith(f"callback booked: {later}T10:30"), booked
    assert any(i["kind"] == "note" and i.get("text", "").endswith(
        ": Wants a call about the invoice") for i in timeline), timeline
    assert "Solved" in contacts and "Wants a call about the invoice" in contacts, contacts
    assert after is None
    for shot in ("desk-signin.png", "desk-paused.png", "desk-ringing.png", "desk-on-call.png",
                 "desk-transferred.png", "desk-callback.png"):
        assert (artifacts / shot).stat().st_size > 10_000, shot


def test_agent_previews_a_contact_calls_it_and_codes_the_call(artifacts: Path) -> None:
    """Campaign ``preview`` (preview mode, queue sales) runs; 1001 signs in, the desk shows
    the campaign, **Next contact** holds one (its name and fields on the page), **Call** rings
    1001's SIPp phone, then the contact at the simulated carrier: the card says why (preview,
    the contact's fields). After the call the agent codes it 1 (the campaign's sale) in the
    page: the contact's disposition; today's figures count the call. Screenshots
    ``desk-preview*.png``."""
    require_binary("sipp")
    require_binary("chromium")
    number = "+48600100002"
    carrier_port = ports.allocate(2).base
    (artifacts / "preview.csv").write_text(f"number;name;produkt\n{number};Klient 2;oferta 2\n",
                                           encoding="utf-8")
    with Carrier(carrier_port, lambda n: "human") as carrier, ExitStack() as stack:
        server = ServerProcess(artifacts, overrides=overrides(carrier_port), extra_args=CLOCK)
        config, db = server.write_config(), server.db_path
        done = cli("import", str(artifacts / "preview.csv"), "--campaign", "preview",
                   "--config", str(config), "--db", str(db))
        assert done.returncode == 0, done.stderr
        stack.enter_context(server)
        # the person is known already (say, from an inbound call), by the national number
        status, known = http(server, "POST", "/api/customers",
                             {"name": "Klient 2", "numbers": ["0048 600 100 002"]})
        assert status == 201, known
        answering_phone(server, "1001", artifacts, stack, talk_ms=4000, calls=1)
        assert http(server, "POST", "/api/campaigns/preview/start")[0] == 200
        page = stack.enter_context(Page(f"http://127.0.0.1:{server.http_port}/desk",
                                        artifacts, FLAGS))
        desk = Desk(page, artifacts)
        desk.sign_in("1001", "agent1001")
        assert wait_until(lambda: desk.shown("preview"), 30), desk.text("error")
        desk.set("preview-campaign", "preview")
        desk.click("preview-next")
        assert wait_until(lambda: desk.shown("preview-contact"), 15), desk.text("preview-said")
        held = (desk.text("preview-name"), desk.text("preview-number"),
                desk.text("preview-fields"))
        desk.shot("desk-preview.png")
        desk.click("preview-dial")
        assert wait_until(lambda: desk.shown("card") and desk.js(
            "document.querySelector('[data-field=why]').textContent") == "preview · preview",
            30), (desk.text("preview-said"), server.log_tail())
        card = (desk.js("document.querySelector('[data-field=name]').textContent"),
                desk.js("document.querySelector('[data-field=contact_fields]').textContent"))
        desk.shot("desk-preview-call.png")
        assert wait_until(lambda: [a["state"] for a in http(
            server, "GET", "/api/campaigns/preview/attempts")[1]] == ["done"], 40), (
            server.log_tail())
        desk.set("code", "1")
        desk.submit("disposition-form")
        assert wait_until(lambda: desk.text("saved"), 15)
        said = desk.text("saved")
        assert wait_until(lambda: desk.text("fig-calls") == "1", 15), desk.text("fig-calls")
        desk.shot("desk-preview-coded.png")
        contact = http(server, "GET", "/api/campaigns/preview/contacts")[1][0]
        dialled = [i["number"] for i in carrier.snapshot()]
        same = http(server, "GET", f"/api/customers?number={number}")[1]
        timeline = http(server, "GET", f"/api/customers/{known['id']}/timeline")[1]

    # the dialer's call is the same customer's: one record, the campaign call in its timeline
    assert [c["id"] for c in same] == [known["id"]], same
    assert any(i["kind"] == "campaign" for i in timeline["items"]), timeline

    assert held == ("Klient 2", number, "produktoferta 2"), held
    assert card == ("Klient 2", "produkt: oferta 2"), card
    assert dialled == [number]
    assert said == "disposition: sale", said
    assert contact["disposition"] == "sale", contact


def test_agent_consults_and_makes_a_conference_from_the_page(artifacts: Path) -> None:
    """1003 takes a support call (its SIPp phone answers after 2 s), types 1004 and presses
    Consult: 1004's SIPp phone answers while the caller waits; then Conference: the call's
    ``transferred`` event says conference, 1004 still on the call.
    Screenshots ``desk-consult.png``, ``desk-conference.png``."""
    server = desk_server(artifacts, SUPPORT_LINE, TARGET, AGENT)
    keys = {"codec_pt": "0", "codec_name": "PCMU"}
    with server, ExitStack() as stack:
        block = ports.allocate(8)
        register(server, AGENT, block, artifacts / "register")
        stack.enter_context(Sipp(_ringing_phone(artifacts / "phone", 2000),
                                 workdir=artifacts / "phone", ports=block, timeout=180,
                                 extra=["-aa"]))
        answering_phone(server, TARGET, artifacts, stack, talk_ms=60000, calls=1, timeout=180)
        assert wait_until(lambda: http(server, "GET", f"/api/agents/{AGENT}")[1]["state"]
                          == "available", 20)
        page = stack.enter_context(Page(f"http://127.0.0.1:{server.http_port}/desk",
                                        artifacts, FLAGS))
        desk = Desk(page, artifacts)
        desk.sign_in(AGENT, f"agent{AGENT}")
        assert wait_until(lambda: desk.state() == "available", 30), desk.text("error")
        caller = stack.enter_context(Sipp(
            str(_caller(artifacts / "call", '  <pause milliseconds="90000"/>', NUMBER)),
            workdir=artifacts / "call", ports=ports.allocate(8), remote_port=server.sip_port,
            service=LINE, keys=keys, timeout=120))
        assert wait_until(lambda: desk.shown("call-controls"), 40), server.log_tail()
        call_id = str(desk.js("document.body.dataset.call"))

        def on_call(party: str) -> bool:
            return any(leg["party"] == party and leg["state"] == "answered"
                       for c in http(server, "GET", "/api/calls")[1]["live"]
                       for leg in c["legs"])

        desk.set("transfer-to", TARGET)
        desk.click("attended")
        assert wait_until(lambda: desk.shown("consult"), 15), desk.text("call-said")
        consulting = desk.text("call-said")
        assert wait_until(lambda: on_call(TARGET), 30), server.log_tail()
        desk.shot("desk-consult.png")
        desk.click("conference")
        assert wait_until(lambda: desk.text("call-said") != consulting, 15)
        said = desk.text("call-said")
        assert wait_until(lambda: any(e["type"] == "transferred" for e in http(
            server, "GET", f"/api/calls/{call_id}")[1]["events"]), 30), server.log_tail()
        events = http(server, "GET", f"/api/calls/{call_id}")[1]["events"]
        target_on = on_call(TARGET)
        desk.shot("desk-conference.png")
        caller.stop()

    assert consulting == f"consulting {TARGET}"
    assert said == "conference"
    transfer = [json.dumps(e) for e in events if e["type"] == "transferred"]
    assert len(transfer) == 1 and '"conference"' in transfer[0], transfer
    assert target_on
