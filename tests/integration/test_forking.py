"""A user with two phones: a call to 1002 rings both at once (parallel forking), the one that
answers gets the call and the other one a CANCEL.

Two SIPp UAS register for 1002 from their own ports: a desk phone that rings and is never
picked up, and a softphone that answers and hangs up after ``TALK_MS``. User 1001 dials 1002
from its registered phone (``flows.connect_user``; the trunk cannot reach extensions) and waits
for the server's BYE.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp
from tests.integration.demo import USERS

USER = "1002"
CALLER = "1001"
TALK_MS = 2000


def test_a_call_rings_every_contact_and_the_answer_cancels_the_rest(artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts) as server, ExitStack() as stack:
        desk_ports, soft_ports = ports.allocate(8), ports.allocate(8)
        register(server, USER, desk_ports, artifacts / "reg_desk")
        register(server, USER, soft_ports, artifacts / "reg_soft")
        desk = stack.enter_context(Sipp(
            "uas_agent_noanswer.xml", workdir=artifacts / "desk", ports=desk_ports, calls=1,
            timeout=20, extra=["-aa"],
        ))
        soft = stack.enter_context(Sipp(
            "uas_agent.xml", workdir=artifacts / "soft", ports=soft_ports, calls=1,
            timeout=20, duration_ms=TALK_MS, extra=["-aa"],
        ))
        caller_ports = ports.allocate(8)
        register(server, CALLER, caller_ports, artifacts / "reg_caller")
        caller = run_sipp(
            "uac_feature_code.xml", workdir=artifacts / "caller", ports=caller_ports,
            remote_port=server.sip_port, service=USER, auth=(CALLER, USERS[CALLER]),
            keys={"user": CALLER}, timeout=20,
        )
        desk_result, soft_result = desk.wait(10), soft.wait(10)
        assert caller.returncode == 0, caller.summary() + server.log_tail()
        # each phone's scenario ends only after its own part: the INVITE answered, or
        # the INVITE, the CANCEL, our 487 and the ACK
        assert soft_result.returncode == 0, soft_result.summary() + server.log_tail()
        assert desk_result.returncode == 0, desk_result.summary() + server.log_tail()
        assert server.alive()
        call_id = caller.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)

    for phone in (desk_result, soft_result):
        assert f"INVITE sip:{USER}@127.0.0.1:" in phone.messages, phone.summary()
    assert "CANCEL sip:" in desk_result.messages
    assert "CANCEL sip:" not in soft_result.messages
    assert "BYE sip:" not in desk_result.messages  # the loser never had a dialog
    assert cdr is not None and cdr["answer"] is not None, cdr
    assert cdr["called"] == USER and cdr["hangup_cause"] == "normal_clearing", cdr
