"""Calls from the phone network through a carrier the server registered at (issue 14).

Kamailio (tests/fixtures/kamailio/carrier.cfg) sends a call from SIPp (the phone network) to
the Contact our trunk registered. The trunk has no ``addresses``: ``inbound: register`` takes
the call by its target (our Contact's user) and its source (the registrar). The trunk is
``trusted``, so the caller is the P-Asserted-Identity's number; ``Privacy: id`` makes the
caller ``anonymous``; with ``max_channels: 1`` a second call while one is up gets 503.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http
from tests.helpers.kamailio import DOMAIN, Kamailio
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.test_trunk_register import trunk_state

TOLLFREE = "0800123456"


def pstn_calls(artifacts: Path, block: Any, carrier: Kamailio, *, calls: int, privacy: str,
               name: str, during: Callable[[], bool] = lambda: True,
               to: str = f"sip:48800123456@{DOMAIN}", duration_ms: int = 4000) -> str:
    """``calls`` calls at once from the phone network to ``to`` (Kamailio sends them to our
    Contact: the number is in the To), ``during`` them true at some point; SIPp's log."""
    sipp = Sipp("uac_pstn_call.xml", workdir=artifacts / name, ports=block,
                remote_port=carrier.port, service="48800123456", calls=calls, timeout=60,
                duration_ms=duration_ms, keys={"from": "+48600100200", "pai": "+48221234567",
                                               "privacy": privacy, "to": to})
    sipp.start()
    seen = wait_until(during, 30, 0.1)
    result = sipp.wait()
    assert result.returncode == 0, result.summary()
    assert seen, "the condition never held during the calls"
    return result.messages


def registered_trunk(artifacts: Path, block: Any, **trunk: Any) -> tuple[Kamailio,
                                                                         ServerProcess]:
    """Kamailio relaying the phone network on ``block[0]``, and a server whose trunk
    ``pstn`` (``trunk`` added) registers there; start both with ``with``."""
    require_binary("sipp")
    require_binary("kamailio")
    carrier = Kamailio(artifacts / "kamailio", subscribers={"acme": "s3cret"},
                       trunk_user="acme", pstn_port=block[0])
    trunks = [{"name": "pstn", "addresses": [], "inbound": "register", "host": "127.0.0.1",
               "port": carrier.port, **trunk,
               "register": {"user": "acme", "password": "s3cret", "domain": DOMAIN}}]
    return carrier, ServerProcess(artifacts / "server", overrides={"trunks": trunks})


def wait_registered(server: ServerProcess) -> None:
    assert wait_until(lambda: trunk_state(server, "pstn")["state"] == "registered", 20,
                      0.2), server.log_tail()


def test_a_registered_trunk_takes_calls_at_its_contact(artifacts: Path) -> None:
    block = ports.allocate(8)
    carrier, server = registered_trunk(artifacts, block, trusted=True, max_channels=1)
    with carrier, server:
        wait_registered(server)

        def trunk() -> dict[str, Any]:
            return dict(http(server, "GET", "/api/trunks")[1][0])

        assert (trunk()["inbound"], trunk()["max_channels"]) == ("register", 1)
        both = pstn_calls(artifacts, block, carrier, calls=2, privacy="none", name="two",
                          during=lambda: trunk()["channels"] == 1)
        # our 503 reaches the phone network as Kamailio's 500 (a proxy never relays a 503)
        assert "SIP/2.0 500" in both and "SIP/2.0 200" in both, both[-3000:]
        pstn_calls(artifacts, block, carrier, calls=1, privacy="id", name="private")
        assert wait_until(lambda: len([r for r in server.cdrs() if r["end"]]) == 2, 30, 0.2), \
            server.cdrs()
        assert trunk()["channels"] == 0
        cdrs = sorted(server.cdrs(), key=lambda r: r["start"])
        log = [json.loads(x) for x in server.log_text().splitlines() if x.startswith("{")]
    assert [(r["caller"], r["source"], r["line"], r["trunk"]) for r in cdrs] == [
        ("+48221234567", "trunk:pstn", TOLLFREE, "pstn"),
        ("anonymous", "trunk:pstn", TOLLFREE, "pstn")], cdrs
    assert [x["trunk"] for x in log if x.get("event") == "trunk_full"] == ["pstn"]


# the called number as carriers send it (the To; Kamailio's Request-URI is our Contact)
FORMATS = ["+48800123456", "48800123456", "0048800123456", "800123456", "0800123456"]
TO_URIS = [f"sip:{n}@{DOMAIN}" for n in FORMATS] + [
    "tel:+48800123456", f"sip:+48800123456@{DOMAIN};user=phone"]


def test_every_carrier_number_format_reaches_the_tollfree_line(artifacts: Path) -> None:
    block = ports.allocate(8)
    carrier, server = registered_trunk(artifacts, block)
    with carrier, server:
        wait_registered(server)
        for i, to in enumerate(TO_URIS):
            log = pstn_calls(artifacts, block, carrier, calls=1, privacy="none",
                             name=f"format{i}", to=to, duration_ms=200)
            assert "SIP/2.0 200" in log, log[-3000:]
        assert wait_until(lambda: len([r for r in server.cdrs() if r["end"]]) == len(TO_URIS),
                          30, 0.2), server.cdrs()
        cdrs = sorted(server.cdrs(), key=lambda r: r["start"])
    assert [(r["line"], r["called"], r["trunk"]) for r in cdrs] == [
        (TOLLFREE, TOLLFREE, "pstn")] * len(TO_URIS), cdrs
