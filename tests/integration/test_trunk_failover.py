"""Trunk failover and number formats, live (issue 14).

Two simulated carriers. Trunk ``pstn`` (national numbers) answers every call 503 but a busy
number; its ``failover`` is trunk ``second`` (E.164), which answers. A callback to one number
rings SIPp agent 1001, is refused by the first carrier and reaches the customer through the
second; a callback to the busy number is the callee's answer and never goes to the second.
A campaign call failed over the same way keeps the second trunk and its Call-ID in the attempt
and the call record; its anonymous caller goes to each trunk by that trunk's rules.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.carrier import Carrier
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dialer import CLOCK, cli
from tests.integration.test_dialer_preview import HOURS, RETRIES, api, sales_and_trunk

REACHED, BUSY = "+48600500011", "+48600500012"


def test_a_503_fails_over_to_the_next_trunk_and_a_busy_callee_does_not(
        artifacts: Path) -> None:
    require_binary("sipp")
    first_port, second_port = ports.allocate(2).base, ports.allocate(2).base
    config = sales_and_trunk(first_port)
    config["queues"][0].update(members=["1001"], callback={"retries": 0, "trunk": "pstn"})
    config["trunks"] = [
        {"name": "pstn", "addresses": ["127.0.0.1"], "host": "127.0.0.1", "port": first_port,
         "number_format": "national", "failover": ["second"]},
        {"name": "second", "addresses": ["127.0.0.2"], "host": "127.0.0.1", "port": second_port},
    ]
    first_says = {BUSY[3:]: "busy"}
    with Carrier(first_port, lambda n: first_says.get(n, "unavailable"), max_call=2) as first, \
            Carrier(second_port, {}.get, max_call=2) as second, ExitStack() as stack:
        srv = stack.enter_context(ServerProcess(artifacts, overrides=config))
        booked = [http(srv, "POST", "/api/callbacks", {"queue": "sales", "number": n})
                  for n in (REACHED, BUSY)]
        assert [status for status, _ in booked] == [201, 201], booked
        answering_phone(srv, "1001", artifacts, stack, talk_ms=60000)
        finished = "/api/callbacks?state={}"
        assert wait_until(
            lambda: len(http(srv, "GET", finished.format("done"))[1])
            + len(http(srv, "GET", finished.format("failed"))[1]) == 2, 90, 0.5), \
            srv.log_tail()
        final = {r["number"]: r for r in http(srv, "GET", "/api/callbacks")[1]}
        tried_first, tried_second = first.snapshot(), second.snapshot()
        log = srv.log_text()
    assert sorted((i["number"], i["mode"]) for i in tried_first) == [
        ("600500011", "unavailable"), ("600500012", "busy")], tried_first
    assert [i["number"] for i in tried_second] == [REACHED], tried_second
    assert (final[REACHED]["status"], final[REACHED]["outcome"]) == ("done", "answered"), final
    assert (final[BUSY]["status"], final[BUSY]["outcome"]) == ("failed", "busy"), final
    assert "trunk_failover" in log


def test_a_campaign_call_keeps_the_trunk_that_carried_it(artifacts: Path) -> None:
    require_binary("sipp")
    first_port, second_port = ports.allocate(2).base, ports.allocate(2).base
    config = sales_and_trunk(first_port)
    config["trunks"] = [
        {"name": "pstn", "addresses": ["127.0.0.1"], "host": "127.0.0.1", "port": first_port,
         "failover": ["second"]},
        {"name": "second", "addresses": ["127.0.0.2"], "host": "127.0.0.1", "port": second_port,
         "caller_id": {"number": "0221234567"}},
    ]
    config["campaigns"] = [{"name": "c", "queue": "sales", "trunk": "pstn", "mode": "progressive",
                            "caller_id": "anonymous", "autostart": False, "hours": HOURS,
                            "retries": RETRIES}]
    with Carrier(first_port, lambda n: "unavailable", max_call=2) as first, \
            Carrier(second_port, {}.get, max_call=2) as second, ExitStack() as stack:
        srv = ServerProcess(artifacts, overrides=config, extra_args=CLOCK)
        attempt = one_campaign_call(artifacts, srv, stack, REACHED, "1001")
        assert wait_until(lambda: any(r["end"] for r in srv.cdrs()), 20, 0.2), srv.cdrs()
        [cdr] = srv.cdrs()
        tried_first, tried_second = first.snapshot(), second.snapshot()
    [refused], [carried] = tried_first, tried_second
    assert (attempt["outcome"], attempt["trunk"], attempt["sip_call_id"]) == (
        "answered", "second", carried["call_id"]), (attempt, carried, refused)
    assert (cdr["trunk"], cdr["trunk_call_id"], cdr["sip_call_id"]) == (
        "second", carried["call_id"], carried["call_id"]), cdr
    assert refused["call_id"] != carried["call_id"]
    # anonymous (RFC 3323) to both; the second trunk is told whom to bill (RFC 3325)
    for invite in (refused, carried):
        assert invite["from"].startswith('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=')
        assert invite["privacy"] == "id", invite
    assert (refused["pai"], carried["pai"]) == ("", "<sip:+48221234567@127.0.0.1>")


def one_campaign_call(artifacts: Path, srv: ServerProcess, stack: ExitStack, number: str,
                      agent: str) -> dict[str, Any]:
    """Import ``number`` into campaign ``c``, start the server (in ``stack``) with ``agent``'s
    answering phone, start the campaign; its one attempt once done."""
    (artifacts / "c.csv").write_text(f"number\n{number}\n", encoding="utf-8")
    done = cli("import", str(artifacts / "c.csv"), "--campaign", "c", "--config",
               str(srv.write_config()), "--db", str(srv.db_path))
    assert done.returncode == 0, done.stderr
    stack.enter_context(srv)
    answering_phone(srv, agent, artifacts, stack, talk_ms=1000)
    api(srv, "POST", "/api/campaigns/c/start")
    assert wait_until(lambda: rows(srv.db_path, "SELECT * FROM attempts WHERE state = "
                                                "'done'"), 60, 0.5), srv.log_tail()
    [attempt] = rows(srv.db_path, "SELECT * FROM attempts")
    return dict(attempt)
