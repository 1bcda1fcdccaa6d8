"""A prompt file replaced while the server runs (README: "Replace any file with a studio
recording of the same name"): the call in progress keeps the old audio, the next call hears the
new file, here a 48 kHz pure tone in place of the Polish welcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.artifacts import REPO
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, wait_until
from tests.integration.demo import LINE_TOLLFREE

TONE_HZ = 1800.0  # far from anything the spoken welcome sustains
HANGUP_MS = 3000  # both calls hang up inside the welcome (pl: 3.9 s; the tone: 5 s)


def caller(server: ServerProcess, workdir: Path) -> Sipp:
    """A SIPp caller on the Polish toll-free line who listens for HANGUP_MS, then hangs up."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    scenario = workdir / "uac_listen.xml"
    scenario.write_text(template.replace("<!-- STEPS -->", f'<pause milliseconds="{HANGUP_MS}"/>'),
                        encoding="iso-8859-1")
    return Sipp(str(scenario), workdir=workdir, ports=ports.allocate(8),
                remote_port=server.sip_port, service=LINE_TOLLFREE, timeout=30,
                keys={"codec_pt": "0", "codec_name": "PCMU"})


def tone_blocks(heard: np.ndarray) -> list[bool]:
    """Per 0.5 s block of what a caller heard: is the replacement tone in it?"""
    blocks = [heard[i : i + 4000] for i in range(0, len(heard) - 3999, 4000)]
    return [audio.tone_present(b, TONE_HZ, ratio=0.2) for b in blocks]


def loaded(server: ServerProcess, path: Path) -> bool:
    for line in server.log_text().splitlines():
        if line.startswith("{") and '"prompt_loaded"' in line:
            record = json.loads(line)
            if record.get("event") == "prompt_loaded" and record.get("path") == str(path):
                return True
    return False


def test_replaced_prompt_reaches_the_next_call(artifacts: Path) -> None:
    require_binary("sipp")
    sounds = artifacts / "sounds"
    shutil.rmtree(sounds, ignore_errors=True)
    shutil.copytree(REPO / "sounds", sounds)
    welcome = sounds / "pl" / "welcome.wav"
    with ServerProcess(artifacts, overrides={"sounds": str(sounds)}) as srv:
        first = caller(srv, artifacts / "first")
        with RtpSink(first.sink_port) as sink:
            first.start()
            assert sink.wait_packets(25, 10), "the first call heard nothing"
            studio = audio.make_tone_wav(artifacts / "studio.wav", (TONE_HZ,), 5.0, rate=48000)
            studio.replace(welcome)
            assert wait_until(lambda: loaded(srv, welcome), 10), srv.log_tail()
            first_result = first.wait()
            heard_first = sink.audio(0)
        second = caller(srv, artifacts / "second")
        with RtpSink(second.sink_port) as sink:
            second_result = second.start().wait()
            heard_second = sink.audio(0)
        assert srv.alive()
    audio.write_wav(artifacts / "heard_first.wav", heard_first)
    audio.write_wav(artifacts / "heard_second.wav", heard_second)
    assert first_result.returncode == 0, first_result.summary()
    assert second_result.returncode == 0, second_result.summary()
    # the call in progress went on with the old welcome, speech to the end
    assert audio.active_rms(heard_first) > 5 * audio.SILENCE_RMS
    assert not any(tone_blocks(heard_first)), tone_blocks(heard_first)
    # the next call heard the new file, resampled from 48 kHz, from its first second on
    blocks = tone_blocks(heard_second)
    assert len(blocks) >= 4 and all(blocks[:4]), blocks
