"""A user the IVR transferred a caller to hangs up; the caller goes on in the IVR (issue 16).

The dialplan rings user 1002 (a SIPp phone that answers and hangs up after 2 s), then plays
the caller a 10 s prompt and hangs up. The call's timeline stores when 1002 left it
(``left``), and the day's figures (``GET /api/stats/agents``) count 1002's talk to that
moment, not to the end of the call.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp

PLAN = """lines:
  - {number: "0800999001", accept: [pstn], flow: agent}
nodes:
  agent: {type: transfer, user: "1002", next: after}
  after: {type: play, prompts: [closed_hours]}
"""


def dialplan(artifacts: Path, plan: str) -> dict[str, str]:
    """The server's overrides for one dialplan file of text ``plan``."""
    plans = artifacts / "dialplans"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "plan.yaml").write_text(plan, encoding="utf-8")
    return {"dialplans": str(plans)}


def test_a_users_talk_ends_when_it_leaves_the_call(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=dialplan(artifacts, PLAN)) as server, \
            ExitStack() as stack:
        answering_phone(server, "1002", artifacts, stack, talk_ms=2000, calls=1, timeout=60)
        result = run_sipp("uac_queue_call.xml", workdir=artifacts / "caller",
                          ports=ports.allocate(8), remote_port=server.sip_port,
                          service="0800999001", timeout=60)
        assert result.returncode == 0, result.summary() + server.log_tail()
        call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        assert cdr is not None, server.log_tail()
        events = {r["type"]: r["ts"] for r in rows(
            server.db_path, "SELECT type, ts FROM call_events WHERE call_id = ? AND "
            "json_extract(data, '$.agent') = '1002'", cdr["id"])}
        today = {a["agent"]: a for a in http(server, "GET", "/api/stats/agents")[1]["agents"]}
    assert set(events) == {"connected", "left"}, events
    assert cdr["end"] - events["left"] >= 5, (cdr, events)  # the caller heard the prompt
    assert (today["1002"]["calls"], today["1002"]["talk"]) == (
        1, round(events["left"] - events["connected"], 1)), today
