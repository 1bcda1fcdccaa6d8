"""pyVoIP registers as agent 1003 and takes a call from baresip 1001, audio both ways."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.baresip import BaresipAgent
from tests.helpers.pyvoip_agent import PyVoipAgent
from tests.helpers.server import ServerProcess
from tests.integration.demo import USERS, Media

MATCH = 0.6


def test_pyvoip_agent_receives_call(server: ServerProcess, artifacts: Path, media: Media) -> None:
    require_binary("baresip")
    phone = PyVoipAgent(
        "1003",
        USERS["1003"],
        registrar_port=server.sip_port,
        ports=ports.allocate(20),
        play_wav=media.agent_b_wav,
        call_seconds=6.0,
        workdir=artifacts,
    )
    caller = BaresipAgent(
        artifacts / "a1001",
        "1001",
        USERS["1001"],
        registrar_port=server.sip_port,
        ports=ports.allocate(20),
        source_wav=media.agent_a_wav,
    )
    with phone, caller:
        caller.ctrl.wait_registered()
        caller.dial(f"sip:1003@127.0.0.1:{server.sip_port}")
        record = phone.wait_call(timeout=20)
        assert record is not None, "pyVoIP never got the call"
        caller.ctrl.wait_event("CALL_CLOSED", timeout=15)  # pyVoIP hangs up after 6 s
    # baresip's dump is complete once it has quit, not at CALL_CLOSED
    heard_by_caller = audio.read_wav(caller.recordings()["heard"])[0]
    heard_by_phone = record.audio()
    assert audio.active_rms(heard_by_phone) > 5 * audio.SILENCE_RMS, "pyVoIP heard silence"
    assert audio.best_match(audio.read_wav(media.agent_a_wav)[0], heard_by_phone) > MATCH
    assert audio.best_match(audio.read_wav(media.agent_b_wav)[0], heard_by_caller) > MATCH
