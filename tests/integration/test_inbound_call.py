"""A caller from the PSTN trunk dials the hotline: prompt audio comes back, digits are
collected, the call is hung up cleanly and recorded in the CDRs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp
from tests.integration.demo import DTMF_PT, LINE_TOLLFREE, Media, pcap_seconds

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}


@pytest.mark.parametrize(
    ("codec", "transport"), [("PCMU", "udp"), ("PCMA", "udp"), ("PCMU", "tcp")]
)
def test_inbound_call_audio_and_dtmf(
    server: ServerProcess, artifacts: Path, media: Media, codec: str, transport: str
) -> None:
    require_binary("sipp")
    pt = PAYLOAD_TYPES[codec]
    sipp = Sipp(
        "uac_call_dtmf.xml",
        workdir=artifacts,
        ports=ports.allocate(8),
        remote_port=server.sip_port,
        service=LINE_TOLLFREE,
        transport=transport,
        duration_ms=int(pcap_seconds(media.caller_pcap[codec]) * 1000) + 300,
        timeout=40,
        keys={
            "codec_pt": str(pt),
            "codec_name": codec,
            "audio_pcap": str(media.caller_pcap[codec]),
            "dtmf_pcap": str(media.dtmf_pcap[codec]),
        },
    )
    with RtpSink(sipp.sink_port) as sink:
        result = sipp.start().wait()
        heard = sink.audio(pt)
        audio.write_wav(artifacts / "heard_by_caller.wav", heard)
        counts = sink.payload_types()
    assert result.returncode == 0, result.summary()
    assert counts.get(pt, 0) >= 50, f"server sent too little {codec}: {counts}"
    assert set(counts) <= {pt, DTMF_PT, 13}, f"payload types not in the offer: {counts}"
    assert audio.active_rms(heard) > 5 * audio.SILENCE_RMS, "the caller heard only silence"
    assert server.alive()
    if server.is_stand_in:
        return
    call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
    cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
    assert cdr is not None, f"no finished CDR for {call_id}: {server.cdrs()}"
    assert cdr["digits"] == "12#"
    assert str(cdr["codec"]).upper().startswith(codec), cdr
    assert cdr["called"] == LINE_TOLLFREE
    assert cdr["answer"] is not None
    assert cdr["rtp_jitter_ms"] is not None and 0 <= cdr["rtp_lost_pct"] < 2, cdr


def test_a_carriers_e164_number_reaches_the_tollfree_line(
    server: ServerProcess, artifacts: Path, media: Media
) -> None:
    """The trunk sends +48800123456 (E.164): line 0800123456's IVR answers it."""
    require_binary("sipp")
    sipp = Sipp(
        "uac_call_dtmf.xml", workdir=artifacts, ports=ports.allocate(8),
        remote_port=server.sip_port, service="+48800123456", transport="udp",
        duration_ms=int(pcap_seconds(media.caller_pcap["PCMU"]) * 1000) + 300, timeout=40,
        keys={"codec_pt": "0", "codec_name": "PCMU",
              "audio_pcap": str(media.caller_pcap["PCMU"]),
              "dtmf_pcap": str(media.dtmf_pcap["PCMU"])},
    )
    with RtpSink(sipp.sink_port) as sink:
        result = sipp.start().wait()
        heard = sink.audio(0)
    assert result.returncode == 0, result.summary()
    assert audio.active_rms(heard) > 5 * audio.SILENCE_RMS, "the caller heard only silence"
    if server.is_stand_in:
        return
    call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
    cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
    assert cdr is not None, f"no finished CDR for {call_id}: {server.cdrs()}"
    assert (cdr["line"], cdr["digits"]) == (LINE_TOLLFREE, "12#"), cdr
