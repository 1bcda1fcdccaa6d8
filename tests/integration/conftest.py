"""Fixtures of the integration tests: the server on its own ports, prompts and pcaps, peers.

The demo configuration they assume is described in demo.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio, pcap
from tests.helpers.artifacts import artifact_dir
from tests.helpers.server import ServerProcess
from tests.integration.demo import DTMF_PT, Media


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def media() -> Media:
    """Made once per run with espeak-ng + sox, under tests/artifacts/media/."""
    require_binary("espeak-ng")
    require_binary("sox")
    out = artifact_dir("_media" + os.environ.get("PYTEST_XDIST_WORKER", ""))  # one per worker
    caller = audio.make_speech_wav(out / "caller_en.wav", "Hello, I would like to order.")
    agent_a = audio.make_speech_wav(
        out / "agent_a_pl.wav", "Dzień dobry, w czym mogę pomóc?", voice="pl"
    )
    agent_b = audio.make_speech_wav(out / "agent_b_en.wav", "Sales department, good morning.")
    caller_pcap, dtmf_pcap = {}, {}
    for codec in ("PCMU", "PCMA"):
        caller_pcap[codec] = pcap.wav_to_pcap(caller, out / f"caller_{codec}.pcap", codec)
        dtmf_pcap[codec] = pcap.digits_to_pcap(
            "12#", out / f"dtmf_12hash_{codec}.pcap", pt=DTMF_PT, after=caller_pcap[codec]
        )
    return Media(caller, agent_a, agent_b, caller_pcap, dtmf_pcap)


@pytest.fixture
def server(artifacts: Path) -> Iterator[ServerProcess]:
    """The server with the demo config on this test's ports; stopped after the test."""
    srv = ServerProcess(artifacts).start()
    try:
        yield srv
        # a server that died during the test fails that test, whatever else it asserted
        assert srv.proc is not None and srv.proc.poll() is None, (
            f"server exited during the test\n{srv.log_tail()}"
        )
    finally:
        srv.stop()
