"""Graceful drain: SIGTERM (or `callcenter drain`) with calls up answers new calls 503, lets
the calls in progress end, then exits 0; a server without calls stops at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http
from tests.helpers.server import ServerProcess
from tests.helpers.sip_probe import UdpProbe, build_options, new_call_id, options_ping
from tests.helpers.sipp import SCENARIOS, Sipp, wait_until

LINE_SALES = "0800000001"  # the demo line straight to queue sales (no agents here: callers wait)
CALLS = 3
HOLD_MS = 20_000  # each caller hangs up this long after the answer


def _holding_callers(workdir: Path, server: ServerProcess) -> Sipp:
    """SIPp placing CALLS calls to the sales line, each hanging up after HOLD_MS."""
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    scenario = workdir / "uac_hold.xml"
    scenario.write_text(template.replace("<!-- STEPS -->", f'<pause milliseconds="{HOLD_MS}"/>'),
                        encoding="iso-8859-1")
    return Sipp(str(scenario), workdir=workdir, ports=ports.allocate(8),
                remote_port=server.sip_port, service=LINE_SALES, calls=CALLS, timeout=60,
                keys={"codec_pt": "0", "codec_name": "PCMU"})


def _calls_in_progress(server: ServerProcess) -> int:
    return int(http(server, "GET", "/api/health")[1]["calls_in_progress"])


def _invite_answer(server: ServerProcess) -> bytes:
    """The final answer to a new (offerless) INVITE to the sales line."""
    call_id = new_call_id()
    with UdpProbe() as probe:
        options = build_options(server.sip_port, local_port=probe.port, call_id=call_id,
                                user=LINE_SALES)
        probe.send(options.replace(b"OPTIONS", b"INVITE"), server.sip_port)
        finals = [m for m in probe.collect(5.0, until_final=call_id) if (m.status or 0) >= 200]
    assert finals, "no final answer to the INVITE"
    return finals[0].data


def test_sigterm_with_calls_up_refuses_new_calls_and_waits_for_them(artifacts: Path) -> None:
    require_binary("sipp")
    server = ServerProcess(artifacts, overrides={"drain_timeout": 120}, stop_timeout=90)
    with server:
        callers = _holding_callers(artifacts, server).start()
        try:
            assert wait_until(lambda: _calls_in_progress(server) == CALLS, 15), server.log_tail()
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            assert wait_until(lambda: http(server, "GET", "/api/health")[0] == 503, 10)

            answer = _invite_answer(server)
            assert answer.startswith(b"SIP/2.0 503"), answer
            assert b"\r\nRetry-After: " in answer, answer
            assert options_ping(server.sip_port) == 503
            assert server.proc.poll() is None, "stopped with calls up"
            assert _calls_in_progress(server) == CALLS  # nothing was cut

            result = callers.wait()
        finally:
            callers.stop()
        assert result.returncode == 0, result.summary()  # all three ended by their BYE
        assert server.proc.wait(timeout=30) == 0, server.log_tail()  # exits by itself
    ended = [r for r in server.cdrs() if r["called"] == LINE_SALES]
    assert len(ended) == CALLS and all(r["hangup_side"] == "caller" for r in ended), ended
    assert '"calls_left": 0' in server.log_text()


def test_drain_command_stops_an_idle_server_at_once(artifacts: Path) -> None:
    """`callcenter drain` reaches the server through its API; with no call up it exits 0
    without waiting drain_timeout (300 s here, far beyond the bound)."""
    server = ServerProcess(artifacts, overrides={"drain_timeout": 300})
    with server:
        done = subprocess.run(
            [sys.executable, "-m", "callcenter", "drain", "--config", str(server.config_path),
             "--http-port", str(server.http_port)],
            capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert "draining: 0 calls in progress" in done.stdout
        assert server.proc is not None
        assert server.proc.wait(timeout=15) == 0, server.log_tail()
