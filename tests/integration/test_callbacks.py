"""Callback requests worked by the server, live (issue 13).

Queue ``sales`` (SIPp agent 1001), trunk ``pstn`` to the simulated carrier. Four requests are
stored while no agent is registered: one the way the IVR's key 8 books it, two the way the
queue's callback key keeps a caller's place (entered 60 s and 10 s ago), one to a busy number.
The server restarts; 1001 registers. Each request rings 1001 first, then its customer is
dialled on the carrier and bridged, in the order of the callers' places; the busy one fails
after its retries; every attempt is on record.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from callcenter.store.db import Store
from callcenter.store.ivr import IvrStore
from ivr.engine import CallbackRequest
from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.pcap import digits_to_pcap
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp, wait_until
from tests.integration.test_dial_out import with_plan
from tests.integration.test_dialer import rows
from tests.integration.test_dialer_preview import sales_and_trunk

KEY8, EARLY, LATE, BUSY = "+48600400001", "+48600400002", "+48600400003", "+48600400004"


def test_booked_callbacks_ring_the_agent_then_the_customer_in_place_order(
        artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    config = sales_and_trunk(carrier_port)
    config["queues"][0].update(members=["1001"], callback={"retries": 1, "retry_delay": 1})
    with Carrier(carrier_port, {BUSY: "busy"}.get, max_call=2) as carrier, ExitStack() as stack:
        first = ServerProcess(artifacts, overrides=config)
        with first:
            store = Store(first.db_path)
            asyncio_run_booking(store)
            book = IvrStore(store, artifacts / "vm").callbacks.book
            now = time.time()
            book(queue="sales", number=LATE, entered=now - 10)
            book(queue="sales", number=EARLY, entered=now - 60)
            book(queue="sales", number=BUSY, entered=now)
            store.close()
            time.sleep(1.5)  # the worker sees them; no agent: nothing is dialled
            assert carrier.snapshot() == []
        srv = ServerProcess(artifacts, overrides=config)  # a restart, on the same database
        stack.enter_context(srv)
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        done = "SELECT number, status, attempts, outcome, agent FROM callbacks ORDER BY id"
        assert wait_until(lambda: all(r["status"] in ("done", "failed")
                                      for r in rows(srv.db_path, done)), 90, 0.5), \
            srv.log_tail()
        invites = carrier.snapshot()
        got = {r["number"]: r for r in rows(srv.db_path, done)}
    assert [i["number"] for i in invites] == [EARLY, LATE, KEY8, BUSY, BUSY], invites
    for number in (EARLY, LATE, KEY8):
        assert (got[number]["status"], got[number]["outcome"], got[number]["agent"]) == \
            ("done", "answered", "1001"), got
    assert (got[BUSY]["status"], got[BUSY]["attempts"], got[BUSY]["outcome"]) == \
        ("failed", 2, "busy"), got
    log = rows(srv.db_path, "SELECT event FROM queue_log WHERE event LIKE 'callback_%'")
    assert sorted(r["event"] for r in log).count("callback_attempt") == 5, log


def asyncio_run_booking(store: Store) -> None:
    """Book as the IVR's callback node does (key 8, the caller's own number)."""

    request = CallbackRequest(call_id="ivr-call", caller=KEY8, number=KEY8, queue="sales",
                              language="pl", requested_at=datetime.now().astimezone())
    asyncio.run(IvrStore(store, Path("/nonexistent")).create_callback(request))


KEY_PLAN = """lines:
  - {number: "0800999000", accept: [pstn], flow: wait}
nodes:
  wait: {type: queue, queue: sales}
"""


def test_callers_pressing_the_queue_key_are_called_back_in_place_order(artifacts: Path) -> None:
    """Two trunk callers wait in ``sales`` with no agent and press its callback key (RFC 4733);
    a request booked afterwards with an earlier place goes first; then 1001 registers: each
    request rings 1001, then its customer on the carrier, in place order."""
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    config = with_plan(artifacts, carrier_port, KEY_PLAN)
    config["queues"][0].update(members=["1001"], callback_key="1",
                               callback={"retries": 0, "ring_timeout": 10})
    with Carrier(carrier_port, max_call=2) as carrier, ExitStack() as stack, \
            ServerProcess(artifacts, overrides=config) as srv:
        callers = run_sipp(
            "uac_queue_key.xml", workdir=artifacts / "callers", ports=ports.allocate(8),
            remote_port=srv.sip_port, service="0800999000", calls=2, duration_ms=2000,
            timeout=30, extra=["-r", "1"],
            keys={"dtmf_pcap": str(digits_to_pcap("1", artifacts / "key1.pcap"))})
        assert callers.returncode == 0, callers.summary() + srv.log_tail()
        store = Store(srv.db_path)
        IvrStore(store, artifacts / "vm").callbacks.book(
            queue="sales", number=EARLY, entered=time.time() - 60)
        store.close()
        assert len(rows(srv.db_path, "SELECT id FROM callbacks")) == 3
        time.sleep(1.0)  # the worker sees them; no agent: nothing is dialled
        assert carrier.snapshot() == []  # no agent yet: nobody is dialled
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        done = "SELECT number, status, outcome, agent FROM callbacks ORDER BY id"
        assert wait_until(lambda: all(r["status"] in ("done", "failed")
                                      for r in rows(srv.db_path, done)), 60, 0.5), \
            srv.log_tail()
        got = rows(srv.db_path, done)
    keyed = [r["number"] for r in got if r["number"] != EARLY]
    assert len(keyed) == 2 and all(n.endswith(("0001", "0002")) for n in keyed), got
    assert [i["number"] for i in carrier.snapshot()] == [EARLY, *keyed], carrier.snapshot()
    assert [(r["status"], r["outcome"], r["agent"]) for r in got] == \
        [("done", "answered", "1001")] * 3, got
