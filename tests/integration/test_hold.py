"""Hold and resume by re-INVITE from a real SIP peer: SIPp (user 1002) calls baresip (1001),
holds with ``a=sendonly`` for 5 s and resumes with ``a=sendrecv``. 1001 receives the hold
music while it lasts and nothing from the silent SIPp before and after; the CDR counts the hold.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import rows
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp
from tests.integration.demo import USERS
from tests.integration.test_supervisor import AGENT_HZ, agent, closed

MUSIC = Path(__file__).parents[2] / "sounds" / "hold_music.wav"


def test_hold_music(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("baresip")
    require_binary("sox")
    tone = audio.make_tone_wav(artifacts / "tone.wav", (AGENT_HZ,), 30.0)
    srv = ServerProcess(artifacts).start()
    phone = agent(artifacts, "1001", tone, srv)
    try:
        with phone:
            phone.ctrl.wait_registered()
            block = ports.allocate(8)
            register(srv, "1002", block, artifacts / "reg_1002")
            held = run_sipp("uac_hold.xml", workdir=artifacts / "hold", ports=block,
                            remote_port=srv.sip_port, service="1001",
                            auth=("1002", USERS["1002"]), keys={"user": "1002"}, timeout=40)
            assert held.returncode == 0, held.summary() + srv.log_tail()
            assert closed(phone, 10)
            heard = audio.read_wav(phone.recordings()["heard"])[0]
    finally:
        srv.stop()

    # baresip's dump holds the frames it received: none while the silent SIPp talked, the
    # music for the 5 s of hold (a frame of it lost to a margin at each end)
    music = audio.read_wav(MUSIC)[0]
    assert 4.0 < len(heard) / 8000 < 6.0, len(heard) / 8000
    assert audio.rms(heard) > 0.02, audio.rms(heard)
    assert audio.best_match(heard[800:-800], music) > 0.8
    cdr = next(r for r in rows(srv.db_path, "SELECT * FROM calls") if r["caller"] == "1002")
    assert 4.0 < cdr["hold_seconds"] < 6.5, cdr
