"""The wallboard's "today" survives a restart: /api/queues and /api/agents (what the page reads)
show the calls of before the restart, loaded from the queue log in SQLite.

One SIPp caller gives up while nobody is registered (an abandon); phone 1003 registers and
answers three callers. The server stops; a new one on the same database shows the same figures
without a call. Both run on ``--clock 2026-11-23T10:00`` so the test never straddles midnight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp, wait_until

LINE_SALES = "0800000001"
PHONE = "1003"
CALLS = 3
CLOCK = ["--clock", "2026-11-23T10:00"]
OVERRIDES = {"queues": [
    {"name": "sales", "members": [PHONE], "wrapup": 0, "whisper": False, "ring_timeout": 5,
     "announce_every": None, "max_wait": 60},
    {"name": "support", "members": ["1004"]},
]}


def figures(server: ServerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    status, queues = http(server, "GET", "/api/queues")
    assert status == 200, queues
    status, agents = http(server, "GET", "/api/agents")
    assert status == 200, agents
    sales = next(q for q in queues if q["name"] == "sales")
    phone = next(a for a in agents if a["id"] == PHONE)
    keep = ("offered", "answered", "abandoned", "answered_within_sl", "service_level", "asa")
    return {k: sales[k] for k in keep}, {k: phone[k] for k in ("calls", "talk_time")}


def test_todays_figures_survive_a_restart(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=OVERRIDES, extra_args=CLOCK) as server:
        abandon = run_sipp(
            "uac_queue_abandon.xml", workdir=artifacts / "abandon", ports=ports.allocate(8),
            remote_port=server.sip_port, service=LINE_SALES, duration_ms=1500, timeout=30,
        )
        assert abandon.returncode == 0, abandon.summary()
        block = ports.allocate(8)
        register(server, PHONE, block, artifacts / "register")
        with Sipp("uas_agent.xml", workdir=artifacts / "phone", ports=block, calls=CALLS,
                  timeout=60, duration_ms=1000, extra=["-aa"]):
            callers = run_sipp(
                "uac_queue_call.xml", workdir=artifacts / "callers", ports=ports.allocate(8),
                remote_port=server.sip_port, service=LINE_SALES, calls=CALLS, timeout=60,
                extra=["-r", "10", "-l", str(CALLS)], trace_msg=False,
            )
        assert callers.returncode == 0, callers.summary() + server.log_tail()
        assert wait_until(lambda: figures(server)[1]["calls"] == CALLS, 10), figures(server)
        before = figures(server)

    assert before[0]["offered"] == CALLS + 1, before
    assert (before[0]["answered"], before[0]["abandoned"]) == (CALLS, 1), before

    with ServerProcess(artifacts, overrides=OVERRIDES, extra_args=CLOCK) as server:
        after = figures(server)
        assert server.alive()
    assert after == before
