"""Attended transfer by keys, ``*2<target>#`` (Asterisk's atxfer), from real phones.

baresip 1002 (440 Hz) calls baresip 1001 (1000 Hz), who presses ``*21003#``: the caller hears
the hold music while 1001 talks to 1003 (1800 Hz); 1001 hangs up and the caller hears 1003.
On a second call 1001 consults 1003 again and presses ``*``: 1003 is hung up and the caller
hears 1001 again. On a third, 1001 consults 1004, who has no phone: the caller is back at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import audio
from tests.helpers.api import http, rows
from tests.helpers.sipp import wait_until
from tests.integration.test_hold import MUSIC
from tests.integration.test_supervisor import AGENT_HZ, CALLER_HZ, SUPER_HZ, closed, heard
from tests.integration.test_transfer import connect, three_phones


def test_consult_then_complete_or_cancel_by_keys(artifacts: Path) -> None:
    srv, caller, agent_, target = three_phones(artifacts, 30.0)
    recordings: list[Path] = []
    try:
        with caller, agent_, target:
            for n, how in enumerate(("complete", "cancel")):
                connect(srv, caller, agent_, target)
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
            # 1004 has no phone registered: the caller comes back to 1001 at once
            connect(srv, caller, agent_)
            time.sleep(1.5)
            agent_.ctrl.command("sndcode *21004#")
            assert wait_until(lambda: "consult_failed" in srv.log_tail(), 10), srv.log_tail()
            time.sleep(3.0)
            assert len(caller.ctrl.seen("CALL_CLOSED")) == 2
            caller.ctrl.command("hangup")
            assert closed(caller, 10) and closed(agent_, 10)
            unreachable = audio.read_wav(caller.recordings()["heard"])[0]
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
    seconds = len(unreachable) / 8000
    assert heard(unreachable, 0.0, seconds - 2.5, seconds - 0.3) == {AGENT_HZ}
    cdrs = [r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002"]
    assert len(cdrs) == 3, cdrs
    events = rows(srv.db_path, "SELECT type, data FROM call_events WHERE call_id = ?",
                  cdrs[0]["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert [(m["kind"], m["by"], m["target"]) for m in moves] == [
        ("attended", "dtmf", "user:1003")], events


def test_consult_then_three_way_conference(artifacts: Path) -> None:
    """``*21003#`` then ``3``: the caller, 1001 and 1003 each hear the other two; 1001 hangs
    up and the caller and 1003 talk on; the caller hangs up and 1003 is hung up."""
    srv, caller, agent_, target = three_phones(artifacts, 30.0)
    try:
        with caller, agent_, target:
            connect(srv, caller, agent_, target)
            time.sleep(1.0)
            agent_.ctrl.command("sndcode *21003#")
            target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(2.0)
            agent_.ctrl.command("sndcode 3")
            assert wait_until(lambda: '"conference"' in srv.log_tail(), 10), srv.log_tail()
            t_conf = time.time()
            time.sleep(4.5)
            t_left = time.time()
            agent_.ctrl.command("hangup")
            assert closed(agent_, 10)
            left_late = time.time() - t_left
            time.sleep(4.5)
            assert not caller.ctrl.seen("CALL_CLOSED") and not target.ctrl.seen("CALL_CLOSED")
            t_end = time.time()
            caller.ctrl.command("hangup")
            assert closed(caller, 10) and closed(target, 10)
            end_late = time.time() - t_end
            wavs = {p: audio.read_wav(p.recordings()["heard"])[0]
                    for p in (caller, agent_, target)}
    finally:
        srv.stop()

    # each dump ends when its phone hung up and is gapless from the consultation on: align
    # it to wall time from its end, which came between the hang-up command and the phone
    # reporting it closed (``late`` later): a window is cut short by that much, so none of
    # it can lie outside the phase it checks however slowly a loaded box hung up
    def window(phone: object, end: float, late: float, a: float, b: float) -> set[float]:
        samples = wavs[phone]  # type: ignore[index]
        assert b - late - a > 1.0, f"the phone took {late:.1f} s to hang up"
        return heard(samples, end - len(samples) / 8000, a, b - late)

    conference, after = (t_conf + 0.8, t_left - 0.3), (t_left + 0.8, t_end - 0.3)
    assert window(caller, t_end, end_late, *conference) == {AGENT_HZ, SUPER_HZ}
    assert window(agent_, t_left, left_late, *conference) == {CALLER_HZ, SUPER_HZ}
    assert window(target, t_end, end_late, *conference) == {CALLER_HZ, AGENT_HZ}
    assert window(caller, t_end, end_late, *after) == {SUPER_HZ}
    assert window(target, t_end, end_late, *after) == {CALLER_HZ}


def test_consult_by_api_then_complete(artifacts: Path) -> None:
    """``{"to": "1003", "attended": true}``: the caller on music, 1001 talks to 1003; an
    action before 1003 answered, or a bad one, is refused; ``complete`` releases 1001 and the
    caller hears 1003."""
    srv, caller, agent_, target = three_phones(artifacts, 30.0)
    try:
        with caller, agent_, target:
            connect(srv, caller, agent_, target)
            live = http(srv, "GET", "/api/calls")[1]["live"]
            path = "/api/calls/{}/transfer".format(
                next(c["id"] for c in live if c["caller"] == "1002"))
            assert http(srv, "POST", path, {"action": "complete"})[0] == 409  # no consultation
            status, body = http(srv, "POST", path, {"to": "1003", "attended": True})
            assert (status, body["status"]) == (202, "consulting"), body
            target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(2.0)
            assert http(srv, "POST", path, {"action": "later"})[0] == 400
            assert http(srv, "POST", path, {"to": "1003"})[0] == 409  # the caller is on hold
            assert http(srv, "POST", path, {"action": "complete"})[0] == 202
            assert closed(agent_, 10), "the consulting agent was not released"
            time.sleep(3.0)
            assert not caller.ctrl.seen("CALL_CLOSED")
            caller.ctrl.command("hangup")
            assert closed(caller, 10) and closed(target, 10)
            samples = audio.read_wav(caller.recordings()["heard"])[0]
    finally:
        srv.stop()
    seconds = len(samples) / 8000
    assert heard(samples, 0.0, seconds - 2.5, seconds - 0.3) == {SUPER_HZ}
    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002")
    events = rows(srv.db_path, "SELECT type, data FROM call_events WHERE call_id = ?", cdr["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert [(m["kind"], m["by"]) for m in moves] == [("attended", "api")], events
