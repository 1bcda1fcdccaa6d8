"""A REFER to an unknown target leaves the call as it was (issue 13's proof): SIPp (user 1001)
calls baresip 1002, sends REFER to 9999, gets 202, NOTIFY 100 and NOTIFY 404, and 3 s later
hangs up itself; the server never hangs up either side meanwhile and records no transfer. A
REFER from a caller of the IVR (bridged to nobody) gets 403.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import rows
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp
from tests.integration.demo import USERS
from tests.integration.test_supervisor import CALLER_HZ, agent, closed


def test_refer_to_unknown_target_keeps_the_call(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("baresip")
    require_binary("sox")
    tone = audio.make_tone_wav(artifacts / "tone.wav", (CALLER_HZ,), 30.0)
    srv = ServerProcess(artifacts).start()
    phone = agent(artifacts, "1002", tone, srv)
    try:
        with phone:
            phone.ctrl.wait_registered()
            block = ports.allocate(8)
            register(srv, "1001", block, artifacts / "reg_1001")

            def refer(service: str, target: str) -> str:
                """1001 calls ``service`` and REFERs it to ``target``: SIPp's messages."""
                run = run_sipp("uac_refer_stays.xml", workdir=artifacts / service, ports=block,
                               remote_port=srv.sip_port, service=service, timeout=40,
                               auth=("1001", USERS["1001"]),
                               keys={"user": "1001", "target": target})
                assert run.returncode == 0, run.summary() + srv.log_tail()
                return run.messages

            messages = refer("1002", "9999")
            assert "SIP/2.0 404" in messages and "403 Forbidden" not in messages
            assert closed(phone, 10)
            assert len(phone.ctrl.seen("CALL_CLOSED")) == 1
            messages = refer("0800123457", "1002")  # the IVR's caller is bridged to nobody
            assert "SIP/2.0 403" in messages and "NOTIFY" not in messages
    finally:
        srv.stop()
    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["called"] == "1002")
    assert cdr["hangup_side"] == "caller", cdr
    events = rows(srv.db_path, "SELECT type FROM call_events WHERE call_id = ?", cdr["id"])
    assert "transferred" not in [e["type"] for e in events], events
