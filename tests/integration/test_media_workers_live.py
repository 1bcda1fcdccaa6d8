"""The server with two media worker processes (issue 17): SIPp callers hear the IVR's prompts,
queue callers their hold audio; a worker killed mid-call ends only its own calls (BYE from the
server, CDR cause media_failure), the other worker's callers keep hearing audio, and a call made
after the restart is answered with prompts again."""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.demo import LINE_TOLLFREE, Media, pcap_seconds

LINE_SALES = "0800000001"
QUEUED = 4
OVERRIDES = {
    "media": {"workers": 2},
    "queues": [{"name": "sales", "members": ["1001"], "max_wait": 600}],  # 1001 never logs in
}


def ivr_call_with_prompts(server: ServerProcess, workdir: Path, media: Media) -> None:
    """One caller of the hotline: prompt audio comes back, the digits reach the CDR."""
    sipp = Sipp(
        "uac_call_dtmf.xml", workdir=workdir, ports=ports.allocate(8),
        remote_port=server.sip_port, service=LINE_TOLLFREE, timeout=60,
        duration_ms=int(pcap_seconds(media.caller_pcap["PCMU"]) * 1000) + 300,
        keys={"codec_pt": "0", "codec_name": "PCMU", "audio_pcap": str(media.caller_pcap["PCMU"]),
              "dtmf_pcap": str(media.dtmf_pcap["PCMU"])})
    workdir.mkdir(parents=True, exist_ok=True)
    with RtpSink(sipp.sink_port) as sink:
        result = sipp.start().wait()
        heard = sink.audio(0)
    assert result.returncode == 0, result.summary() + server.log_tail()
    assert audio.active_rms(heard) > 5 * audio.SILENCE_RMS, "the caller heard only silence"
    call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
    cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None, 20)
    assert cdr is not None and cdr["digits"] == "12#", server.cdrs()


def worker_pids(server_pid: int) -> list[int]:
    path = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    return [int(x) for x in path.read_text().split()]


def test_two_workers_prompts_and_a_worker_killed_mid_call(artifacts: Path, media: Media) -> None:
    require_binary("sipp")
    with ServerProcess(artifacts, overrides=OVERRIDES) as server, ExitStack() as stack:
        assert server.proc is not None
        assert wait_until(lambda: len(worker_pids(server.proc.pid)) == 2, 20)
        ivr_call_with_prompts(server, artifacts / "before", media)

        callers, sinks = [], []
        for i in range(QUEUED):
            sipp = Sipp("uac_queue_call.xml", workdir=artifacts / f"queued{i}",
                        ports=ports.allocate(8), remote_port=server.sip_port,
                        service=LINE_SALES, timeout=120)
            (artifacts / f"queued{i}").mkdir(exist_ok=True)
            sinks.append(stack.enter_context(RtpSink(sipp.sink_port)))
            callers.append(stack.enter_context(sipp.start()))
        for sink in sinks:  # everyone hears the queue
            assert sink.wait_packets(50, 30), server.log_tail()

        victim = worker_pids(server.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)

        def failed() -> list[dict[str, object]]:
            return [r for r in server.cdrs() if r["hangup_cause"] == "media_failure"
                    and r["end"] is not None]
        # its calls end with a BYE (the callers wait for exactly that) and a closed CDR
        assert wait_until(lambda: failed() and sum(c.proc is not None and c.proc.poll()
                                                   is not None for c in callers)
                          == len(failed()), 30, 0.2), server.log_tail()
        ended = [c for c in callers if c.proc is not None and c.proc.poll() is not None]
        assert all(c.wait().returncode == 0 for c in ended), [c.wait().summary() for c in ended]
        alive = [s for c, s in zip(callers, sinks, strict=True) if c not in ended]
        assert ended and alive, "both workers carried queue calls"
        assert wait_until(lambda: len(worker_pids(server.proc.pid)) == 2
                          and victim not in worker_pids(server.proc.pid), 20)
        # the other worker's callers still hear the queue, their calls still up
        counts = [len(s.packets) for s in alive]
        assert wait_until(lambda: all(len(s.packets) > n + 50
                                      for s, n in zip(alive, counts, strict=True)), 30)
        up = [r for r in server.cdrs() if r["called"] == LINE_SALES and r["end"] is None]
        assert len(up) == len(alive)
        ivr_call_with_prompts(server, artifacts / "after", media)
        assert "died" in server.log_tail(200000)
