"""`media.rtp_timeout`: a queue caller whose phone sends no RTP gets the server's BYE and a CDR
with cause rtp_timeout, with the media in the server process and in two worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp

LINE_SALES = "0800000001"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_silent_caller_is_hung_up_with_cause_rtp_timeout(artifacts: Path, workers: int) -> None:
    require_binary("sipp")
    overrides = {"media": {"workers": workers, "rtp_timeout": 2},
                 "queues": [{"name": "sales", "members": ["1001"], "max_wait": 600}]}
    with ServerProcess(artifacts, overrides=overrides) as server:
        sipp = Sipp("uac_queue_call.xml", workdir=artifacts, ports=ports.allocate(8),
                    remote_port=server.sip_port, service=LINE_SALES, timeout=60)
        with RtpSink(sipp.sink_port) as sink:
            result = sipp.start().wait()  # the scenario ends with the server's BYE
            assert sink.packets, "the caller heard the queue before the timeout"
        assert result.returncode == 0, result.summary() + server.log_tail()
        cdr = server.wait_cdr(lambda r: r["called"] == LINE_SALES and r["end"] is not None, 20)
        assert cdr is not None and cdr["hangup_cause"] == "rtp_timeout", server.cdrs()
