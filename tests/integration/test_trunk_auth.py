"""Calling out through a carrier that demands digest on INVITE: Kamailio on loopback.

Kamailio (tests/fixtures/kamailio/carrier.cfg) answers a call from the trunk 407 and relays
it, once authenticated, to the "phone network" (the simulated carrier). A booked callback
makes the server dial: agent 1001 first, then the customer through Kamailio with the trunk's
``auth``. With a wrong password the customer is never reached and the attempt fails on the
407 (one answer per challenge: two INVITEs, not a loop).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

from callcenter.store.db import Store
from callcenter.store.ivr import IvrStore
from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.kamailio import Kamailio
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dialer import rows
from tests.integration.test_dialer_preview import sales_and_trunk

CUSTOMER = "+48600500001"
DONE = "SELECT number, status, attempts, outcome FROM callbacks ORDER BY id"


def run_callback(artifacts: Path, password: str) -> tuple[list[dict[str, object]], list[str],
                                                          str]:
    """Book one callback with the trunk's password ``password``; its row, the numbers the
    phone network was called with, and Kamailio's log."""
    require_binary("sipp")
    require_binary("kamailio")
    pstn_port = ports.allocate(2).base
    carrier = Kamailio(artifacts / "kamailio", subscribers={"acme": "s3cret"},
                       trunk_user="acme", pstn_port=pstn_port)
    config = sales_and_trunk(carrier.port)
    config["trunks"][0]["auth"] = {"user": "acme", "password": password}
    config["queues"][0].update(members=["1001"], callback={"retries": 0})
    with carrier, Carrier(pstn_port, max_call=2) as network, ExitStack() as stack:
        srv = stack.enter_context(ServerProcess(artifacts / "server", overrides=config))
        store = Store(srv.db_path)
        IvrStore(store, artifacts / "vm").callbacks.book(
            queue="sales", number=CUSTOMER, entered=time.time())
        store.close()
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        assert wait_until(lambda: all(r["status"] in ("done", "failed")
                                      for r in rows(srv.db_path, DONE)), 60, 0.5), \
            srv.log_tail()
        return rows(srv.db_path, DONE), [i["number"] for i in network.snapshot()], \
            carrier.log_text()


def test_an_outbound_call_answers_the_carriers_407(artifacts: Path) -> None:
    got, called, log = run_callback(artifacts, "s3cret")
    assert called == [CUSTOMER], log[-3000:]
    assert [(r["status"], r["outcome"]) for r in got] == [("done", "answered")], got


def test_a_wrong_password_fails_after_one_answer(artifacts: Path) -> None:
    got, called, log = run_callback(artifacts, "wrong")
    assert called == [], called
    assert [r["status"] for r in got] == ["failed"], got
