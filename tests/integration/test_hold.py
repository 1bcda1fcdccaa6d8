"""Hold and resume by re-INVITE from a real SIP peer: SIPp (user 1002) calls baresip (1001),
holds with ``a=sendonly`` for 5 s and resumes with ``a=sendrecv``. 1001 receives the hold
music while it lasts and nothing from the silent SIPp before and after; the CDR counts the hold
and the call's timeline has both steps. A queue's caller held by its agent (baresip's ``hold``)
hears the queue's own ``music``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio
from tests.helpers.api import rows
from tests.helpers.phones import agent, closed, sipp_and_baresip
from tests.helpers.server import ServerProcess
from tests.integration.test_supervisor import AGENT_HZ, CALLER_HZ, SUPER_HZ, heard

MUSIC = Path(__file__).parents[2] / "sounds" / "hold_music.wav"


def test_hold_music(artifacts: Path) -> None:
    with sipp_and_baresip(artifacts, "1002", "1001", AGENT_HZ) as (srv, sipp, phone):
        sipp.run("uac_hold.xml", artifacts / "hold", "1001")
        assert closed(phone, 10)
        heard = audio.read_wav(phone.recordings()["heard"])[0]

    # baresip's dump holds the frames it received: none while the silent SIPp talked, the
    # music for the 5 s of hold (a frame of it lost to a margin at each end)
    music = audio.read_wav(MUSIC)[0]
    assert 4.0 < len(heard) / 8000 < 6.0, len(heard) / 8000
    assert audio.rms(heard) > 0.02, audio.rms(heard)
    assert audio.best_match(heard[800:-800], music) > 0.8
    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002")
    assert 4.0 < cdr["hold_seconds"] < 6.5, cdr
    events = rows(srv.db_path, "SELECT data FROM call_events WHERE call_id = ? AND type = 'hold'"
                  " ORDER BY ts", cdr["id"])
    assert [json.loads(e["data"]) for e in events] == [
        {"party": "1002", "on": True}, {"party": "1002", "on": False}], events


def test_queue_music_on_hold(artifacts: Path) -> None:
    """1002 dials the sales line (straight to the queue, whose music is a 1800 Hz tone); the
    agent 1001 answers, holds for 4 s and resumes: the caller hears the agent, the queue's
    music, then the agent again."""
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 20.0)
             for hz in (CALLER_HZ, AGENT_HZ, SUPER_HZ)}
    srv = ServerProcess(artifacts, overrides={"queues": [
        {"name": "sales", "members": ["1001"], "ring_timeout": 10, "whisper": False,
         "announce_every": None, "music": str(tones[SUPER_HZ])}]}).start()
    caller = agent(artifacts, "1002", tones[CALLER_HZ], srv)
    agent_ = agent(artifacts, "1001", tones[AGENT_HZ], srv)
    try:
        with caller, agent_:
            for phone in (caller, agent_):
                phone.ctrl.wait_registered()
            t0 = time.time()
            caller.dial(f"sip:0800000001@127.0.0.1:{srv.sip_port}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            time.sleep(2.5)
            t_hold = time.time()
            agent_.ctrl.command("hold")
            time.sleep(4.0)
            t_resume = time.time()
            agent_.ctrl.command("resume")
            time.sleep(3.0)
            caller.ctrl.command("hangup")
            assert closed(caller, 10) and closed(agent_, 10)
            samples = audio.read_wav(caller.recordings()["heard"])[0]
    finally:
        srv.stop()
    assert heard(samples, t0, t_hold - 2.0, t_hold - 0.3) == {AGENT_HZ}
    assert heard(samples, t0, t_hold + 1.0, t_resume - 0.3) == {SUPER_HZ}
    assert heard(samples, t0, t_resume + 1.0, t_resume + 2.5) == {AGENT_HZ}
