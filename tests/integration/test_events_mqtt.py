"""Issue 7: events reach a real mosquitto, in order, and survive a broker restart.

A SIPp caller dials 0800123456 (Monday 10:00, ``--clock``), presses 1 in the welcome, goes to
queue ``sales``; the SIPp phone registered as 1001 answers, talks 2 s and hangs up; the caller
hangs up a little later (in the survey). A subscriber on ``callcenter/#`` must see on
``callcenter/calls/<id>``: call.started, call.answered, ivr.step (ivr_node welcome_free ...
ivr_choice key 1), queue.enter, queue.connect (agent 1001), queue.leave (complete),
call.ended, in that order; and retained ``callcenter/queues/sales`` and
``callcenter/agents/1001`` state. Then the broker is stopped and started again on the same
port: the server keeps answering, logs the disconnect, reconnects, and delivers what happened
meanwhile (a registration) plus the retained state again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import pcap, ports
from tests.helpers.mqtt import Message, Mosquitto, Subscriber
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp
from tests.integration.demo import DTMF_PT, LINE_TOLLFREE

CLOCK = "2026-11-23T10:00"  # Monday, business hours
AGENT = "1001"
TALK_MS = 2000
OVERRIDES = {
    "queues": [
        {"name": "sales", "members": [AGENT], "wrapup": 1, "ring_timeout": 10,
         "announce_every": None, "whisper": False},
        {"name": "support", "members": ["1002"]},
    ],
}


def _caller_scenario(workdir: Path) -> Path:
    """uac_ivr.xml: key 1 at 1.5 s (barge-in on the welcome), hang up at 14 s."""
    dtmf = pcap.digits_to_pcap("1", workdir / "dtmf_1.pcap", pt=DTMF_PT)
    steps = [
        '  <pause milliseconds="1500"/>',
        f'  <nop><action><exec play_pcap_audio="{dtmf}"/></action></nop>',
        '  <pause milliseconds="12500"/>',
    ]
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    out = workdir / "uac_ivr_events.xml"
    out.write_text(template.replace("<!-- STEPS -->", "\n".join(steps)), encoding="iso-8859-1")
    return out


def _events(messages: list[Message], topic: str) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == topic]


def _label(e: dict[str, Any]) -> str:
    if e["type"] == "ivr.step":
        d = e["data"]
        return f"ivr.step:{e['step']}:{d.get('node', '')}:{d.get('key', '')}"
    if e["type"] == "queue.connect":
        return f"queue.connect:{e['agent']}"
    if e["type"] == "queue.leave":
        return f"queue.leave:{e['reason']}"
    return str(e["type"])


def _in_order(labels: list[str], expected: list[str]) -> bool:
    it = iter(labels)
    return all(any(lab == want for lab in it) for want in expected)


def test_call_events_in_order_and_broker_restart(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("mosquitto")
    with Mosquitto(artifacts / "broker") as broker, Subscriber(broker.port) as sub:
        overrides = {**OVERRIDES, "events": {"mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}",
                                                        "client_id": "callcenter-test"}}}
        with ServerProcess(artifacts, overrides=overrides, extra_args=["--clock", CLOCK]) as srv:
            # the server connected and published the retained state of every queue and agent
            assert sub.wait_for(lambda ms: any(m.topic == "callcenter/queues/sales"
                                               for m in ms), 10), srv.log_tail()
            block = ports.allocate(8)
            register(srv, AGENT, block, artifacts / "register")
            with Sipp("uas_agent.xml", workdir=artifacts / "agent", ports=block, calls=1,
                      duration_ms=TALK_MS, timeout=60, extra=["-aa"]) as agent:
                time.sleep(0.5)
                caller = Sipp(_caller_scenario(artifacts).as_posix(),
                              workdir=artifacts / "caller", ports=ports.allocate(8),
                              remote_port=srv.sip_port, service=LINE_TOLLFREE,
                              keys={"codec_pt": "0", "codec_name": "PCMU"}, timeout=40).start()
                result = caller.wait()
                assert result.returncode == 0, result.summary() + srv.log_tail()
                agent_result = agent.wait(30)
                assert agent_result.returncode == 0, agent_result.summary()

            def call_done(ms: list[Message]) -> bool:
                return any(m.topic.startswith("callcenter/calls/")
                           and m.json()["type"] == "call.ended"
                           and m.json().get("digits") == "1" for m in ms)

            assert sub.wait_for(call_done, 15), srv.log_tail()
            msgs = sub.snapshot()
            (artifacts / "mqtt_messages.jsonl").write_text("\n".join(
                json.dumps({"topic": m.topic, "retain": m.retain, "payload": m.json()})
                for m in msgs) + "\n", encoding="utf-8")
            started = [e for e in _events(msgs, "callcenter/events")
                       if e["type"] == "call.started" and e["called"] == LINE_TOLLFREE]
            assert len(started) == 1, started
            call_id = started[0]["call_id"]
            stream = _events(msgs, f"callcenter/calls/{call_id}")
            assert all(e["schema"] == 1 and e["call_id"] == call_id for e in stream)
            labels = [_label(e) for e in stream]
            expected = [
                "call.started", "call.answered", "ivr.step:ivr_node:welcome_free:",
                "ivr.step:ivr_choice:main_menu:1", "ivr.step:ivr_node:sales:", "queue.enter",
                f"queue.connect:{AGENT}", "queue.leave:complete", "call.ended",
            ]
            assert _in_order(labels, expected), labels
            assert stream[0]["type"] in ("leg.added", "call.started")
            # the caller hung up in the survey: the IVR reports where it ended
            assert "ivr.step:ivr_end:survey:" in labels, labels
            ts = [e["ts"] for e in stream]
            assert ts == sorted(ts)
            # the same events on the all-events topic, in the same order
            everything = [e for e in _events(msgs, "callcenter/events")
                          if e.get("call_id") == call_id]
            assert [_label(e) for e in everything] == labels
            # agent state went available -> ringing -> on_call -> wrap_up -> available
            states = [e["new"] for e in _events(msgs, "callcenter/events")
                      if e["type"] == "agent.state" and e["agent"] == AGENT]
            assert _in_order(states, ["ringing", "on_call", "wrap_up", "available"]), states
            # retained state: the last sales status counts the answered call
            sales = _events(msgs, "callcenter/queues/sales")
            assert sales and sales[-1]["stats"]["answered"] == 1, sales[-1:]
            agent_status = _events(msgs, f"callcenter/agents/{AGENT}")
            assert agent_status and agent_status[-1]["status"]["calls"] == 1

            # broker restart: the server keeps working, buffers, reconnects
            before = len(sub.snapshot())
            broker.stop()
            assert srv.alive()
            deadline = time.monotonic() + 10
            while "mqtt_disconnected" not in srv.log_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "mqtt_disconnected" in srv.log_text(), srv.log_tail()
            register(srv, AGENT, ports.allocate(8), artifacts / "register_offline")  # an event
            assert srv.alive()
            broker.start()
            assert sub.wait_connected(2, 15)
            assert sub.wait_for(lambda ms: any(
                m.topic == f"callcenter/registrations/{AGENT}" for m in ms[before:]), 30), \
                srv.log_tail()
            after = sub.snapshot()[before:]
            # the retained state is sent again (this broker kept nothing: persistence false)
            assert any(m.topic == "callcenter/queues/sales" for m in after)
            assert any(m.topic == "callcenter/status" and m.json()["online"] for m in after)
            assert "mqtt_connected" in srv.log_text()
            reconnect = [json.loads(line) for line in srv.log_text().splitlines()
                         if '"mqtt_connected"' in line]
            assert reconnect[-1].get("reconnect") is True
