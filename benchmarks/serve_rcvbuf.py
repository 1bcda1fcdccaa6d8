"""Run `callcenter serve` with a larger SIP UDP receive buffer (an experiment, not a fix).

The buffer size comes from CALLCENTER_BENCH_SIP_RCVBUF (bytes). This wraps
`Transports.start` from outside, to measure the change recommended for
callcenter/sip/transport.py without editing it: `bench_cps.py --sip-rcvbuf BYTES`.
"""

from __future__ import annotations

import os
import socket
import sys

from callcenter import cli
from callcenter.sip import transport

_start = transport.Transports.start


async def _start_with_rcvbuf(self: transport.Transports, transports: list[str]) -> None:
    await _start(self, transports)
    udp = self._udp
    sock = udp.get_extra_info("socket") if udp is not None else None
    if sock is not None:
        size = int(os.environ["CALLCENTER_BENCH_SIP_RCVBUF"])
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), size)


transport.Transports.start = _start_with_rcvbuf  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli.main())
