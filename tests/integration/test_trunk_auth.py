"""Calling out through a carrier that demands digest on INVITE: Kamailio on loopback.

Kamailio (tests/fixtures/kamailio/carrier.cfg) answers a call from the trunk 407 and relays
it, once authenticated, to the "phone network" (the simulated carrier). A booked callback
makes the server dial: agent 1001 first, then the customer through Kamailio with the trunk's
``auth``. With a wrong password the customer is never reached and the attempt fails on the
407 (one answer per challenge: two INVITEs, not a loop). Agent 1001's own call to a national
number and a campaign's call go the same way; a number Kamailio refuses 503 (its +48609
range) fails over to a second trunk.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from callcenter.store.db import Store
from callcenter.store.ivr import IvrStore
from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.kamailio import Kamailio
from tests.helpers.phones import answering_phone, register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp, wait_until
from tests.integration.demo import USERS
from tests.integration.test_dialer import CLOCK, rows
from tests.integration.test_dialer_preview import HOURS, RETRIES, sales_and_trunk
from tests.integration.test_trunk_failover import one_campaign_call

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


def through_kamailio(artifacts: Path, stack: ExitStack, **config: Any) -> tuple[
        ServerProcess, Carrier, Carrier]:
    """Kamailio in front of the phone network (a simulated carrier), trunk ``pstn`` to it
    with ``auth`` and failover to trunk ``second`` (another carrier to the same network);
    ``config`` added. The server (not started), the phone network and the second carrier."""
    require_binary("sipp")
    require_binary("kamailio")
    pstn_port, second_port = ports.allocate(2).base, ports.allocate(2).base
    carrier = stack.enter_context(Kamailio(artifacts / "kamailio", subscribers={"acme": "s3cret"},
                                           trunk_user="acme", pstn_port=pstn_port))
    network = stack.enter_context(Carrier(pstn_port, max_call=3))
    second = stack.enter_context(Carrier(second_port, max_call=3))
    trunks = sales_and_trunk(carrier.port)["trunks"]
    trunks[0].update(auth={"user": "acme", "password": "s3cret"}, failover=["second"])
    trunks.append({"name": "second", "addresses": ["127.0.0.2"], "host": "127.0.0.1",
                   "port": second_port})
    overrides = {**sales_and_trunk(carrier.port), "trunks": trunks, **config}
    return ServerProcess(artifacts / "server", overrides=overrides, extra_args=CLOCK), \
        network, second


def test_an_agent_dials_out_through_kamailio_and_its_503_fails_over(artifacts: Path) -> None:
    with ExitStack() as stack:
        srv, network, second = through_kamailio(artifacts, stack)
        stack.enter_context(srv)
        block = ports.allocate(8)
        register(srv, "1001", block, artifacts / "reg")
        results = [run_sipp("uac_feature_code.xml", service=number,  # type: ignore[arg-type]
                            workdir=artifacts / number, ports=block, remote_port=srv.sip_port,
                            auth=("1001", USERS["1001"]), keys={"user": "1001"}, timeout=30)
                   for number in ("0221234567", "0609123456")]
        for result in results:
            assert result.returncode == 0, result.summary() + srv.log_tail()
        assert wait_until(lambda: len([r for r in srv.cdrs() if r["end"]]) == 2, 20, 0.2), \
            srv.cdrs()
        cdrs = sorted(srv.cdrs(), key=lambda r: r["start"])
        reached, failed_over = network.snapshot(), second.snapshot()
    # through Kamailio (which relays only a call whose digest it checked) to the network;
    # the range Kamailio refuses 503 to the second trunk, never to the network
    assert [i["number"] for i in reached] == ["+48221234567"], reached
    assert [i["number"] for i in failed_over] == ["+48609123456"], failed_over
    assert [(r["direction"], r["caller"], r["called"], r["trunk"], r["answer"] is not None)
            for r in cdrs] == [("outbound", "1001", "0221234567", "pstn", True),
                               ("outbound", "1001", "0609123456", "second", True)], cdrs
    assert (cdrs[0]["trunk_call_id"], cdrs[1]["trunk_call_id"]) == (
        reached[0]["call_id"], failed_over[0]["call_id"]), cdrs


def test_a_campaign_call_answers_kamailios_407(artifacts: Path) -> None:
    campaign = {"name": "c", "queue": "sales", "trunk": "pstn", "mode": "progressive",
                "caller_id": "+48221234567", "autostart": False, "hours": HOURS,
                "retries": RETRIES}
    with ExitStack() as stack:
        srv, network, second = through_kamailio(artifacts, stack, campaigns=[campaign])
        attempt = one_campaign_call(artifacts, srv, stack, CUSTOMER, "1002")
        reached, failed_over = network.snapshot(), second.snapshot()
    assert [i["number"] for i in reached] == [CUSTOMER] and failed_over == [], reached
    assert (attempt["outcome"], attempt["trunk"], attempt["sip_call_id"]) == (
        "answered", "pstn", reached[0]["call_id"]), attempt
