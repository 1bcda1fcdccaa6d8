"""Fixtures of the integration tests: the server on its own ports, prompts and pcaps, peers.

The demo configuration (config.yaml) is what these tests assume: lines 0800123456 and
0801123456 take calls from trunk "pstn" (127.0.0.1) without auth; users 1001-1004 (passwords
agent1001..agent1004) and 2001 (super2001) register with digest auth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio, pcap
from tests.helpers.artifacts import artifact_dir
from tests.helpers.server import ServerProcess

LINE_TOLLFREE = "0800123456"
LINE_SHARED_COST = "0801123456"
USERS = {
    "1001": "agent1001",
    "1002": "agent1002",
    "1003": "agent1003",
    "1004": "agent1004",
    "2001": "super2001",
}
DTMF_PT = 101


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Media:
    """Test prompts (8 kHz mono WAV) and the pcaps SIPp plays."""

    caller_wav: Path  # what a caller says (English, about 2 s)
    agent_a_wav: Path  # what agent A says (Polish)
    agent_b_wav: Path  # what agent B says (English, other words)
    caller_pcap: dict[str, Path]  # codec -> audio pcap
    dtmf_pcap: dict[str, Path]  # codec -> "12#" pcap continuing the audio stream


@pytest.fixture(scope="session")
def media() -> Media:
    """Made once per run with espeak-ng + sox, under tests/artifacts/_media/."""
    require_binary("espeak-ng")
    require_binary("sox")
    out = artifact_dir("_media")
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


def pcap_seconds(path: Path) -> float:
    packets = pcap.read_pcap(path)
    return packets[-1].time + 0.02 if packets else 0.0
