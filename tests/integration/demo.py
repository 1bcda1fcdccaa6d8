"""The demo configuration the integration tests assume (config.yaml), and test media types.

Lines 0800123456 and 0801123456 take calls from trunk "pstn" (127.0.0.1) without auth; users
1001-1004 (passwords agent1001..agent1004) and 2001 (super2001) register with digest auth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers import pcap

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


@dataclass(frozen=True)
class Media:
    """Test prompts (8 kHz mono WAV) and the pcaps SIPp plays."""

    caller_wav: Path  # what a caller says (English, about 2 s)
    agent_a_wav: Path  # what agent A says (Polish)
    agent_b_wav: Path  # what agent B says (English, other words)
    caller_pcap: dict[str, Path]  # codec -> audio pcap
    dtmf_pcap: dict[str, Path]  # codec -> "12#" pcap continuing the audio stream


def pcap_seconds(path: Path) -> float:
    """Play time of a pcap (last packet time + one 20 ms packet)."""
    packets = pcap.read_pcap(path)
    return packets[-1].time + 0.02 if packets else 0.0
