"""Callbacks through the HTTP API, live (issue 13).

Queue ``sales`` (SIPp agent 1001), trunk ``pstn`` to the simulated carrier. A callback booked
for tomorrow is listed, moved and cancelled through the API (and then refused a move: 409);
bad input is a 400, an unknown id a 404. A callback booked for now is worked: once 1001
registers it rings 1001, then the number is dialled on the carrier and the request is done.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http
from tests.helpers.carrier import Carrier
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dialer_preview import sales_and_trunk

LATER, NOW = "+48600500001", "+48600500002"


def test_callbacks_are_booked_moved_cancelled_and_dialled_through_the_api(
        artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    config = sales_and_trunk(carrier_port)
    config["queues"][0].update(members=["1001"], callback={"retries": 0})
    with Carrier(carrier_port, {}.get, max_call=2) as carrier, ExitStack() as stack:
        srv = stack.enter_context(ServerProcess(artifacts, overrides=config))
        status, body = http(srv, "POST", "/api/callbacks",
                            {"queue": "nope", "number": LATER})
        assert (status, "queue" in body["error"]) == (400, True), body
        status, body = http(srv, "POST", "/api/callbacks",
                            {"queue": "sales", "number": LATER, "at": "next week"})
        assert (status, body["error"].startswith("at: bad time")) == (400, True), body

        status, later = http(srv, "POST", "/api/callbacks",
                             {"queue": "sales", "number": "600 500 001", "at": "2099-01-02T15:30"})
        assert status == 201, later
        assert (later["number"], later["status"], later["at"][:16]) == \
            (LATER, "open", "2099-01-02T15:30"), later
        status, listed = http(srv, "GET", "/api/callbacks?queue=sales&state=open")
        assert status == 200 and [r["id"] for r in listed] == [later["id"]], listed
        assert http(srv, "GET", "/api/callbacks?state=done") == (200, [])
        assert http(srv, "GET", "/api/callbacks?state=soon")[0] == 400

        moved_to = later["next_at"] + 3600
        status, moved = http(srv, "PATCH", f"/api/callbacks/{later['id']}", {"at": moved_to})
        assert (status, moved["next_at"], moved["status"]) == (200, moved_to, "open"), moved
        status, cancelled = http(srv, "DELETE", f"/api/callbacks/{later['id']}")
        assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
        assert http(srv, "PATCH", f"/api/callbacks/{later['id']}", {"at": 1})[0] == 409
        assert http(srv, "DELETE", f"/api/callbacks/{later['id']}")[0] == 409
        assert http(srv, "DELETE", "/api/callbacks/99999")[0] == 404
        assert http(srv, "POST", "/api/callbacks", {"queue": "sales", "number": NOW},
                    token="demo-wallboard-token")[0] == 403

        status, due = http(srv, "POST", "/api/callbacks", {"queue": "sales", "number": NOW})
        assert status == 201, due
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        assert wait_until(lambda: http(srv, "GET", "/api/callbacks?state=done")[1] != [], 60,
                          0.5), srv.log_tail()
        invites = carrier.snapshot()
        final = {r["id"]: r for r in http(srv, "GET", "/api/callbacks")[1]}
    assert [i["number"] for i in invites] == [NOW], invites
    assert (final[due["id"]]["status"], final[due["id"]]["agent"],
            final[due["id"]]["outcome"]) == ("done", "1001", "answered"), final
    assert final[later["id"]]["status"] == "cancelled"
