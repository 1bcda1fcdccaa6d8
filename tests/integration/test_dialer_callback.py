"""Agent-scheduled callbacks and campaign recording, live (issue 5).

Campaign ``cb`` (progressive, ``record: true``, ``callback_grace: 4``), queue ``sales`` with
SIPp agents 1001 and 1002, one contact on the simulated carrier:

1. Only 1001 is registered: the campaign calls the contact, the call is bridged to 1001 and
   recorded (stereo WAV with the contact's voice on the left; its path on the attempt).
2. 1002 registers. The disposition schedules a callback in 4 s for the same agent: nothing is
   dialled before its time although both agents are free; then 1001's phone rings first (its
   phone is in use for the ACD meanwhile), the contact is dialled and bridged; recorded too.
3. A callback for agent 1003 (never logged in): after 4 s of grace it goes to anyone, and
   the pooled dialer calls it.
"""

from __future__ import annotations

import time
import wave
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dialer import CLOCK, api, cli, rows
from tests.integration.test_dialer_preview import RETRIES, agent_phone, sales_and_trunk

NUMBER = "+48600300001"
GRACE = 4.0
CAMPAIGN = "/api/campaigns/cb"


def overrides(carrier_port: int) -> dict[str, Any]:
    return {
        **sales_and_trunk(carrier_port),
        "campaigns": [{
            "name": "cb", "queue": "sales", "trunk": "pstn", "caller_id": "+48221234567",
            "mode": "progressive", "autostart": False, "ring_timeout": 15, "record": True,
            "callback_grace": GRACE, "hours": {"mon-sun": "09:00-20:00"}, "retries": RETRIES,
            "dispositions": {"1": {"name": "sale"},
                             "3": {"name": "callback", "final": False, "retry": 3600}}}],
    }


def voiced_left(path: Path) -> float:
    """Seconds of the left channel (the contact) louder than a whisper."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        left = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)[:, 0]
    frames = left[: len(left) // 160 * 160].astype(np.float64).reshape(-1, 160)
    return float((np.abs(frames).mean(axis=1) > 300).sum() * 0.02)


def done_attempts(db: Path) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM attempts WHERE state = 'done' ORDER BY id")


def test_callback_same_agent_grace_and_recording(artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    (artifacts / "cb.csv").write_text(f"number;name\n{NUMBER};Klient\n", encoding="utf-8")
    with Carrier(carrier_port) as carrier, ExitStack() as stack:
        srv = ServerProcess(artifacts, overrides=overrides(carrier_port), extra_args=CLOCK)
        config, db = srv.write_config(), srv.db_path
        done = cli("import", str(artifacts / "cb.csv"), "--campaign", "cb", "--config",
                   str(config), "--db", str(db))
        assert done.returncode == 0, done.stderr
        stack.enter_context(srv)
        agent_phone(srv, "1001", artifacts, stack)

        # ---- 1. the pooled call, bridged to 1001 and recorded
        api(srv, "POST", f"{CAMPAIGN}/start")
        assert wait_until(lambda: len(done_attempts(db)) == 1, 20, 0.2), srv.log_tail()
        first = done_attempts(db)[0]
        assert (first["outcome"], first["agent"]) == ("answered", "1001"), first
        assert first["recording"] and first["recording"].endswith(f"{first['call_id']}.wav")
        assert wait_until(lambda: voiced_left(Path(first["recording"])) > 0.1, 5, 0.2)
        shown = api(srv, "GET", f"{CAMPAIGN}/attempts")
        assert [(a["id"], a["recording"]) for a in shown] == [(first["id"],
                                                               first["recording"])]

        # ---- 2. a callback in 4 s for the same agent, with 1002 free as well
        agent_phone(srv, "1002", artifacts, stack)
        assert wait_until(lambda: all(a["registered"] for a in api(srv, "GET", "/api/agents")
                                      if a["id"] in ("1001", "1002")), 10, 0.2)
        due = time.time() + 4.0
        contact = api(srv, "POST", f"{CAMPAIGN}/dispositions",
                      {"attempt": first["id"], "code": "3", "callback_at": due,
                       "callback_to": "same"})
        assert (contact["state"], contact["owner"], contact["callback_at"]) == \
            ("retry_at", "1001", due), contact
        summary = next(c for c in api(srv, "GET", "/api/campaigns") if c["name"] == "cb")
        assert [(c["number"], c["owner"], c["at"]) for c in summary["callbacks"]] == \
            [(NUMBER, "1001", due)]
        in_use: list[bool] = []

        def second_started() -> bool:
            agents = {a["id"]: a for a in api(srv, "GET", "/api/agents")}
            calls = next(c for c in api(srv, "GET", "/api/campaigns")
                         if c["name"] == "cb")["calls"]
            if any(c["callback"] and c["state"] == "connected" for c in calls):
                in_use.append(agents["1001"]["in_use"] and not agents["1002"]["in_use"])
            return len(done_attempts(db)) == 2
        assert wait_until(second_started, 20, 0.2), srv.log_tail()
        second = done_attempts(db)[1]
        assert (second["outcome"], second["agent"]) == ("answered", "1001"), second
        assert second["started"] >= due - 0.05
        assert in_use and all(in_use), in_use  # the ACD knew 1001's phone was busy
        assert not any(a["in_use"] for a in api(srv, "GET", "/api/agents"))
        assert second["recording"] and second["recording"] != first["recording"]
        assert wait_until(lambda: voiced_left(Path(second["recording"])) > 0.1, 5, 0.2)
        contact = rows(db, "SELECT * FROM contacts WHERE number = ?", NUMBER)[0]
        assert (contact["state"], contact["owner"]) == ("done", None)

        # ---- 3. a callback for 1003 (not in the queue): after the grace, anyone takes it
        now = time.time()
        contact = api(srv, "POST", f"{CAMPAIGN}/dispositions",
                      {"attempt": second["id"], "code": "callback", "callback_at": now,
                       "callback_to": "1003"})
        assert contact["owner"] == "1003"
        assert wait_until(lambda: len(done_attempts(db)) == 3, 25, 0.2), srv.log_tail()
        third = done_attempts(db)[2]
        assert third["outcome"] == "answered" and third["agent"] in ("1001", "1002"), third
        assert third["started"] >= now + GRACE - 0.05
        contact = rows(db, "SELECT * FROM contacts WHERE number = ?", NUMBER)[0]
        assert (contact["state"], contact["owner"]) == ("done", None)
        api(srv, "POST", f"{CAMPAIGN}/pause")
        invites = carrier.snapshot()

    assert [i["number"] for i in invites] == [NUMBER] * 3
    assert invites[1]["time"] >= due - 0.05
    assert invites[2]["time"] >= now + GRACE - 0.05
