"""Lost messages: an ACK that never comes, a re-INVITE that is never answered."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.baresip import BaresipAgent, CtrlError
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


def test_unanswered_reinvite(server: ServerProcess, artifacts: Path, media: Media) -> None:
    """1002 is a SIPp far end that ignores re-INVITEs; 1001 (baresip) calls it and holds.

    If the server passes the re-INVITE on, its transaction times out (Timer B) and the call
    must be ended on both sides without our help. If it handles hold itself, the far end sees
    no re-INVITE and we hang up after a while. Either way: BYE reaches the far end, the caller
    sees the call close, the server stays up and writes the CDR.
    """
    require_binary("sipp")
    require_binary("baresip")
    far_ports = ports.allocate(8)
    # Register 1002 from the very port the far end then listens on, so that the binding's
    # Contact and its source address agree (a server may route to either).
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
            time.sleep(1.0)
            caller.ctrl.command("hold")

            def reinvite_seen() -> bool:
                assert far.proc is not None
                logs = (artifacts / "far").glob(f"*_{far.proc.pid}_messages.log")
                text = "\n".join(p.read_text(errors="replace") for p in logs)
                return text.count("INVITE sip:") >= 2

            if wait_until(reinvite_seen, timeout=5):
                closed = wait_until(
                    lambda: bool(caller.ctrl.seen("CALL_CLOSED")),
                    timeout=TIMER_H + 15,
                    interval=0.5,
                )
                assert closed, "re-INVITE timed out but the caller's call was not ended"
            else:
                time.sleep(3)
                caller.ctrl.command("hangup")
                try:
                    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
                except CtrlError:
                    assert caller.ctrl.seen("CALL_CLOSED"), "caller's hangup did not close"
        result = far.wait(timeout=TIMER_H + 20)
    assert result.returncode == 0, result.summary()
    assert server.alive()
    if not server.is_stand_in:
        cdr = server.wait_cdr(lambda r: r["called"] == "1002" and r["end"] is not None)
        assert cdr is not None and cdr["hangup_cause"], server.cdrs()
