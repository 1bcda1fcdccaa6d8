"""A ring-through line (`ring_through: true`): the caller is not answered while the agent's
phone rings; it hears the ringing (180) and is answered when the agent answers, or gets the
agent's busy (486) when the flow hangs up after a failed transfer. A node that needs the
line's audio (here: a prompt after no answer) answers it then."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.phones import answering_phone, register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp
from tests.integration.test_user_leaves_transfer import dialplan

ANNA, BUSY, NOBODY = "0800001001", "0800001002", "0800001003"
LINES = f"""\
lines:
  - {{number: "{ANNA}", name: Anna (direct), accept: [pstn], flow: ring_anna, ring_through: true}}
  - {{number: "{BUSY}", name: Piotr (direct), accept: [pstn], flow: ring_piotr, ring_through: true}}
  - {{number: "{NOBODY}", name: Maria (direct), accept: [pstn], flow: ring_maria,
      ring_through: true}}
nodes:
  ring_anna: {{type: transfer, user: "1001", on_failure: hangup}}
  ring_piotr: {{type: transfer, user: "1002", on_failure: hangup}}
  ring_maria: {{type: transfer, user: "1003", on_failure: sorry}}
  sorry: {{type: hangup, prompts: [goodbye]}}
"""


def test_the_caller_hears_the_agent_ring_and_is_answered_when_the_agent_answers(
        artifacts: Path) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=dialplan(artifacts, LINES)) as server, \
            ExitStack() as stack:
        phone = answering_phone(server, "1001", artifacts, stack, talk_ms=1000, calls=1,
                                timeout=30)
        busy_block = ports.allocate(8)
        register(server, "1002", busy_block, artifacts / "reg_1002")
        busy = stack.enter_context(Sipp("uas_busy.xml", workdir=artifacts / "phone_1002",
                                        ports=busy_block, calls=1, timeout=30, extra=["-aa"]))
        caller = run_sipp("uac_ring_through.xml", workdir=artifacts / "caller",
                          ports=ports.allocate(8), remote_port=server.sip_port, service=ANNA,
                          timeout=30)
        refused = run_sipp("uac_ring_busy.xml", workdir=artifacts / "refused",
                           ports=ports.allocate(8), remote_port=server.sip_port, service=BUSY,
                           timeout=30)
        answered_late = run_sipp("uac_queue_call.xml", workdir=artifacts / "late",
                                 ports=ports.allocate(8), remote_port=server.sip_port,
                                 service=NOBODY, timeout=30)
        rang, was_busy = phone.wait(15), busy.wait(15)
        call_id = caller.messages.split("Call-ID: ", 1)[1].split()[0]
        busy_id = refused.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        busy_cdr = server.wait_cdr(lambda r: r["sip_call_id"] == busy_id and r["end"] is not None)
        assert server.alive()
    # the 180 came before the 200: the caller was not answered before the agent
    assert caller.returncode == 0, caller.summary() + server.log_tail()
    assert rang.returncode == 0, rang.summary()
    assert cdr is not None and cdr["answer"] is not None, cdr
    # never answered: the agent's busy reaches the caller (no 200, no BYE)
    assert refused.returncode == 0, refused.summary() + server.log_tail()
    assert "SIP/2.0 200" not in refused.messages.split("486 Busy Here", 1)[0]
    assert was_busy.returncode == 0, was_busy.summary()
    assert busy_cdr is not None and busy_cdr["answer"] is None, busy_cdr
    assert busy_cdr["hangup_cause"] == "busy", busy_cdr
    # 1003 not registered: the failure node's prompt needs the line, so it answers it
    assert answered_late.returncode == 0, answered_late.summary() + server.log_tail()
