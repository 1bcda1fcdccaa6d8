"""Attended transfer by keys, ``*2<target>#`` (Asterisk's atxfer), from real phones.

baresip 1002 (440 Hz) calls baresip 1001 (1000 Hz), who presses ``*21003#``: the caller hears
the hold music while 1001 talks to 1003 (1800 Hz); 1001 hangs up and the caller hears 1003.
On a second call 1001 consults 1003 again and presses ``*``: 1003 is hung up and the caller
hears 1001 again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import audio
from tests.helpers.api import rows
from tests.integration.test_hold import MUSIC
from tests.integration.test_supervisor import AGENT_HZ, SUPER_HZ, closed, heard
from tests.integration.test_transfer import three_phones


def test_consult_then_complete_or_cancel_by_keys(artifacts: Path) -> None:
    srv, caller, agent_, target = three_phones(artifacts, 30.0)
    recordings: list[Path] = []
    try:
        with caller, agent_, target:
            for phone in (caller, agent_, target):
                phone.ctrl.wait_registered()
            sip = f"127.0.0.1:{srv.sip_port}"
            for n, how in enumerate(("complete", "cancel")):
                caller.dial(f"sip:1001@{sip}")
                agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                time.sleep(2.0)
                agent_.ctrl.command("sndcode *21003#")
                target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                time.sleep(3.0)
                assert not caller.ctrl.seen("CALL_CLOSED")[n:], how
                if how == "complete":
                    agent_.ctrl.command("hangup")
                    assert closed(agent_, 10)
                else:
                    agent_.ctrl.command("sndcode *")
                    assert closed(target, 10), "cancel: the target was not hung up"
                time.sleep(3.5)
                assert len(caller.ctrl.seen("CALL_CLOSED")) == n, how
                caller.ctrl.command("hangup")
                assert closed(caller, 10)
                assert closed(target if how == "complete" else agent_, 10), how
                recordings.append(caller.recordings()["heard"])
    finally:
        srv.stop()

    # baresip's dump holds the frames received, so the recording's own order is checked: the
    # agent, the music (every half second has sound: never silence), then the target or the
    # agent again
    music = audio.read_wav(MUSIC)[0]
    for wav, back in zip(recordings, (SUPER_HZ, AGENT_HZ), strict=True):
        samples = audio.read_wav(wav)[0]
        seconds = len(samples) / 8000
        halves = [samples[i:i + 4000] for i in range(0, len(samples) - 8000, 4000)]
        assert min(audio.rms(h) for h in halves) > 0.005, wav  # digital silence: 0
        assert heard(samples, 0.0, 0.3, 1.5) == {AGENT_HZ}, wav
        assert sum(audio.best_match(h, music) > 0.8 for h in halves) >= 3, wav
        assert heard(samples, 0.0, seconds - 2.5, seconds - 0.3) == {back}, wav
    cdrs = [r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002"]
    assert len(cdrs) == 2, cdrs
    events = rows(srv.db_path, "SELECT type, data FROM call_events WHERE call_id = ?",
                  cdrs[0]["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert [(m["kind"], m["by"], m["target"]) for m in moves] == [
        ("attended", "dtmf", "user:1003")], events
