"""A ring-through line (`ring_through: true`): the caller is not answered while the agent's
phone rings; it hears the ringing (180) and is answered when the agent answers, or gets the
agent's busy (486) when the flow hangs up after a failed transfer. A node that needs the
line's audio (here: a prompt after no answer) answers it then. A callee's early media (183 with
SDP) reaches the caller in a 183 with our SDP, and its audio before the answer."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.phones import answering_phone, register
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, SippResult, run_sipp
from tests.integration.demo import Media, pcap_seconds
from tests.integration.test_user_leaves_transfer import dialplan

ANNA, BUSY, NOBODY, EARLY = "0800001001", "0800001002", "0800001003", "0800001004"
LINES = f"""\
lines:
  - {{number: "{ANNA}", name: Anna (direct), accept: [pstn], flow: ring_anna, ring_through: true}}
  - {{number: "{BUSY}", name: Piotr (direct), accept: [pstn], flow: ring_piotr, ring_through: true}}
  - {{number: "{NOBODY}", name: Maria (direct), accept: [pstn], flow: ring_maria,
      ring_through: true}}
  - {{number: "{EARLY}", name: Ola (direct), accept: [pstn], flow: ring_ola, ring_through: true}}
nodes:
  ring_anna: {{type: transfer, user: "1001", on_failure: hangup}}
  ring_piotr: {{type: transfer, user: "1002", on_failure: hangup}}
  ring_maria: {{type: transfer, user: "1003", on_failure: sorry}}
  ring_ola: {{type: transfer, user: "1004", on_failure: hangup}}
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


def received(result: SippResult, status: int) -> tuple[float, str]:
    """When (wall clock, from SIPp's message log) its peer first received a ``status``
    response, and that response's To tag."""
    for block in result.messages.split("-" * 47 + " ")[1:]:
        stamp, _, text = block.partition("\n")
        if "message received" in text.split("\n", 1)[0] and f"\nSIP/2.0 {status} " in text:
            to = next(x for x in text.splitlines() if x.lower().startswith("to:"))
            when = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            return when, to.split("tag=", 1)[1].split(";")[0].strip()
    raise AssertionError(f"no {status} received:\n{result.messages[-3000:]}")


def early_call(artifacts: Path, media: Media, final: str) -> float:
    """A trunk caller of line EARLY whose callee (1004) sends early media (an announcement)
    for a while, then its ``final`` answer (``media``: 200, ``busy``: 486). Checks the
    signalling and the CDR; returns how well the audio the caller got before that answer
    matches the announcement (1.0: all of it; our silence alone: 0)."""
    require_binary("sipp")
    pcap = media.caller_pcap["PCMU"]
    status = 200 if final == "media" else 486
    with ServerProcess(artifacts, overrides=dialplan(artifacts, LINES)) as server, \
            ExitStack() as stack:
        block = ports.allocate(8)
        register(server, "1004", block, artifacts / "reg_1004")
        far = stack.enter_context(Sipp(
            f"uas_early_{final}.xml", workdir=artifacts / "phone_1004", ports=block, calls=1,
            timeout=40, extra=["-aa"], keys={"audio_pcap": str(pcap)},
            duration_ms=int(pcap_seconds(pcap) * 1000) + 1500))
        caller = Sipp(f"uac_early_{final}.xml", workdir=artifacts / "caller",
                      ports=ports.allocate(8), remote_port=server.sip_port, service=EARLY,
                      timeout=40)
        started = time.time()  # the sink's packet times count from about here
        with RtpSink(caller.sink_port) as sink:
            result = caller.start().wait()
            packets = sink.packets
        far_result = far.wait(15)
        call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        assert server.alive()
    assert result.returncode == 0, result.summary() + server.log_tail()
    assert far_result.returncode == 0, far_result.summary()
    answer_at, answer_tag = received(result, status)
    assert received(result, 183)[1] == answer_tag
    if status == 200:
        assert cdr is not None and cdr["answer"] is not None, cdr
        assert cdr["hangup_cause"] == "normal_clearing", cdr
    else:  # never answered: the callee's busy is the caller's
        assert "SIP/2.0 200" not in result.messages.split("486 Busy Here", 1)[0]
        assert cdr is not None and cdr["answer"] is None and cdr["hangup_cause"] == "busy", cdr
    before = b"".join(p.payload for p in packets
                      if p.payload_type == 0 and started + p.time < answer_at)
    announcement = audio.read_wav(media.caller_wav)[0]
    return audio.best_match(announcement, audio.decode_g711(before, "PCMU"))


def test_the_callees_early_media_reaches_the_caller_before_the_answer(
        artifacts: Path, media: Media) -> None:
    """The callee answers 183 with SDP and plays an announcement, then 200: the caller gets a
    183 with SDP (the 200's To tag) and hears the announcement before the 200."""
    assert early_call(artifacts, media, "media") > 0.6


def test_a_callee_busy_after_early_media_passes_its_busy_on(
        artifacts: Path, media: Media) -> None:
    """The callee plays an announcement in its early media, then is busy: the caller heard
    it, then gets the 486 (never answered; CDR cause busy)."""
    assert early_call(artifacts, media, "busy") > 0.6
