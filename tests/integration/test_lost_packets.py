"""Lost messages: an ACK that never comes, a re-INVITE that is never answered."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.baresip import BaresipAgent
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, SippResult, wait_until
from tests.integration.demo import LINE_TOLLFREE, USERS, Media

T1 = 0.5
TIMER_H = 64 * T1
_ENTRY = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(UDP|TCP) message (sent|received)[^\n]*\n\s*"
    r"(\S+ \S+)",
    re.M,
)


def trace_events(result: SippResult) -> list[tuple[float, str, str]]:
    """(time, 'sent'|'received', first line start) of every message in SIPp's -trace_msg log."""
    out = []
    for stamp, _transport, direction, first in _ENTRY.findall(result.messages):
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append((when, direction, first))
    return out


def test_no_ack_retransmits_200_then_bye(server: ServerProcess, artifacts: Path) -> None:
    require_binary("sipp")
    sipp = Sipp(
        "uac_no_ack.xml",
        workdir=artifacts,
        ports=ports.allocate(8),
        remote_port=server.sip_port,
        service=LINE_TOLLFREE,
        timeout=TIMER_H + 20,
    )
    with RtpSink(sipp.sink_port):
        result = sipp.start().wait()
    assert result.returncode == 0, result.summary()
    events = trace_events(result)
    oks = [t for t, d, first in events if d == "received" and first.startswith("SIP/2.0 200")]
    byes = [t for t, d, first in events if d == "received" and first.startswith("BYE ")]
    assert len(oks) >= 5, f"200 OK retransmitted too few times: {len(oks)}"
    assert byes, "no BYE after the ACK timeout"
    waited = byes[0] - oks[0]
    assert TIMER_H - 2 <= waited <= TIMER_H + 6, f"BYE came {waited:.1f} s after the 200"
    assert server.alive()
    if not server.is_stand_in:
        call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        assert cdr is not None, server.cdrs()
        assert cdr["hangup_cause"], cdr


def test_unanswered_reinvite(artifacts: Path, media: Media) -> None:
    """The server re-INVITEs answered calls (sip.session_refresh); 1002 is a SIPp far end that
    ignores re-INVITEs. Its client transaction times out (Timer B) and the server ends the
    call on both sides (RFC 3261 §14.1): BYE to the far end, BYE to the caller, CDR cause
    ``timeout``, server still up."""
    require_binary("sipp")
    require_binary("baresip")
    far_ports = ports.allocate(8)
    with ServerProcess(artifacts, overrides={"sip": {"session_refresh": 3}}) as server:
        # Register 1002 from the very port the far end then listens on.
        reg = Sipp(
            "uac_register_auth.xml",
            workdir=artifacts / "register",
            ports=far_ports,
            remote_port=server.sip_port,
            service="1002",
            auth=("1002", USERS["1002"]),
            timeout=15,
            keys={"contact_port": str(far_ports[0]), "expires": "300"},
        )
        assert reg.start().wait().returncode == 0, "SIPp could not register 1002"
        far = Sipp(
            "uas_ignore_reinvite.xml",
            workdir=artifacts / "far",
            ports=far_ports,
            timeout=90,
            extra=["-aa"],
            keys={"audio_pcap": str(media.caller_pcap["PCMU"])},
        )
        caller = BaresipAgent(
            artifacts / "a1001",
            "1001",
            USERS["1001"],
            registrar_port=server.sip_port,
            ports=ports.allocate(20),
            source_wav=media.agent_a_wav,
        )
        with RtpSink(far.sink_port), far:
            with caller:
                caller.ctrl.wait_registered()
                caller.dial(f"sip:1002@127.0.0.1:{server.sip_port}")
                caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
                # refresh after 3 s, Timer B 32 s later, then BYE both ways
                closed = wait_until(
                    lambda: bool(caller.ctrl.seen("CALL_CLOSED")),
                    timeout=3 + TIMER_H + 20,
                    interval=0.5,
                )
                assert closed, "the far end never answered the re-INVITE, yet the call stayed"
            result = far.wait(timeout=30)
        assert result.returncode == 0, result.summary()
        reinvites = [e for e in trace_events(result) if e[1] == "received" and
                     e[2].startswith("INVITE")]
        assert len(reinvites) >= 2, "the far end saw no re-INVITE"
        assert server.alive()
        cdr = server.wait_cdr(lambda r: r["called"] == "1002" and r["end"] is not None)
        assert cdr is not None and cdr["hangup_cause"] == "timeout", server.cdrs()
