"""Registering at a real carrier: Kamailio on loopback demands digest for REGISTER.

The server registers its trunk (401 answered), keeps the binding alive, registers again
after Kamailio restarts (the carrier forgot every binding), and with a wrong password logs
one clear line, counts the failure and backs off instead of looping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers.api import http
from tests.helpers.kamailio import DOMAIN, Kamailio
from tests.helpers.server import ServerProcess


def trunk_state(server: ServerProcess, name: str) -> dict[str, Any]:
    status, body = http(server, "GET", "/api/trunks")
    assert status == 200, body
    return next(t["registration"] for t in body if t["name"] == name)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_registers_at_kamailio_survives_its_restart_and_backs_off_on_a_wrong_password(
        artifacts: Path) -> None:
    require_binary("kamailio")
    carrier = Kamailio(artifacts / "kamailio", subscribers={"acme": "s3cret", "other": "x"},
                       trunk_user="acme")
    register = {"domain": DOMAIN, "expires": 10, "proxy": f"127.0.0.1:{carrier.port}"}
    trunks = [
        {"name": "pstn", "addresses": ["127.0.0.1"], "host": "127.0.0.1", "port": carrier.port},
        {"name": "carrier", "addresses": ["127.0.0.1"], "host": "127.0.0.1",
         "port": carrier.port, "register": {"user": "acme", "password": "s3cret", **register}},
        {"name": "badpass", "addresses": ["127.0.0.2"], "host": "127.0.0.1",
         "port": carrier.port, "register": {"user": "other", "password": "wrong", **register}},
    ]
    with carrier, ServerProcess(artifacts / "server", overrides={"trunks": trunks}) as server:
        wait_for(lambda: trunk_state(server, "carrier")["state"] == "registered", 15,
                 "the first registration")
        first = trunk_state(server, "carrier")
        assert first["last_status"] == 200 and 0 < first["expires_in"] <= 10, first

        carrier.restart()
        restarted_at = trunk_state(server, "carrier")["attempts"]
        wait_for(lambda: trunk_state(server, "carrier")["attempts"] > restarted_at
                 and trunk_state(server, "carrier")["last_status"] == 200, 20,
                 "a registration after the carrier restarted")

        bad = trunk_state(server, "badpass")
        metrics = server_metrics(server)
        log_lines = [json.loads(x) for x in server.log_text().splitlines() if x.startswith("{")]
    assert bad["state"] == "failed" and bad["last_status"] == 401, bad
    assert bad["auth_failures"] >= 1 and bad["next_attempt_in"] is not None, bad
    # never a tight loop: two REGISTERs (unanswered, answered) per attempt, attempts backing off
    assert bad["attempts"] <= 2 * (bad["failures"] + 1), bad
    warnings = [x for x in log_lines if x.get("event") == "trunk_register_failed"
                and x.get("trunk") == "badpass" and x.get("level") == "warning"]
    assert len(warnings) == 1, warnings
    assert 'callcenter_trunk_registered{trunk="carrier"} 1' in metrics
    assert 'callcenter_trunk_register_auth_failures_total{trunk="badpass"}' in metrics


def server_metrics(server: ServerProcess) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as r:
        return r.read().decode()
