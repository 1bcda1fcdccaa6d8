"""A REFER to an unknown target leaves the call as it was (issue 13's proof): SIPp (user 1001)
calls baresip 1002, sends REFER to 9999, gets 202, NOTIFY 100 and NOTIFY 404, and 3 s later
hangs up itself; the server never hangs up either side meanwhile and records no transfer. A
REFER from a caller of the IVR (bridged to nobody) gets 403.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.api import rows
from tests.helpers.phones import closed, sipp_and_baresip
from tests.integration.test_supervisor import CALLER_HZ


def test_refer_to_unknown_target_keeps_the_call(artifacts: Path) -> None:
    with sipp_and_baresip(artifacts, "1001", "1002", CALLER_HZ) as (srv, sipp, phone):
        messages = sipp.run("uac_refer_stays.xml", artifacts / "1002", "1002",
                            target="9999").messages
        assert "SIP/2.0 404" in messages and "403 Forbidden" not in messages
        assert closed(phone, 10)
        assert len(phone.ctrl.seen("CALL_CLOSED")) == 1
        # the IVR's caller is bridged to nobody
        messages = sipp.run("uac_refer_stays.xml", artifacts / "0800123457", "0800123457",
                            target="1002").messages
        assert "SIP/2.0 403" in messages and "NOTIFY" not in messages
    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["called"] == "1002")
    assert cdr["hangup_side"] == "caller", cdr
    events = rows(srv.db_path, "SELECT type FROM call_events WHERE call_id = ?", cdr["id"])
    assert "transferred" not in [e["type"] for e in events], events
