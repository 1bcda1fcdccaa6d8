"""Supervisors listen, whisper and barge on a live call; the call is recorded in stereo.

The caller (baresip 1002) says 440 Hz, the agent (baresip 1001) 1000 Hz, the supervisor
(baresip 2001) 1800 Hz. 1002 dials 1001 (a user-to-user call the server bridges); 2001 dials
*811001 and switches with keys 5 (whisper), 6 (barge) and 4 (listen). Each party's recording
of what it heard is checked by spectrum, phase by phase. A second session comes from the HTTP
API (the server calls 2001) and ends when the caller hangs up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tests.conftest import require_binary
from tests.helpers import audio
from tests.helpers.api import http, rows
from tests.helpers.phones import agent, closed
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until

CALLER_HZ, AGENT_HZ, SUPER_HZ = 440.0, 1000.0, 1800.0
PHASE = 4.0  # seconds in each mode
MARGIN = 1.0  # seconds skipped at the start of a phase (mode switch, jitter buffers)


def heard(samples: np.ndarray, t0: float, start: float, end: float) -> set[float]:
    """Which of the three tones are in the recording between wall times start and end."""
    a, b = int((start - t0) * 8000), int((end - t0) * 8000)
    block = samples[max(0, a):max(0, b)]
    assert len(block) > 4000, f"recording too short for window {start - t0:.1f}-{end - t0:.1f}"
    return {f for f in (CALLER_HZ, AGENT_HZ, SUPER_HZ)
            if audio.tone_present(block, f, ratio=0.05)}


def test_listen_whisper_barge(artifacts: Path) -> None:
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 10.0)
             for hz in (CALLER_HZ, AGENT_HZ, SUPER_HZ)}
    srv = ServerProcess(artifacts, overrides={"recording": {"calls": True}}).start()
    caller = agent(artifacts, "1002", tones[CALLER_HZ], srv)
    agent_ = agent(artifacts, "1001", tones[AGENT_HZ], srv)
    boss = agent(artifacts, "2001", tones[SUPER_HZ], srv)
    other = agent(artifacts, "1003", tones[CALLER_HZ], srv)
    try:
        with caller, agent_, boss, other:
            for phone in (caller, agent_, boss, other):
                phone.ctrl.wait_registered()
            sip = f"127.0.0.1:{srv.sip_port}"

            caller.dial(f"sip:1001@{sip}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            t_call = time.time()

            # a non-supervisor is refused
            other.dial(f"sip:*811001@{sip}")
            assert closed(other, 15), "the refused code did not end the call"

            boss.dial(f"sip:*811001@{sip}")
            boss.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            t_listen = time.time()
            time.sleep(PHASE)
            boss.ctrl.command("sndcode 5")
            t_whisper = time.time()
            time.sleep(PHASE)
            boss.ctrl.command("sndcode 6")
            t_barge = time.time()
            time.sleep(PHASE)
            boss.ctrl.command("sndcode 4")
            t_listen2 = time.time()
            time.sleep(PHASE)
            boss.ctrl.command("hangup")
            assert closed(boss, 10)
            t_after = time.time()
            time.sleep(3.0)
            assert not caller.ctrl.seen("CALL_CLOSED"), "the call ended with the supervisor"
            boss_heard = audio.read_wav(boss.recordings()["heard"])[0]

            # an API session: the server calls 2001 (auto answer) and barges in
            status, session = http(srv, "POST", "/api/supervisor/sessions",
                                   {"supervisor": "2001", "agent": "1001", "mode": "barge"})
            assert status == 201, session
            boss.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)

            def live() -> list[dict]:
                listing = http(srv, "GET", "/api/supervisor/sessions")[1]["live"]
                return [s for s in listing if s["id"] == session["id"] and s["state"] == "active"]
            assert wait_until(live, 10), http(srv, "GET", "/api/supervisor/sessions")
            assert live()[0]["mode"] == "barge", live()
            status, changed = http(srv, "PATCH", f"/api/supervisor/sessions/{session['id']}",
                                   {"mode": "whisper"})
            assert status == 200 and changed["mode"] == "whisper", changed
            # hanging up the caller ends everything
            caller.ctrl.command("hangup")
            assert closed(caller, 10)
            assert closed(agent_, 10), "the agent was not hung up"
            assert closed(boss, 10), "the supervisor was not hung up"
            caller_heard = audio.read_wav(caller.recordings()["heard"])[0]
            agent_heard = audio.read_wav(agent_.recordings()["heard"])[0]

            # the agent is not on a call: the supervisor waits and joins the next one
            boss.dial(f"sip:*831001@{sip}")
            boss.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.0)
            caller.dial(f"sip:1001@{sip}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(3.0)
            status, listing = http(srv, "GET", "/api/supervisor/sessions")
            assert [s["state"] for s in listing["live"]] == ["active"], listing
            # hanging up the agent ends everything
            agent_.ctrl.command("hangup")
            assert closed(agent_, 10)
            assert closed(caller, 10), "the caller was not hung up"
            assert closed(boss, 10), "the supervisor was not hung up"
            waited_heard = audio.read_wav(boss.recordings()["heard"])[0]
    finally:
        srv.stop()

    phases = {
        "listen": (t_listen, t_whisper),
        "whisper": (t_whisper, t_barge),
        "barge": (t_barge, t_listen2),
        "listen again": (t_listen2, t_listen2 + PHASE),
    }
    expect = {  # who hears which tones in each mode
        "listen": ({AGENT_HZ}, {CALLER_HZ}, {CALLER_HZ, AGENT_HZ}),
        "whisper": ({AGENT_HZ}, {CALLER_HZ, SUPER_HZ}, {CALLER_HZ, AGENT_HZ}),
        "barge": ({AGENT_HZ, SUPER_HZ}, {CALLER_HZ, SUPER_HZ}, {CALLER_HZ, AGENT_HZ}),
        "listen again": ({AGENT_HZ}, {CALLER_HZ}, {CALLER_HZ, AGENT_HZ}),
    }
    got = {}
    for name, (start, end) in phases.items():
        got[name] = (
            heard(caller_heard, t_call, start + MARGIN, end - 0.3),
            heard(agent_heard, t_call, start + MARGIN, end - 0.3),
            heard(boss_heard, t_listen, start + MARGIN, end - 0.3),
        )
    assert got == expect
    # after the supervisor left, caller and agent are bridged again
    assert heard(caller_heard, t_call, t_after + 0.5, t_after + 2.5) == {AGENT_HZ}
    assert heard(agent_heard, t_call, t_after + 0.5, t_after + 2.5) == {CALLER_HZ}

    db = srv.db_path
    sessions = rows(db, "SELECT * FROM supervisor_sessions ORDER BY start")
    assert [s["result"] for s in sessions] == ["refused", "ended", "ended", "ended"]
    assert sessions[0]["supervisor"] == "1003"
    first, api, waited = sessions[1], sessions[2], sessions[3]
    assert [m["mode"] for m in json.loads(first["modes"])] == [
        "listen", "whisper", "barge", "listen"]
    assert first["ended_by"] == "supervisor" and first["agent"] == "1001" and first["joined"]
    assert api["origin"] == "api" and api["ended_by"] == "caller"
    assert [m["mode"] for m in json.loads(api["modes"])] == ["barge", "whisper"]
    assert waited["ended_by"] == "agent" and waited["joined"] - waited["start"] > 0.8
    tail = waited_heard[-int(2.5 * 8000):-int(0.5 * 8000)]
    assert {f for f in (CALLER_HZ, AGENT_HZ, SUPER_HZ)
            if audio.tone_present(tail, f, ratio=0.05)} == {CALLER_HZ, AGENT_HZ}

    # the call's recording: caller left, what the caller heard (the agent) right
    cdr = next(r for r in rows(db, "SELECT * FROM calls ORDER BY start")
               if r["called"] == "1001")
    assert cdr["recording"], cdr
    assert first["call_id"] == cdr["id"]
    rec = Path(cdr["recording"])
    stereo, rate = read_stereo(rec)
    left, right = stereo[:, 0], stereo[:, 1]
    assert rate == 8000 and len(left) > 8000 * 10
    window = (t_call + 1.0, t_listen - 0.2)
    assert heard(left, t_call, *window) == {CALLER_HZ}
    assert heard(right, t_call, *window) == {AGENT_HZ}
    # a supervisor is in the caller's recording only while barging
    assert heard(right, t_call, t_whisper + MARGIN, t_barge - 0.3) == {AGENT_HZ}
    assert heard(right, t_call, t_barge + MARGIN, t_listen2 - 0.3) == {AGENT_HZ, SUPER_HZ}


def read_stereo(path: Path) -> tuple[np.ndarray, int]:
    import wave

    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, 2).astype(np.float64), w.getframerate()
