"""The agent's desk in headless Chromium (issue 16): the card of a ringing call before answer.

Anna Nowak is a customer (created by API, tier gold, account 123456). She calls 0800000001
(straight into sales, where nobody is registered) and gives up: her previous call. Then she
calls the line of this test with her number withheld (``anonymous``), types her account number
123456# (a collect node with ``identify: account``: the call joins her record) and waits in
support, where agent 1004's phone rings and is never picked up. Meanwhile Chromium loads ``/desk?agent=1004``: the card shows
her name, a returning customer, the digits she typed and the previous call. A screenshot goes
to ``tests/artifacts/<test>/desk.png``.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import pcap, ports
from tests.helpers.api import http, rows
from tests.helpers.artifacts import REPO
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, run_sipp, wait_until
from tests.integration.demo import DTMF_PT
from tests.integration.test_wallboard import _chromium

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


def test_desk_shows_the_card_before_answer(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("chromium")
    dialplans = artifacts / "dialplans"
    shutil.rmtree(dialplans, ignore_errors=True)
    shutil.copytree(REPO / "dialplans", dialplans)
    (dialplans / "account.yaml").write_text(ACCOUNT_LINE, encoding="utf-8")
    queue = {"ring_timeout": 60, "max_wait": 120, "announce_every": None, "whisper": False}
    server = ServerProcess(artifacts, overrides={"dialplans": str(dialplans), "queues": [
        {"name": "sales", "members": ["1001"], **queue},
        {"name": "support", "members": [AGENT], **queue}]})
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
        stack.enter_context(Sipp("uas_agent_noanswer.xml", workdir=artifacts / "phone",
                                 ports=block, timeout=90, extra=["-aa"], trace_msg=False))
        assert wait_until(lambda: any(a["id"] == AGENT and a["state"] == "available"
                                      for a in http(server, "GET", "/api/agents")[1]), 20)
        digits = pcap.digits_to_pcap("123456#", artifacts / "account.pcap", pt=DTMF_PT)
        steps = ('  <pause milliseconds="1000"/>\n'
                 f'  <nop><action><exec play_pcap_audio="{digits}"/></action></nop>\n'
                 '  <pause milliseconds="40000"/>')
        caller = stack.enter_context(Sipp(
            str(_caller(artifacts / "call2", steps, "anonymous")), workdir=artifacts / "call2",
            ports=ports.allocate(8), remote_port=server.sip_port, service=LINE_ACCOUNT,
            keys=keys, timeout=60))
        assert wait_until(lambda: http(server, "GET", f"/api/agents/{AGENT}/offer")[0] == 200,
                          30), server.log_tail()
        url = f"http://127.0.0.1:{server.http_port}/desk?agent={AGENT}&live=poll" \
              "&token=demo-wallboard-token"
        dom = _chromium(url, artifacts, "--dump-dom")
        (artifacts / "desk.html").write_text(dom.stdout, encoding="utf-8")
        shot = _chromium(url, artifacts, f"--screenshot={artifacts / 'desk.png'}")
        states = {a["id"]: a["state"] for a in http(server, "GET", "/api/agents")[1]}
        caller.stop()
    assert states[AGENT] == "ringing"  # the card was read before the agent answered
    assert (artifacts / "desk.png").stat().st_size > 10_000, shot.stderr[-2000:]
    assert 'data-loaded="1"' in dom.stdout, dom.stderr[-3000:]
    card = _Card()
    card.feed(dom.stdout)
    assert (card.fields["name"], card.fields["known"], card.fields["caller"],
            card.fields["queue"], card.fields["tier"], card.fields["typed"]) == (
        "Anna Nowak", "returning customer", "anonymous", "support", "gold", "account: 123456"), (
        card.fields)
    assert len(card.contacts) == 1 and "call" in card.contacts[0] and "sales" in (
        card.contacts[0]), card.contacts
