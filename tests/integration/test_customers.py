"""One customer, live (issue 16): a SIPp caller calls the demo hotline twice, first as
``0048221234599``, then as ``+48221234599``, and presses 2 (support) both times.

The first call creates the customer and reaches agent 1003 through the support queue; the
second call's IVR sees ``customer.known`` and, because the customer called within 24 h, rings
the agent they spoke to (the demo's ``support_last_agent``) before the queue. The API finds the
customer by a third format of the number and its timeline holds both calls, newest first.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import pcap, ports
from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, run_sipp, wait_until
from tests.integration.demo import DTMF_PT, LINE_TOLLFREE

AGENT = "1003"
FORMATS = ("0048221234599", "+48221234599")
OPEN = "2026-11-23T10:00"  # a Monday inside business hours
KEY_AT_MS, HANGUP_AT_MS = 1500, 20000  # the key during the welcome; BYE during the survey


def _caller(workdir: Path, number: str) -> Path:
    """uac_ivr.xml calling from ``number``: 2 during the welcome, BYE 20 s after the ACK."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = pcap.digits_to_pcap("2", workdir / "key2.pcap", pt=DTMF_PT)
    steps = (f'  <pause milliseconds="{KEY_AT_MS}"/>\n'
             f'  <nop><action><exec play_pcap_audio="{key}"/></action></nop>\n'
             f'  <pause milliseconds="{HANGUP_AT_MS - KEY_AT_MS}"/>')
    text = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    out = workdir / "uac_customer.xml"
    out.write_text(text.replace("<!-- STEPS -->", steps).replace("48221234567", number),
                   encoding="iso-8859-1")
    return out


def _call(server: ServerProcess, workdir: Path, number: str) -> dict[str, Any]:
    """One call from ``number``; its CDR once the server has closed it."""
    before = {r["id"] for r in rows(server.db_path, "SELECT id FROM calls")}
    result = run_sipp(str(_caller(workdir, number)), workdir=workdir, ports=ports.allocate(8),
                      remote_port=server.sip_port, service=LINE_TOLLFREE, timeout=60,
                      keys={"codec_pt": "0", "codec_name": "PCMU"})
    assert result.returncode == 0, result.summary() + server.log_tail()

    def ended() -> list[dict[str, Any]]:
        return [r for r in rows(server.db_path, 'SELECT * FROM calls WHERE "end" IS NOT NULL')
                if r["id"] not in before]

    assert wait_until(ended, 20), server.log_tail()
    return ended()[0]


def _events(server: ServerProcess, call_id: str, type: str) -> list[str]:
    return [r["data"] for r in rows(server.db_path, "SELECT data FROM call_events WHERE "
                                    "call_id = ? AND type = ? ORDER BY id", call_id, type)]


def test_two_formats_of_one_number_are_one_customer_who_gets_their_agent_back(
        artifacts: Path) -> None:
    require_binary("sipp")
    queue = {"ring_timeout": 10, "wrapup": 0, "announce_every": None, "whisper": False}
    queues = [{"name": "sales", "members": ["1001"], **queue},
              {"name": "support", "members": [AGENT], **queue}]
    server = ServerProcess(artifacts, extra_args=["--clock", OPEN], overrides={"queues": queues})
    with server, ExitStack() as stack:
        answering_phone(server, AGENT, artifacts / "agent", stack, talk_ms=2000, calls=2)
        assert wait_until(lambda: any(a["id"] == AGENT and a["state"] == "available"
                                      for a in http(server, "GET", "/api/agents")[1]), 20)
        stream = HTTPConnection("127.0.0.1", server.http_port, timeout=10)
        stream.request("GET", "/api/events/stream?types=agent.offer&token=demo-wallboard-token")
        live = stream.getresponse()
        assert live.status == 200
        first = _call(server, artifacts / "call1", FORMATS[0])
        second = _call(server, artifacts / "call2", FORMATS[1])

        assert [r["caller"] for r in (first, second)] == list(FORMATS)
        nodes = [[e.split('"node": "')[1].split('"')[0] for e in _events(server, c["id"],
                                                                         "ivr_node")]
                 for c in (first, second)]
        assert "support_queue" in nodes[0] and "support_returning" not in nodes[0], nodes
        assert "support_last_agent" in nodes[1] and "support_queue" not in nodes[1], nodes
        assert [_events(server, c["id"], "ivr_customer") for c in (first, second)] == [
            ['{"known": false, "name": ""}'], ['{"known": true, "name": ""}']]

        status, found = http(server, "GET", "/api/customers?number=22%20123%2045%2099")
        assert status == 200 and len(found) == 1, found
        assert found[0]["numbers"] == ["+48221234599"]
        status, timeline = http(server, "GET", f"/api/customers/{found[0]['id']}/timeline")
        assert status == 200
        items = timeline["items"]
        assert [(i["kind"], i["call_id"]) for i in items] == [
            ("call", second["id"]), ("call", first["id"])], items
        assert items[1]["queue"] == "support" and items[1]["agent"] == AGENT
        assert items[0]["queue"] is None and "support_last_agent" in items[0]["ivr_path"]
        assert [i["agents"] for i in items] == [[AGENT], [AGENT]]
        assert rows(server.db_path, "SELECT count(*) AS n FROM customers")[0]["n"] == 1

        # the screen pops: the first call by the queue, the second ringing the agent directly
        lines = [live.fp.readline().decode().strip() for _ in range(8)]  # retry, connected
        stream.close()
        assert lines[3] == lines[6] == "event: agent.offer", lines
        offer = json.loads(lines[4].removeprefix("data: "))
        again = json.loads(lines[7].removeprefix("data: "))
        assert (again["call_id"], again["agent"], again["queue"], again["customer"]["known"]) == (
            second["id"], AGENT, "", True)
        assert [i["call_id"] for i in again["recent"]] == [second["id"], first["id"]]
        assert (offer["call_id"], offer["agent"], offer["queue"], offer["caller"]) == (
            first["id"], AGENT, "support", FORMATS[0])
        assert offer["customer"]["id"] == found[0]["id"] and not offer["customer"]["known"]
        this = offer["recent"][0]
        assert this["call_id"] == first["id"] and this["ivr_choices"] == [
            {"node": "main_menu", "key": "2"}], this
