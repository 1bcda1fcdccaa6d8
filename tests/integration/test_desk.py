"""The agent's desk in headless Chromium (issue 16): the card of a ringing call before answer.

Anna Nowak is a customer (created by API, tier gold, account 123456). She calls 0800000001
(straight into sales, where nobody is registered) and gives up: her previous call. Then she
calls the line of this test with her number withheld (``anonymous``), types her account number
123456# (a collect node with ``identify: account``: the call joins her record) and waits in
support, where agent 1004's phone rings for 30 s. Meanwhile Chromium loads ``/desk?agent=1004``:
the card shows her name, a returning customer, the digits she typed and the previous call. A
screenshot goes to ``tests/artifacts/<test>/desk.png``. Then 1004 answers, talks and hangs up;
in the desk (Chromium driven over the DevTools protocol) the agent types a note and the
disposition code: both are in her timeline (``desk-wrapup.png``).
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import pcap, ports
from tests.helpers.api import ADMIN_TOKEN, http, rows
from tests.helpers.artifacts import REPO
from tests.helpers.browser import Page
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, run_sipp, wait_until
from tests.integration.demo import DTMF_PT
from tests.integration.test_wallboard import FLAGS

AGENT, NUMBER = "1004", "+48221234588"
LINE_ACCOUNT = "0800000016"
ACCOUNT_LINE = f"""
lines:
  - {{number: "{LINE_ACCOUNT}", accept: [pstn], language: pl, flow: account}}
nodes:
  account:
    type: collect
    prompts: please_hold
    variable: account
    identify: account
    max_digits: 8
    next: support
  support:
    type: queue
    queue: support
"""


class _Card(HTMLParser):
    """The text of each data-field element, and the previous contacts' lines."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.contacts: list[str] = []
        self._into: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-field"):
            self._into = a["data-field"]
            self.fields[self._into or ""] = ""
        elif tag == "li":
            self._into = "li"
            self.contacts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._into = None

    def handle_data(self, data: str) -> None:
        if self._into == "li":
            self.contacts[-1] += data
        elif self._into:
            self.fields[self._into] += data


def _caller(workdir: Path, steps: str, number: str = NUMBER) -> Path:
    """uac_ivr.xml calling from ``number`` with these steps between the ACK and the BYE."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    out = workdir / "uac_desk.xml"
    out.write_text(text.replace("<!-- STEPS -->", steps).replace("48221234567", number),
                   encoding="iso-8859-1")
    return out


def _late_phone(workdir: Path) -> str:
    """uas_agent.xml that rings 30 s before it answers (then talks -d ms and hangs up)."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (SCENARIOS / "uas_agent.xml").read_text(encoding="iso-8859-1")
    out = workdir / "uas_late.xml"
    out.write_text(text.replace('<send retrans="500">', '<pause milliseconds="30000"/>\n'
                                '  <send retrans="500">', 1), encoding="iso-8859-1")
    return str(out)


def _invite(phone: Path) -> str:
    """The first INVITE the agent's phone received (from its -trace_msg log)."""
    def first() -> str:
        text = "".join(p.read_text(errors="replace") for p in phone.glob("*_messages.log"))
        start = text.find("INVITE sip:")
        return text[start:text.find("\n\n", start)] if start >= 0 else ""
    assert wait_until(first, 15)
    return first()


def _wrap_up(server: ServerProcess, artifacts: Path) -> tuple[str, str]:
    """In the desk: a note on the customer, then the disposition code 1; what the page said
    after each."""
    url = f"http://127.0.0.1:{server.http_port}/desk?agent={AGENT}&token={ADMIN_TOKEN}"
    said = []
    with Page(url, artifacts, FLAGS) as page:
        shown = "document.getElementById('card')?.hidden === false"  # loading: no card yet
        assert wait_until(lambda: page.eval(shown), 30)
        for field, text, form in (("note", "Wants the gold plan renewed", "note-form"),
                                  ("code", "1", "disposition-form")):
            page.eval(f"document.getElementById('saved').textContent = ''; "
                      f"document.getElementById('{field}').value = {text!r}; "
                      f"document.getElementById('{form}').requestSubmit(); 1")
            assert wait_until(lambda: page.eval("document.getElementById('saved').textContent"),
                              15)
            said.append(page.eval("document.getElementById('saved').textContent"))
        page.screenshot(artifacts / "desk-wrapup.png")
    return said[0], said[1]


def desk_server(artifacts: Path, line: str, sales: str, support: str) -> ServerProcess:
    """A server with the demo's dialplans plus ``line`` (a dialplan file), sales and support
    of one agent each (support with disposition 1 Solved), rings of up to 60 s, no whisper."""
    require_binary("sipp")
    require_binary("chromium")
    dialplans = artifacts / "dialplans"
    shutil.rmtree(dialplans, ignore_errors=True)
    shutil.copytree(REPO / "dialplans", dialplans)
    (dialplans / "desk_line.yaml").write_text(line, encoding="utf-8")
    queue = {"ring_timeout": 60, "max_wait": 120, "announce_every": None, "whisper": False}
    return ServerProcess(artifacts, overrides={"dialplans": str(dialplans), "queues": [
        {"name": "sales", "members": [sales], **queue},
        {"name": "support", "members": [support], "dispositions": {"1": "Solved"}, **queue}]})


def test_desk_shows_the_card_before_answer(artifacts: Path) -> None:
    server = desk_server(artifacts, ACCOUNT_LINE, "1001", AGENT)
    keys = {"codec_pt": "0", "codec_name": "PCMU"}
    with server, ExitStack() as stack:
        status, anna = http(server, "POST", "/api/customers", {
            "name": "Anna Nowak", "numbers": [NUMBER],
            "fields": {"tier": "gold", "account": "123456"}})
        assert status == 201, anna
        first = run_sipp(str(_caller(artifacts / "call1", '  <pause milliseconds="3000"/>')),
                         workdir=artifacts / "call1", ports=ports.allocate(8), keys=keys,
                         remote_port=server.sip_port, service="0800000001", timeout=30)
        assert first.returncode == 0, first.summary()
        assert wait_until(lambda: rows(server.db_path, 'SELECT id FROM calls WHERE "end" IS '
                                       "NOT NULL"), 15)

        block = ports.allocate(8)
        register(server, AGENT, block, artifacts / "register")
        stack.enter_context(Sipp(_late_phone(artifacts / "phone"), workdir=artifacts / "phone",
                                 ports=block, timeout=120, duration_ms=3000, extra=["-aa"]))
        assert wait_until(lambda: any(a["id"] == AGENT and a["state"] == "available"
                                      for a in http(server, "GET", "/api/agents")[1]), 20)
        digits = pcap.digits_to_pcap("123456#", artifacts / "account.pcap", pt=DTMF_PT)
        steps = ('  <pause milliseconds="1000"/>\n'
                 f'  <nop><action><exec play_pcap_audio="{digits}"/></action></nop>\n'
                 '  <pause milliseconds="60000"/>')
        caller = stack.enter_context(Sipp(
            str(_caller(artifacts / "call2", steps, "anonymous")), workdir=artifacts / "call2",
            ports=ports.allocate(8), remote_port=server.sip_port, service=LINE_ACCOUNT,
            keys=keys, timeout=90))
        assert wait_until(lambda: http(server, "GET", f"/api/agents/{AGENT}/offer")[0] == 200,
                          30), server.log_tail()
        call_id = http(server, "GET", f"/api/agents/{AGENT}/offer")[1]["call_id"]
        invite = _invite(artifacts / "phone")
        page = f"http://127.0.0.1:{server.http_port}/desk/call/{call_id}"
        assert f"Call-Info: <{page}>;purpose=info" in invite, invite
        assert 'From: "Anna Nowak (support)" <sip:anonymous@' in invite, invite
        url = f"{page}?live=poll&token=demo-wallboard-token"  # the phone's link to the card
        # a DevTools page, waited on: a one-shot --dump-dom's virtual time can run out before
        # the card's requests are answered on a busy machine
        with Page(url, artifacts, FLAGS) as view:
            loaded = wait_until(lambda: view.eval("document.body?.dataset.loaded === '1'"), 30)
            dom = view.eval("document.documentElement.outerHTML")
            view.screenshot(artifacts / "desk.png")
        states = {a["id"]: a["state"] for a in http(server, "GET", "/api/agents")[1]}
        (artifacts / "desk.html").write_text(dom, encoding="utf-8")
        assert wait_until(lambda: rows(server.db_path, "SELECT 1 FROM queue_log WHERE agent = "
                                       "? AND event = 'connect'", AGENT), 60), server.log_tail()
        note, disposition = _wrap_up(server, artifacts)
        caller.stop()
        timeline = http(server, "GET", f"/api/customers/{anna['id']}/timeline")[1]["items"]
    assert states[AGENT] == "ringing"  # the card was read before the agent answered
    assert (note, disposition) == ("note added", "disposition: Solved")
    assert [(i["kind"], i["call_id"], i.get("text")) for i in timeline[:1]] == [
        ("note", call_id, "Wants the gold plan renewed")], timeline
    assert next(i for i in timeline if i["kind"] == "call" and i["call_id"] == call_id)[
        "disposition"] == "Solved", timeline
    assert loaded and 'data-loaded="1"' in dom, dom[-3000:]
    assert (artifacts / "desk.png").stat().st_size > 10_000
    card = _Card()
    card.feed(dom)
    assert (card.fields["name"], card.fields["known"], card.fields["caller"],
            card.fields["queue"], card.fields["tier"], card.fields["typed"]) == (
        "Anna Nowak", "returning customer", "anonymous", "support", "gold", "account: 123456"), (
        card.fields)
    assert len(card.contacts) == 1 and "call" in card.contacts[0] and "sales" in (
        card.contacts[0]), card.contacts
