"""The recording follows the caller through a transfer (issue 13): a recorded call (the
``recording.calls`` policy) of baresip 1002 with 1001 is moved by the API to 1003; the call's
one file goes on after 1001 leaves, its right side (what the caller hears) 1001's tone first,
then 1003's, up to the caller's hang-up; also when the transfer is to a queue (``sales``,
whose one member is 1003), so that 1001 leaves before 1003 answers.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio
from tests.helpers.api import http, rows
from tests.helpers.server import ServerProcess
from tests.integration.test_supervisor import (
    AGENT_HZ,
    CALLER_HZ,
    SUPER_HZ,
    agent,
    closed,
    read_stereo,
)


def tones_in(samples: audio.Samples, start: float, end: float) -> set[float]:
    block = samples[int(start * 8000):int(end * 8000)]
    assert len(block) > 4000, (start, end, len(samples))
    return {f for f in (CALLER_HZ, AGENT_HZ, SUPER_HZ) if audio.tone_present(block, f, ratio=0.05)}


@pytest.mark.parametrize("to", ["1003", "sales"])
def test_recording_follows_the_caller(artifacts: Path, to: str) -> None:
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 14.0)
             for hz in (CALLER_HZ, AGENT_HZ, SUPER_HZ)}
    srv = ServerProcess(artifacts, overrides={"recording": {"calls": True}, "queues": [
        {"name": "sales", "members": ["1003"], "whisper": False, "announce_every": None}]}).start()
    try:
        caller, agent_, target = (agent(artifacts, user, tones[hz], srv) for user, hz in
                                  (("1002", CALLER_HZ), ("1001", AGENT_HZ), ("1003", SUPER_HZ)))
        with caller, agent_, target:
            for phone in (caller, agent_, target):
                phone.ctrl.wait_registered()
            caller.dial(f"sip:1001@127.0.0.1:{srv.sip_port}")
            agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(3.0)
            live = http(srv, "GET", "/api/calls")[1]["live"]
            call_id = next(c["id"] for c in live if c["caller"] == "1002")
            assert http(srv, "POST", f"/api/calls/{call_id}/transfer", {"to": to})[0] == 202
            target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            assert closed(agent_, 10), "the transferor was not released"
            time.sleep(4.0)
            caller.ctrl.command("hangup")
            assert closed(caller, 10) and closed(target, 10)
    finally:
        srv.stop()

    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["id"] == call_id)
    assert cdr["recording"], cdr
    stereo, rate = read_stereo(Path(cdr["recording"]))
    left, right = stereo[:, 0], stereo[:, 1]
    seconds = len(left) / rate
    assert tones_in(right, 1.0, 2.5) == {AGENT_HZ}
    assert tones_in(left, 1.0, 2.5) == {CALLER_HZ}
    # the file ran on to the caller's hang-up, 1003 on the caller's side of it at the end
    assert seconds > 7.0, seconds
    assert tones_in(right, seconds - 3.0, seconds - 0.5) == {SUPER_HZ}
    assert tones_in(left, seconds - 3.0, seconds - 0.5) == {CALLER_HZ}
