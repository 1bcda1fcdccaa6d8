"""Attended transfer by REFER with Replaces (RFC 5589 §7) from a real SIP peer.

SIPp as 1001 calls baresip 1002 (saying 440 Hz) and holds it: 1002 hears the hold music.
A second SIPp as 1001 calls baresip 1003 (1800 Hz), talks, and REFERs with a Replaces naming
the held call. The server answers 202 and NOTIFYs 200, releases both of 1001's legs (BYE),
and 1002 and 1003 hear each other; the held call keeps one record with an attended
``transferred`` event, and 1003 gets its card (``agent.offer``) as it is joined.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import http, rows
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.demo import USERS
from tests.integration.test_hold import MUSIC
from tests.integration.test_supervisor import CALLER_HZ, SUPER_HZ, agent, closed, heard


def test_attended_transfer_by_refer_with_replaces(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 30.0)
             for hz in (CALLER_HZ, SUPER_HZ)}
    srv = ServerProcess(artifacts).start()
    customer = agent(artifacts, "1002", tones[CALLER_HZ], srv)
    target = agent(artifacts, "1003", tones[SUPER_HZ], srv)
    dialog_file = artifacts / "held_dialog.txt"
    try:
        with customer, target:
            customer.ctrl.wait_registered()
            target.ctrl.wait_registered()
            held_block, refer_block = ports.allocate(8), ports.allocate(8)
            register(srv, "1001", held_block, artifacts / "reg_held")
            register(srv, "1001", refer_block, artifacts / "reg_refer")  # two phones of 1001
            held = Sipp("uac_held.xml", workdir=artifacts / "held", ports=held_block,
                        remote_port=srv.sip_port, service="1002", auth=("1001", USERS["1001"]),
                        keys={"user": "1001", "dialog_file": str(dialog_file)},
                        timeout=90).start()
            assert wait_until(lambda: dialog_file.exists() and dialog_file.read_text().strip(),
                              30), srv.log_tail()
            time.sleep(2.5)
            replaces = quote(dialog_file.read_text().strip(), safe="")
            refer = Sipp("uac_refer_replaces.xml", workdir=artifacts / "refer", ports=refer_block,
                         remote_port=srv.sip_port, service="1003", auth=("1001", USERS["1001"]),
                         keys={"user": "1001", "target": "1002", "replaces": replaces},
                         timeout=60).start()
            referred = refer.wait()
            assert referred.returncode == 0, referred.summary() + srv.log_tail()
            released = held.wait(timeout=30)
            assert released.returncode == 0, released.summary() + srv.log_tail()
            time.sleep(3.5)
            assert not customer.ctrl.seen("CALL_CLOSED") and not target.ctrl.seen("CALL_CLOSED")
            popped = http(srv, "GET", "/api/agents/1003/offer")  # its phone rang for 1001 only
            customer.ctrl.command("hangup")
            assert closed(customer, 10)
            assert closed(target, 10), "the target was not hung up with the customer"
            customer_heard = audio.read_wav(customer.recordings()["heard"])[0]
            target_heard = audio.read_wav(target.recordings()["heard"])[0]
    finally:
        srv.stop()

    # baresip's dumps hold only the frames received (the SIPp transferor sends none): the
    # customer got the hold music, then the target's tone; the target got the customer's
    seconds = len(customer_heard) / 8000
    assert audio.best_match(customer_heard[800:12800], audio.read_wav(MUSIC)[0]) > 0.6
    assert heard(customer_heard, 0.0, seconds - 2.5, seconds - 0.3) == {SUPER_HZ}
    assert heard(target_heard, 0.0, 0.3, len(target_heard) / 8000 - 0.3) == {CALLER_HZ}

    db = srv.db_path
    held_cdrs = [r for r in rows(db, "SELECT * FROM calls") if r["called"] == "1002"]
    assert len(held_cdrs) == 1, held_cdrs
    events = rows(db, "SELECT type, data FROM call_events WHERE call_id = ?", held_cdrs[0]["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert len(moves) == 1 and moves[0]["kind"] == "attended", events
    assert moves[0]["target"] == "user:1003" or moves[0]["transferee"] == "1003", moves
    assert popped[0] == 200 and popped[1]["call_id"] == held_cdrs[0]["id"], popped
    assert popped[1]["why"] == {"kind": "transfer"}, popped


def test_invite_with_replaces_takes_over_the_leg(artifacts: Path) -> None:
    """1001 holds its call to baresip 1002 on one SIPp phone; its second SIPp phone sends an
    INVITE with Replaces naming that call: 200, the first phone gets the BYE, 1002 stays
    until the new phone hangs up, and the call keeps one record (``by`` replaces)."""
    require_binary("sipp")
    require_binary("baresip")
    require_binary("sox")
    tone = audio.make_tone_wav(artifacts / "tone.wav", (CALLER_HZ,), 30.0)
    srv = ServerProcess(artifacts).start()
    customer = agent(artifacts, "1002", tone, srv)
    dialog_file = artifacts / "held_dialog.txt"
    try:
        with customer:
            customer.ctrl.wait_registered()
            held_block, new_block = ports.allocate(8), ports.allocate(8)
            register(srv, "1001", held_block, artifacts / "reg_held")
            register(srv, "1001", new_block, artifacts / "reg_new")
            held = Sipp("uac_held.xml", workdir=artifacts / "held", ports=held_block,
                        remote_port=srv.sip_port, service="1002", auth=("1001", USERS["1001"]),
                        keys={"user": "1001", "dialog_file": str(dialog_file)},
                        timeout=90).start()
            assert wait_until(lambda: dialog_file.exists() and dialog_file.read_text().strip(),
                              30), srv.log_tail()
            replaces = dialog_file.read_text().strip()
            taken = Sipp("uac_invite_replaces.xml", workdir=artifacts / "new", ports=new_block,
                         remote_port=srv.sip_port, service="1002", auth=("1001", USERS["1001"]),
                         keys={"user": "1001", "replaces": replaces}, timeout=60).start()
            released = held.wait(timeout=40)
            assert released.returncode == 0, released.summary() + srv.log_tail()
            assert not customer.ctrl.seen("CALL_CLOSED")
            ended = taken.wait()
            assert ended.returncode == 0, ended.summary() + srv.log_tail()
            assert closed(customer, 10)
    finally:
        srv.stop()

    cdrs = [r for r in rows(srv.db_path, "SELECT * FROM calls") if r["called"] == "1002"]
    assert len(cdrs) == 1, cdrs
    events = rows(srv.db_path, "SELECT type, data FROM call_events WHERE call_id = ?",
                  cdrs[0]["id"])
    moves = [json.loads(e["data"]) for e in events if e["type"] == "transferred"]
    assert [(m["by"], m["kind"]) for m in moves] == [("replaces", "attended")], events


def test_attended_transfer_of_a_queue_call_by_api(artifacts: Path) -> None:
    """A trunk caller (SIPp) reaches agent 1001 through queue ``sales``; the API consults
    1003 for 1001 and completes: 1001 is released, the queue log says attendedtransfer, and
    1003 hanging up ends the caller's call."""
    require_binary("sipp")
    require_binary("baresip")
    require_binary("sox")
    tones = {hz: audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,), 30.0)
             for hz in (CALLER_HZ, SUPER_HZ)}
    overrides = {"queues": [{"name": "sales", "members": ["1001"], "wrapup": 1,
                             "ring_timeout": 5, "whisper": False, "announce_every": None}]}
    srv = ServerProcess(artifacts, overrides=overrides).start()
    agent_ = agent(artifacts, "1001", tones[CALLER_HZ], srv)
    target = agent(artifacts, "1003", tones[SUPER_HZ], srv)
    db = srv.db_path
    try:
        with agent_, target:
            agent_.ctrl.wait_registered()
            target.ctrl.wait_registered()
            caller = Sipp("uac_queue_call.xml", workdir=artifacts / "caller",
                          ports=ports.allocate(8), remote_port=srv.sip_port,
                          service="0800000001", timeout=60).start()
            assert wait_until(lambda: rows(db, "SELECT id FROM queue_log WHERE event = "
                                               "'connect'"), 20, 0.2), srv.log_tail()
            live = http(srv, "GET", "/api/calls")[1]["live"]
            path = "/api/calls/{}/transfer".format(
                next(c["id"] for c in live if c["caller"].startswith("4822000")))
            assert http(srv, "POST", path, {"to": "1003", "attended": True})[0] == 202
            target.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
            assert http(srv, "POST", path, {"action": "complete"})[0] == 202
            assert closed(agent_, 10), "the agent was not released" + srv.log_tail()
            time.sleep(1.0)
            target.ctrl.command("hangup")
            assert closed(target, 10)
            ended = caller.wait(30)
            assert ended.returncode == 0, ended.summary() + srv.log_tail()
    finally:
        srv.stop()
    log = rows(db, "SELECT event, agent, detail FROM queue_log ORDER BY id")
    assert [r["event"] for r in log] == ["enter", "connect", "attendedtransfer"], log
    assert (log[2]["agent"], log[2]["detail"]) == ("1001", "user:1003"), log
