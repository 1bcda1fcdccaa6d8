"""The HTTP API on the running server: health without a token, bearer tokens elsewhere."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import require_binary
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until

ADMIN = "demo-admin-token"
READ = "demo-wallboard-token"


def get(server: ServerProcess, path: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            status = resp.status
            ctype = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        body, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body.decode()


def test_health_needs_no_token(server: ServerProcess) -> None:
    status, body = get(server, "/api/health")
    assert status == 200
    assert body["status"] == "ok" and body["calls_in_progress"] == 0


def test_api_rejects_missing_and_unknown_tokens(server: ServerProcess) -> None:
    status, body = get(server, "/api/calls")
    assert status == 401 and "bearer" in body["error"].lower()
    status, _ = get(server, "/api/calls", "not-a-token-of-ours")
    assert status == 401
    status, body = get(server, "/api/calls", READ)
    assert status == 200 and body["live"] == [] and isinstance(body["history"], list)
    status, _ = get(server, "/api/calls", ADMIN)
    assert status == 200


def test_unknown_call_and_route(server: ServerProcess) -> None:
    assert get(server, "/api/calls/nope", READ)[0] == 404
    assert get(server, "/api/nothing-here", READ)[0] == 404


def metrics(server: ServerProcess) -> dict[str, str]:
    status, text = get(server, "/metrics")
    assert status == 200
    return dict(
        line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_metrics_are_prometheus_text(server: ServerProcess) -> None:
    values = metrics(server)
    assert float(values["callcenter_calls_in_progress"]) == 0
    assert float(values["callcenter_sip_messages_received_total"]) >= 1  # the readiness OPTIONS
    # the media clock runs: its first tick may come after the server is ready, so wait for it
    assert wait_until(lambda: float(metrics(server)["callcenter_rtp_ticks_total"]) > 0, 10), (
        metrics(server)["callcenter_rtp_ticks_total"]
    )
    assert float(values["callcenter_calls_per_second"]) == 0.0
    assert float(values["callcenter_event_loop_lag_seconds"]) >= 0.0
    assert float(values["callcenter_gc_seconds_total"]) > 0  # start-up's collection, timed
    assert float(values["callcenter_gc_pause_max_seconds"]) > 0
    assert float(values['callcenter_queue_waiting{queue="sales"}']) == 0
    assert 'callcenter_queue_offered_total{queue="support"}' in values
    assert float(values['callcenter_queue_agents{queue="sales",state="logged_out"}']) == 0
    assert float(values["process_resident_memory_bytes"]) > 0


def test_metrics_pass_promtool(server: ServerProcess) -> None:
    """Debian's prometheus package checks the exposition (format and naming lints)."""
    promtool = require_binary("promtool")
    _, text = get(server, "/metrics")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def post(server: ServerProcess, path: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{path}", data=b"{}", method="POST"
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_dialplan_show_validate_reload(server: ServerProcess) -> None:
    status, body = get(server, "/api/dialplans", READ)
    assert status == 200 and "0800123456" in body["lines"] and body["errors"] == []
    status, body = post(server, "/api/dialplans/validate", READ)
    assert status == 200 and body["valid"] is True and "0801123456" in body["lines"]
    assert post(server, "/api/dialplans/reload", READ)[0] == 403  # reading is not enough
    assert post(server, "/api/dialplans/reload")[0] == 401
    status, body = post(server, "/api/dialplans/reload", ADMIN)
    assert status == 200 and body["reloaded"] is False  # nothing changed on disk
