"""SIPp phones of the demo users: REGISTER from a port block, then answer calls on it."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tests.integration.demo import USERS

from . import ports
from .server import ServerProcess
from .sipp import Sipp, run_sipp


def register(server: ServerProcess, user: str, block: ports.PortBlock, workdir: Path) -> None:
    """REGISTER ``user`` from the port its UAS will listen on."""
    result = run_sipp(
        "uac_register_auth.xml", workdir=workdir, ports=block, remote_port=server.sip_port,
        service=user, auth=(user, USERS[user]), timeout=15,
        keys={"contact_port": str(block[0]), "expires": "300"},
    )
    assert result.returncode == 0, result.summary()


def answering_phone(server: ServerProcess, user: str, workdir: Path, stack: ExitStack, *,
                    talk_ms: int, calls: int = 10, timeout: int = 120) -> Sipp:
    """A registered SIPp phone that answers at once and hangs up after ``talk_ms``."""
    block = ports.allocate(8)
    register(server, user, block, workdir / f"reg_{user}")
    return stack.enter_context(Sipp("uas_agent.xml", workdir=workdir / f"phone_{user}",
                                    ports=block, calls=calls, timeout=timeout,
                                    duration_ms=talk_ms, extra=["-aa"], trace_msg=False))
