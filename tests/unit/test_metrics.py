"""/metrics through prometheus_client: the live figures under their names, the histograms fed
by queue and agent events and by the stack's transactions."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from callcenter.events import bus
from callcenter.sip.message import make_response, serialize
from callcenter.sip.stack import ServerRequest
from tests.conftest import require_binary
from tests.helpers.artifacts import REPO
from tests.unit.test_openapi import Harness
from tests.unit.test_stack import PEER, invite, make_stack


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_histograms_and_live_figures(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    publish = h.app.events.publish
    publish(bus.QueueLeft(call_id="c1", queue="sales", reason="abandon", wait=12.5))
    publish(bus.QueueLeft(call_id="c2", queue="sales", reason="complete", wait=None))
    publish(bus.AgentStateChanged(agent="1001", old="available", new="ringing", ts=100.0))
    publish(bus.AgentStateChanged(agent="1001", old="ringing", new="on_call", ts=103.0))
    publish(bus.AgentStateChanged(agent="1001", old="on_call", new="wrap_up", ts=160.0))
    h.app.api.metrics.sip_transaction_done("BYE", "timeout", 32.0)
    assert h.app.queues.agent_command("1001", "pause", "lunch")
    resp = h.request("GET", "/metrics", {}, {})
    assert resp.status == 200 and resp.content_type.startswith("text/plain; version=0.0.4")
    got = samples(resp.body.decode())
    wait = (("outcome", "abandon"), ("queue", "sales"))
    assert got[("callcenter_queue_wait_seconds_count", wait)] == 1
    assert got[("callcenter_queue_wait_seconds_sum", wait)] == 12.5
    assert got[("callcenter_queue_wait_seconds_bucket", (("le", "10.0"), *wait))] == 0
    assert got[("callcenter_queue_wait_seconds_bucket", (("le", "20.0"), *wait))] == 1
    ring = (("outcome", "on_call"),)
    assert got[("callcenter_agent_ring_seconds_sum", ring)] == 3.0  # not the talk after it
    assert got[("callcenter_agent_ring_seconds_count", ring)] == 1
    sip = (("method", "BYE"), ("outcome", "timeout"))
    assert got[("callcenter_sip_transaction_seconds_count", sip)] == 1
    assert got[("callcenter_acd_decision_seconds_count", (("event", "AgentPaused"),))] == 1
    assert got[("callcenter_queue_agents", (("queue", "sales"), ("state", "available")))] == 3
    assert got[("callcenter_queue_agents", (("queue", "sales"), ("state", "paused")))] == 1
    for name in ("callcenter_calls_in_progress", "callcenter_calls_total",
                 "callcenter_sip_messages_received_total", "callcenter_rtp_ticks_total",
                 "callcenter_rtp_srtp_failed_total", "callcenter_rtp_srtp_plain_total",
                 "process_cpu_seconds_total"):
        assert (name, ()) in got, name


def test_the_stack_reports_each_request_it_sent_with_its_outcome() -> None:
    async def run() -> list[tuple[str, str, float]]:
        stack, _ = make_stack()
        seen: list[tuple[str, str, float]] = []
        stack.on_transaction = lambda *args: seen.append(args)
        req = invite("z9hG4bKmetrics")
        _, fut = stack.send_request(req, PEER, "udp")
        stack._on_message(serialize(make_response(req, 100)), PEER, "udp")
        stack._on_message(serialize(make_response(req, 486, to_tag="t1")), PEER, "udp")
        await fut
        await stack.close()
        return seen

    seen = asyncio.run(run())
    assert [(m, o) for m, o, _ in seen] == [("INVITE", "4xx")] and seen[0][2] >= 0


def _request(method: str, branch: str) -> bytes:
    return serialize(invite(branch)).replace(b"INVITE", method.encode())


def test_the_stack_reports_how_long_our_handlers_took_to_answer(tmp_path: Path) -> None:
    """Server transactions: an INVITE to our first response (not the layer's 100 Trying), any
    other request to its final one (a handler's bug: the stack's 500); on a clock of ours."""
    clock, held = [100.0], dict[str, ServerRequest]()

    async def handler(sreq: ServerRequest) -> None:
        if sreq.request.method == "INVITE":
            held["invite"] = sreq  # answered later, as a call is
        elif sreq.request.method == "OPTIONS":
            raise RuntimeError("a bug")
        else:
            clock[0] += 0.125
            sreq.respond(100)  # not final: not yet
            sreq.respond(200)

    async def run() -> list[tuple[str, str, float]]:
        stack, sent = make_stack(handler)
        stack.now = lambda: clock[0]  # type: ignore[method-assign]
        seen: list[tuple[str, str, float]] = []
        stack.on_server_transaction = lambda *args: seen.append(args)
        stack._on_message(_request("INVITE", "z9hG4bKsrv1"), PEER, "udp")
        stack._on_message(_request("BYE", "z9hG4bKsrv2"), PEER, "udp")
        stack._on_message(_request("OPTIONS", "z9hG4bKsrv3"), PEER, "udp")
        for _ in range(3):  # the handlers' tasks, then the failed one's answer
            await asyncio.sleep(0)
        assert sent[0].startswith(b"SIP/2.0 100")  # the layer's own, at once
        clock[0] += 0.25
        held["invite"].respond(180, to_tag="t1")
        clock[0] += 1.0
        held["invite"].respond(200, to_tag="t1")  # only the first counts
        await stack.close()
        return seen

    seen = asyncio.run(run())
    assert sorted(seen) == [("BYE", "2xx", 0.125), ("INVITE", "1xx", 0.375),
                            ("OPTIONS", "5xx", 0.125)]  # the BYE's handler moved the clock
    h = Harness(tmp_path)
    for method, outcome, seconds in (*seen, ("FOO", "4xx", 0.001)):
        h.app.stack.on_server_transaction(method, outcome, seconds)  # type: ignore[misc]
    got = samples(h.request("GET", "/metrics", {}, {}).body.decode())
    h.close()
    name = "callcenter_sip_server_transaction_seconds"
    assert got[(f"{name}_sum", (("method", "INVITE"), ("outcome", "1xx")))] == 0.375
    assert got[(f"{name}_bucket", (("le", "0.25"), ("method", "INVITE"), ("outcome", "1xx")))] == 0
    assert got[(f"{name}_bucket", (("le", "0.5"), ("method", "INVITE"), ("outcome", "1xx")))] == 1
    assert got[(f"{name}_count", (("method", "other"), ("outcome", "4xx")))] == 1  # FOO


def test_grafana_dashboard_queries_parse_and_name_real_metrics(tmp_path: Path) -> None:
    """Every query of deploy/grafana-dashboard.json is valid PromQL (promtool, as a recording
    rule) and every series it names is one /metrics serves."""
    promtool = require_binary("promtool")
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text("utf-8"))
    exprs = [t["expr"].replace("$queue", ".*") for p in dashboard["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    text = Harness(tmp_path).request("GET", "/metrics", {}, {}).body.decode()
    served = {name for name, _ in samples(text)} | set(re.findall(r"^# TYPE (\S+)", text, re.M))
    named = set(re.findall(r"\b(?:callcenter|process)_[a-z_]+", " ".join(exprs)))
    histograms = {n for n in named if n.endswith(("_bucket", "_count"))}  # none observed yet
    assert named - histograms <= served, named - histograms - served
    assert {n.rsplit("_", 1)[0] for n in histograms} <= {
        "callcenter_queue_wait_seconds", "callcenter_agent_ring_seconds",
        "callcenter_sip_transaction_seconds", "callcenter_sip_server_transaction_seconds",
        "callcenter_acd_decision_seconds"}
