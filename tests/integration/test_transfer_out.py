"""Transfer to an outside number through the trunk, by keys (``##<number>#``), with the
outbound rules of the transferring user (issue 13).

baresip 1002 (440 Hz) calls baresip agent 1001. 1001 presses ``##0700123456#``: premium rate
is refused for agents, nothing changes and the carrier never hears of it. 1001 presses
``##0221234567#``: the simulated carrier gets the number in the trunk's E.164 format from the
rule's caller ID, answers; 1001 is released; the carrier hears the caller's tone and hangs up,
which ends the caller's call; one record with the transfer to the number.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import rows
from tests.helpers.carrier import Carrier
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dialer_preview import sales_and_trunk
from tests.integration.test_supervisor import AGENT_HZ, CALLER_HZ, agent, closed
from tests.integration.test_transfer import connect


def test_keys_transfer_the_caller_to_an_outside_number(artifacts: Path) -> None:
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 30.0)
             for hz in (CALLER_HZ, AGENT_HZ)}
    carrier_port = ports.allocate(2).base
    with Carrier(carrier_port, max_call=6) as carrier, \
            ServerProcess(artifacts, overrides=sales_and_trunk(carrier_port)) as srv:
        caller = agent(artifacts, "1002", tones[CALLER_HZ], srv)
        agent_ = agent(artifacts, "1001", tones[AGENT_HZ], srv)
        with caller, agent_:
            connect(srv, caller, agent_)
            time.sleep(1.0)
            agent_.ctrl.command("sndcode ##0700123456#")
            assert wait_until(lambda: "0700123456" in srv.log_tail(), 10)
            time.sleep(1.5)
            assert not carrier.snapshot() and not caller.ctrl.seen("CALL_CLOSED")
            assert not agent_.ctrl.seen("CALL_CLOSED")  # the call stays as it was
            agent_.ctrl.command("sndcode ##0221234567#")
            assert closed(agent_, 20), "the transferor was not released" + srv.log_tail()
            assert closed(caller, 20), "the carrier's BYE did not end the caller's call"
            invites = carrier.snapshot()
            (call,) = carrier.calls.values()
            db = srv.db_path
    assert [i["number"] for i in invites] == ["+48221234567"], invites
    assert invites[0]["from"].startswith("<sip:+48800123456@"), invites
    assert call.by == "carrier" and call.voiced_seconds(after=1.0) > 1.5, call
    cdrs = [r for r in rows(db, "SELECT * FROM calls") if r["caller"] == "1002"]
    assert len(cdrs) == 1, cdrs
    events = rows(db, "SELECT type, data FROM call_events WHERE call_id = ?", cdrs[0]["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert [(m["target"], m["by"]) for m in moves] == [("number:0221234567", "dtmf")], events
