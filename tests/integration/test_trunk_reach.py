"""What the phone network reaches through the trunk: the dialplan's lines, nothing else.

From the trunk's address an INVITE to an agent's extension, registered or not, gets the same
404 as a number that does not exist (no ringing past the IVR and the ACD, no telling which
extensions exist). A direct number per agent (DID) is a line whose flow is a transfer node
ringing the user: that one rings the agent's phone.
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports, sip_probe
from tests.helpers.artifacts import REPO
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import run_sipp

DID = "0800001001"
DIRECT_LINES = f"""\
lines:
  - number: "{DID}"
    name: Anna Nowak (direct)
    accept: [pstn]
    flow: ring_anna
nodes:
  ring_anna: {{type: transfer, user: "1001", on_failure: goodbye}}
"""


def trunk_invite(server: ServerProcess, number: str) -> str:
    """The final status line the server answers an INVITE from the trunk's address with."""
    call_id = sip_probe.new_call_id()
    with sip_probe.UdpProbe() as probe:
        sdp = (
            f"v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {probe.port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        invite = (
            f"INVITE sip:{number}@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{probe.port};branch=z9hG4bK{os.urandom(6).hex()};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:48221234567@127.0.0.1:{probe.port}>;tag={os.urandom(4).hex()}\r\n"
            f"To: <sip:{number}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:48221234567@127.0.0.1:{probe.port}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        probe.send(invite.encode(), server.sip_port)
        answers = probe.collect(10.0, until_final=call_id)
    finals = [a.data.split(b"\r\n", 1)[0].decode() for a in answers if (a.status or 0) >= 200]
    return finals[0] if finals else "no answer"


def test_trunk_reaches_lines_only(artifacts: Path) -> None:
    require_binary("sipp")
    dialplans = artifacts / "dialplans"
    dialplans.mkdir()
    shutil.copy(REPO / "dialplans" / "hotline.yaml", dialplans)
    (dialplans / "direct.yaml").write_text(DIRECT_LINES, encoding="utf-8")
    with ServerProcess(artifacts, overrides={"dialplans": str(dialplans)}) as server, \
            ExitStack() as stack:
        phone = answering_phone(server, "1001", artifacts, stack, talk_ms=1000, calls=1,
                                timeout=30)
        # 1001 registered, 1002 a user not registered, 1999 nobody
        answers = {number: trunk_invite(server, number) for number in ("1001", "1002", "1999")}
        caller = run_sipp(
            "uac_queue_call.xml", workdir=artifacts / "caller", ports=ports.allocate(8),
            remote_port=server.sip_port, service=DID, timeout=30,
        )
        rang = phone.wait(15)
        assert server.alive()
        call_id = caller.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
    assert answers == dict.fromkeys(answers, "SIP/2.0 404 Not Found"), answers
    assert caller.returncode == 0, caller.summary() + server.log_tail()
    assert rang.returncode == 0, "the DID did not ring 1001: " + rang.summary()
    assert cdr is not None and cdr["line"] == DID and cdr["source"] == "trunk:pstn", cdr
