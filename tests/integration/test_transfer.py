"""Blind transfer by REFER from a real phone: baresip's ``transfer`` command (RFC 3515).

The caller (baresip 1002) says 440 Hz, the agent (baresip 1001) 1000 Hz, the target (baresip
1003) 1800 Hz. 1002 dials 1001; 1001 transfers to an unknown number: the NOTIFY says 404 (baresip
then hangs up by itself). On a second call 1001 transfers to 1003: 1001 is released, the
caller hears 1003, and the call keeps one CDR.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio
from tests.helpers.api import http, rows
from tests.helpers.baresip import BaresipAgent
from tests.helpers.server import ServerProcess
from tests.integration.test_supervisor import AGENT_HZ, CALLER_HZ, SUPER_HZ, agent, closed, heard


def three_phones(artifacts: Path, seconds: float) -> tuple[ServerProcess, BaresipAgent,
                                                           BaresipAgent, BaresipAgent]:
    """The server, the caller 1002, the agent 1001 and the target 1003, each saying its tone."""
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), seconds)
             for hz in (CALLER_HZ, AGENT_HZ, SUPER_HZ)}
    srv = ServerProcess(artifacts).start()
    return (srv, agent(artifacts, "1002", tones[CALLER_HZ], srv),
            agent(artifacts, "1001", tones[AGENT_HZ], srv),
            agent(artifacts, "1003", tones[SUPER_HZ], srv))


def connect(srv: ServerProcess, caller: BaresipAgent, agent_: BaresipAgent,
            *others: BaresipAgent) -> None:
    """Wait for every phone's registration, then the caller dials 1001 and both talk."""
    for phone in (caller, agent_, *others):
        phone.ctrl.wait_registered()
    caller.dial(f"sip:1001@127.0.0.1:{srv.sip_port}")
    agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
    caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)


def test_blind_transfer_by_refer(artifacts: Path) -> None:
    srv, caller, agent_, target = three_phones(artifacts, 10.0)
    try:
        with caller, agent_, target:
            for phone in (caller, agent_, target):
                phone.ctrl.wait_registered()
            sip = f"127.0.0.1:{srv.sip_port}"
            caller.dial(f"sip:1001@{sip}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.0)

            agent_.ctrl.command(f"transfer sip:9999@{sip}")  # unknown: NOTIFY 404
            failed = agent_.ctrl.wait_event("TRANSFER_FAILED", timeout=10)
            assert "404" in str(failed), failed
            # baresip hangs up (BYE) after a failed transfer; a new call for the next part
            assert closed(caller, 10)
            t_stayed = time.time()
            caller.dial(f"sip:1001@{sip}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(2.5)

            agent_.ctrl.command(f"transfer sip:1003@{sip}")
            target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            assert closed(agent_, 10), "the transferor was not released"
            t_moved = time.time()
            time.sleep(3.0)
            assert len(caller.ctrl.seen("CALL_CLOSED")) == 1, "the caller was hung up"
            caller.ctrl.command("hangup")
            assert closed(caller, 10)
            assert closed(target, 10), "the target was not hung up"
            caller_heard = audio.read_wav(caller.recordings()["heard"])[0]
    finally:
        srv.stop()

    assert heard(caller_heard, t_stayed, t_stayed + 1.0, t_moved - 0.5) == {AGENT_HZ}
    assert heard(caller_heard, t_stayed, t_moved + 0.8, t_moved + 2.8) == {SUPER_HZ}

    db = srv.db_path
    cdrs = [r for r in rows(db, "SELECT * FROM calls") if r["caller"] == "1002"]
    assert len(cdrs) == 2, cdrs  # the call whose transfer failed, the one transferred
    events = rows(db, "SELECT type, data FROM call_events WHERE call_id = ?", cdrs[1]["id"])
    transferred = [e for e in events if e["type"] == "transferred"]
    assert len(transferred) == 1 and '"user:1003"' in transferred[0]["data"], events


def test_blind_transfer_by_api_and_by_keys(artifacts: Path) -> None:
    """``POST /api/calls/{id}/transfer`` moves the caller 1002 from 1001 to 1003; then on a
    second call 1001 presses ``##1003#`` (RFC 4733 from baresip) with the same outcome. Each
    time 1003's phone rings, the screen pop (``agent.offer``) names the call and why."""
    srv, caller, agent_, target = three_phones(artifacts, 12.0)
    heard_by: list[tuple[float, float, Path]] = []  # dial time, transfer time, the recording
    try:
        with caller, agent_, target:
            for phone in (caller, agent_, target):
                phone.ctrl.wait_registered()
            sip = f"127.0.0.1:{srv.sip_port}"
            for how in ("api", "keys"):
                t_dial = time.time()
                caller.dial(f"sip:1001@{sip}")
                agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                time.sleep(2.0)
                live = http(srv, "GET", "/api/calls")[1]["live"]
                call_id = next(c["id"] for c in live if c["caller"] == "1002")
                if how == "api":
                    path = f"/api/calls/{call_id}/transfer"
                    assert http(srv, "POST", "/api/calls/nope/transfer", {"to": "1003"})[0] == 404
                    assert http(srv, "POST", path, {"to": "9999"})[0] == 400
                    assert http(srv, "POST", path, {"to": "1001"})[0] == 400  # a party of it
                    assert http(srv, "POST", path, {"to": "1003"},
                                token="demo-wallboard-token")[0] == 403
                    assert http(srv, "POST", path, {"to": "1003"})[0] == 202
                else:
                    agent_.ctrl.command("sndcode ##1003#")
                target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                offer = http(srv, "GET", "/api/agents/1003/offer")[1]  # the screen pop
                assert (offer["call_id"], offer["caller"], offer["why"]) == (
                    call_id, "1002", {"kind": "transfer"}), offer
                assert closed(agent_, 10), f"{how}: the transferor was not released"
                t_moved = time.time()
                time.sleep(3.0)
                assert len(caller.ctrl.seen("CALL_CLOSED")) == len(heard_by), how
                caller.ctrl.command("hangup")
                assert closed(caller, 10) and closed(target, 10), how
                heard_by.append((t_dial, t_moved, caller.recordings()["heard"]))
    finally:
        srv.stop()

    assert len({wav for *_, wav in heard_by}) == 2, heard_by
    for t_dial, t_moved, wav in heard_by:
        samples = audio.read_wav(wav)[0]
        assert heard(samples, t_dial, t_moved + 0.8, t_moved + 2.8) == {SUPER_HZ}, wav
    cdrs = [r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002"]
    assert len(cdrs) == 2, cdrs
    for cdr, by in zip(cdrs, ("api", "dtmf"), strict=True):
        events = rows(srv.db_path, "SELECT type, data FROM call_events WHERE call_id = ?",
                      cdr["id"])
        moves = [e["data"] for e in events if e["type"] == "transferred"]
        assert len(moves) == 1 and '"user:1003"' in moves[0] and f'"{by}"' in moves[0], events
