"""The agent's side of a callback, live (issue 13).

Queue ``sales`` (agent 1001), trunk ``pstn`` to the simulated carrier. 1001's first phone
answers a callback and hangs up during the whisper ("callback, <queue>, <number>"): the
customer is not dialled and the request waits again (the phone then unregisters). Two more are booked, the first moved by
``PATCH`` (keeping its place: its ``entered``). 1001's second phone then takes all three in
place order; each customer leg has its CDR (source ``callback:sales``, agent, queue).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.carrier import Carrier
from tests.helpers.phones import answering_phone, register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp, wait_until
from tests.integration.demo import USERS
from tests.integration.test_dialer_preview import sales_and_trunk

FIRST, MOVED, LAST = "+48600600001", "+48600600002", "+48600600003"


def test_a_callback_left_in_the_whisper_is_worked_later_with_its_cdr(artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    config = sales_and_trunk(carrier_port)
    config["queues"][0].update(members=["1001"], callback={"retries": 0}, retry=1)
    with Carrier(carrier_port, {}.get, max_call=1) as carrier, ExitStack() as stack:
        srv = stack.enter_context(ServerProcess(artifacts, overrides=config))
        block = ports.allocate(8)
        register(srv, "1001", block, artifacts / "reg_short")
        with Sipp("uas_agent.xml", workdir=artifacts / "short", ports=block, calls=1,
                  timeout=60, duration_ms=800, extra=["-aa"]) as short:
            status, first = http(srv, "POST", "/api/callbacks", {"queue": "sales",
                                                                "number": FIRST})
            assert status == 201, first
            assert short.wait(40).returncode == 0, srv.log_tail()
        gone = run_sipp("uac_register_auth.xml", workdir=artifacts / "unreg", ports=block,
                        remote_port=srv.sip_port, service="1001", auth=("1001", USERS["1001"]),
                        timeout=15, keys={"contact_port": str(block[0]), "expires": "0"})
        assert gone.returncode == 0, gone.summary()
        time.sleep(1.5)
        assert carrier.snapshot() == [], "dialled although the agent left in the whisper"
        status, moved = http(srv, "POST", "/api/callbacks", {"queue": "sales", "number": MOVED})
        time.sleep(1.1)
        status, last = http(srv, "POST", "/api/callbacks", {"queue": "sales", "number": LAST})
        status, patched = http(srv, "PATCH", f"/api/callbacks/{moved['id']}",
                               {"at": time.time() + 1})
        assert (status, patched["entered"]) == (200, moved["entered"]), patched
        time.sleep(1.5)
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        done = "SELECT id FROM callbacks WHERE status = 'done'"
        assert wait_until(lambda: len(rows(srv.db_path, done)) == 3, 90, 0.5), \
            srv.log_tail() + str(rows(srv.db_path, "SELECT * FROM callbacks"))
        cdr = ("SELECT called, direction, agent, queue, answer FROM calls "
               "WHERE source = 'callback:sales' AND \"end\" IS NOT NULL ORDER BY start")
        assert wait_until(lambda: len(rows(srv.db_path, cdr)) == 3, 20, 0.5)
        cdrs = rows(srv.db_path, cdr)
        offer = http(srv, "GET", "/api/agents/1001/offer")[1]  # the screen pop of the last
    assert (offer["caller"], offer["queue"], offer["why"]) == (
        LAST, "sales", {"kind": "callback", "callback_id": last["id"]}), offer
    assert [i["number"] for i in carrier.snapshot()] == [FIRST, MOVED, LAST]
    assert [(c["called"], c["direction"], c["agent"], c["queue"]) for c in cdrs] == [
        (n, "outbound", "1001", "sales") for n in (FIRST, MOVED, LAST)], cdrs
    assert all(c["answer"] for c in cdrs), cdrs
