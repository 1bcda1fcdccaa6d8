"""Preview mode and messages left on answering machines, live (issue 5).

Campaign ``preview`` (preview mode): started, it never dials by itself; an agent reserves a
contact (the DNC one is skipped), skips one, lets one hold run out, and dials one: the server
rings the agent's SIPp phone, then the contact through the simulated carrier, and bridges them.
Campaign ``robo`` (progressive, AMD, ``machine_message``): its only contact is an answering
machine, which hears the message after its greeting (the carrier records what it hears).
"""

from __future__ import annotations

import time
import urllib.error
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.test_dialer import CLOCK, api, cli, rows

TALK_MS = 5000
P_DNC, P_HUMAN, P_OTHER = "+48600100001", "+48600100002", "+48600100003"
MACHINE = "+48600200001"
MODES = {P_DNC: "human", P_HUMAN: "human", P_OTHER: "human", MACHINE: "machine"}
RETRIES = {k: {"max": 0, "delay": 0}
           for k in ("busy", "no-answer", "machine", "abandoned", "failed")}
HOURS = {"mon-sun": "09:00-20:00"}


def sales_and_trunk(carrier_port: int) -> dict[str, Any]:
    """Queue ``sales`` (agents 1001, 1002) and trunk ``pstn`` to the simulated carrier."""
    return {
        "queues": [{"name": "sales", "members": ["1001", "1002"], "wrapup": 1,
                    "ring_timeout": 5, "announce_every": None, "whisper": False,
                    "auto_pause_after": None}],
        "trunks": [{"name": "pstn", "addresses": ["127.0.0.1"], "host": "127.0.0.1",
                    "port": carrier_port, "transport": "udp"}],
    }


def overrides(carrier_port: int) -> dict[str, Any]:
    common = {"queue": "sales", "trunk": "pstn", "caller_id": "+48221234567",
              "autostart": False, "ring_timeout": 15, "hours": HOURS, "retries": RETRIES}
    return {
        **sales_and_trunk(carrier_port),
        "campaigns": [
            {**common, "name": "preview", "mode": "preview", "preview_seconds": 3},
            {**common, "name": "robo", "mode": "progressive", "amd": True,
             "machine_message": "machine_message", "language": "en"},
        ],
    }


def agent_phone(server: ServerProcess, user: str, workdir: Path, stack: ExitStack) -> Sipp:
    """A registered SIPp phone that answers at once and hangs up after TALK_MS."""
    return answering_phone(server, user, workdir, stack, talk_ms=TALK_MS)


def status_of(server: ServerProcess, path: str, body: Any) -> int:
    try:
        api(server, "POST", path, body)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_preview_and_machine_message(artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    (artifacts / "preview.csv").write_text(
        "number;name;produkt\n" + "".join(f"{n};Klient {n[-1]};oferta {n[-1]}\n"
                                          for n in (P_DNC, P_HUMAN, P_OTHER)), encoding="utf-8")
    (artifacts / "robo.csv").write_text(f"number\n{MACHINE}\n", encoding="utf-8")
    with Carrier(carrier_port, MODES.get) as carrier, ExitStack() as stack:
        srv = ServerProcess(artifacts, overrides=overrides(carrier_port), extra_args=CLOCK)
        config, db = srv.write_config(), srv.db_path
        for name in ("preview", "robo"):
            done = cli("import", str(artifacts / f"{name}.csv"), "--campaign", name, "--config",
                       str(config), "--db", str(db))
            assert done.returncode == 0, done.stderr
        assert cli("dnc", P_DNC, "--campaign", "preview", "--config", str(config), "--db",
                   str(db)).returncode == 0
        stack.enter_context(srv)
        agent_phone(srv, "1001", artifacts, stack)
        base = "/api/campaigns/preview"

        # ---- running in preview mode: nothing is dialled by the server
        assert status_of(srv, f"{base}/preview", {"agent": "1001"}) == 409  # paused
        api(srv, "POST", f"{base}/start")
        time.sleep(2.5)
        assert carrier.snapshot() == []

        # ---- reserve (DNC skipped), the same one again, skip, expiry
        mine = api(srv, "POST", f"{base}/preview", {"agent": "1001"})
        assert (mine["number"], mine["state"], mine["agent"]) == (P_HUMAN, "preview", "1001")
        assert mine["fields"] == {"produkt": "oferta 2"} and 0 < mine["reserved_seconds"] <= 3
        assert api(srv, "POST", f"{base}/preview", {"agent": "1001"})["id"] == mine["id"]
        other = api(srv, "POST", f"{base}/preview", {"agent": "1002"})
        assert other["number"] == P_OTHER
        assert status_of(srv, f"{base}/preview/{other['id']}/dial", {"agent": "1001"}) == 409
        skipped = api(srv, "POST", f"{base}/preview/{other['id']}/skip", {})
        assert skipped["state"] == "released"
        assert status_of(srv, f"{base}/preview/{other['id']}/skip", {}) == 404
        assert api(srv, "POST", f"{base}/preview", {"agent": "1002"})["id"] == other["id"]
        time.sleep(3.2)  # preview_seconds: both holds ran out
        assert status_of(srv, f"{base}/preview/{mine['id']}/dial", {}) == 404
        mine = api(srv, "POST", f"{base}/preview", {"agent": "1001"})
        assert mine["number"] == P_HUMAN

        # ---- dial: the agent's phone answers, then the contact; bridged
        dial = api(srv, "POST", f"{base}/preview/{mine['id']}/dial", {"agent": "1001"})
        attempt = dial["attempt"]
        assert dial["state"] == "dialing" and isinstance(attempt, int)

        def connected() -> bool:
            calls = next(c for c in api(srv, "GET", "/api/campaigns")
                         if c["name"] == "preview")["calls"]
            return any(c["state"] == "connected" and c["agent"] == "1001" for c in calls)
        assert wait_until(connected, 10, 0.1), srv.log_tail()
        offer = api(srv, "GET", "/api/agents/1001/offer")  # the screen pop before it rang
        assert (offer["caller"], offer["why"]["kind"], offer["why"]["campaign"],
                offer["why"]["fields"]) == (P_HUMAN, "preview", "preview",
                                            {"produkt": "oferta 2"}), offer
        assert wait_until(lambda: rows(db, "SELECT * FROM attempts WHERE id = ? AND state = "
                                           "'done'", attempt), 15, 0.2), srv.log_tail()
        row = rows(db, "SELECT * FROM attempts WHERE id = ?", attempt)[0]
        assert (row["outcome"], row["agent"], row["number"]) == ("answered", "1001", P_HUMAN)
        invites = carrier.snapshot()
        assert [i["number"] for i in invites] == [P_HUMAN]  # only the agent's dial
        call = carrier.calls[invites[0]["call_id"]]
        assert row["sip_call_id"] == call.call_id and call.answered is not None
        assert call.by == "bye" and call.ended is not None
        assert call.ended - call.answered >= 2.0  # talked until the agent hung up
        contact = rows(db, "SELECT * FROM contacts WHERE number = ?", P_HUMAN)[0]
        assert (contact["state"], contact["disposition"]) == ("done", "answered")

        # ---- answering machine with machine_message: hears it after the greeting
        api(srv, "POST", "/api/campaigns/robo/start")
        assert wait_until(lambda: rows(db, "SELECT * FROM attempts WHERE number = ? AND "
                                           "state = 'done'", MACHINE), 40, 0.2), srv.log_tail()
        robo = rows(db, "SELECT * FROM attempts WHERE number = ?", MACHINE)
        machine_call = carrier.calls[robo[0]["sip_call_id"]]
        api(srv, "POST", f"{base}/pause")
        api(srv, "POST", "/api/campaigns/robo/pause")
        final = rows(db, "SELECT number FROM attempts")

    assert len(robo) == 1, robo
    assert (robo[0]["outcome"], robo[0]["amd"], robo[0]["message_left"]) == \
        ("machine", "machine", 1), robo
    during_greeting = machine_call.voiced_seconds() - machine_call.voiced_seconds(after=3.5)
    assert during_greeting < 0.5, during_greeting  # nothing played over the greeting
    heard = machine_call.voiced_seconds(after=4.0)
    assert heard >= 7.0, heard  # the ~10.7 s English message, after the greeting's end
    assert machine_call.by == "bye"
    assert sorted(r["number"] for r in final) == sorted([P_HUMAN, MACHINE])  # no other dial
