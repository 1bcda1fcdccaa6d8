"""Agent 1001 calls agent 1002 through the server; each hears what the other says."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.baresip import BaresipAgent
from tests.helpers.server import ServerProcess
from tests.integration.demo import USERS, Media

TALK_SECONDS = 7.0  # the words (2.5 s) repeat every 2.75 s: one whole repeat in any 5.3 s heard
MATCH = 0.6  # best_match of the other side's words in a recording (1.0 = exact copy)


def test_agent_calls_agent(server: ServerProcess, artifacts: Path, media: Media) -> None:
    require_binary("baresip")
    caller = BaresipAgent(
        artifacts / "a1001",
        "1001",
        USERS["1001"],
        registrar_port=server.sip_port,
        ports=ports.allocate(20),
        source_wav=media.agent_a_wav,
    )
    callee = BaresipAgent(
        artifacts / "a1002",
        "1002",
        USERS["1002"],
        registrar_port=server.sip_port,
        ports=ports.allocate(20),
        source_wav=media.agent_b_wav,
        answermode="auto",
    )
    with callee, caller:
        callee.ctrl.wait_registered()
        caller.ctrl.wait_registered()
        caller.dial(f"sip:1002@127.0.0.1:{server.sip_port}")
        callee.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
        caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(TALK_SECONDS)
        caller.ctrl.command("hangup")
        caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
        callee.ctrl.wait_event("CALL_CLOSED", timeout=10)
    # read the dumps once baresip has quit: only then are they closed (WAV header complete)
    heard_by_caller = audio.read_wav(caller.recordings()["heard"])[0]
    heard_by_callee = audio.read_wav(callee.recordings()["heard"])[0]
    words_a = audio.read_wav(media.agent_a_wav)[0]
    words_b = audio.read_wav(media.agent_b_wav)[0]
    assert audio.active_rms(heard_by_caller) > 5 * audio.SILENCE_RMS, "1001 heard silence"
    assert audio.active_rms(heard_by_callee) > 5 * audio.SILENCE_RMS, "1002 heard silence"
    assert audio.best_match(words_b, heard_by_caller) > MATCH, "1001 did not hear 1002's words"
    assert audio.best_match(words_a, heard_by_callee) > MATCH, "1002 did not hear 1001's words"
    if not server.is_stand_in:
        cdr = server.wait_cdr(lambda r: r["called"] == "1002" and r["end"] is not None)
        assert cdr is not None, server.cdrs()
        assert cdr["caller"] == "1001"
