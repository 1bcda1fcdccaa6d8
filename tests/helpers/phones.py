"""Phones of the demo users: SIPp ones that REGISTER from a port block, then answer calls on
it or call from it; baresip ones that answer at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_binary
from tests.integration.demo import USERS

from . import audio, ports
from .baresip import BaresipAgent, CtrlError
from .server import ServerProcess
from .sipp import Sipp, SippResult, run_sipp


def sipp_register(server: ServerProcess, user: str, block: ports.PortBlock, workdir: Path, *,
                  password: str | None = None) -> SippResult:
    """REGISTER ``user`` (with the demo password unless given) from the port its UAS will
    listen on; the server may refuse it."""
    return run_sipp(
        "uac_register_auth.xml", workdir=workdir, ports=block, remote_port=server.sip_port,
        service=user, auth=(user, password or USERS[user]), timeout=15,
        keys={"contact_port": str(block[0]), "expires": "300"},
    )


def register(server: ServerProcess, user: str, block: ports.PortBlock, workdir: Path, *,
             password: str | None = None) -> None:
    """REGISTER ``user`` from the port its UAS will listen on; it must be accepted."""
    result = sipp_register(server, user, block, workdir, password=password)
    assert result.returncode == 0, result.summary() + server.log_tail()


def answering_phone(server: ServerProcess, user: str, workdir: Path, stack: ExitStack, *,
                    talk_ms: int, calls: int = 10, timeout: int = 120,
                    password: str | None = None) -> Sipp:
    """A registered SIPp phone that answers at once and hangs up after ``talk_ms``."""
    block = ports.allocate(8)
    register(server, user, block, workdir / f"reg_{user}", password=password)
    return stack.enter_context(Sipp("uas_agent.xml", workdir=workdir / f"phone_{user}",
                                    ports=block, calls=calls, timeout=timeout,
                                    duration_ms=talk_ms, extra=["-aa"], trace_msg=False))


def agent(artifacts: Path, user: str, wav: Path, server: ServerProcess) -> BaresipAgent:
    """A baresip phone of ``user`` that answers at once and sends ``wav``."""
    return BaresipAgent(artifacts / f"u{user}", user, USERS[user], registrar_port=server.sip_port,
                        ports=ports.allocate(20), source_wav=wav, answermode="auto")


def closed(phone: BaresipAgent, timeout: float) -> bool:
    """The baresip phone's call closed within ``timeout`` s."""
    try:
        phone.ctrl.wait_event("CALL_CLOSED", timeout=timeout)
        return True
    except CtrlError:
        return False


@dataclass
class SippCaller:
    """A SIPp phone of ``user`` registered from ``block``, running call scenarios from it."""

    server: ServerProcess
    user: str
    block: ports.PortBlock

    def run(self, scenario: str, workdir: Path, service: str, **keys: str) -> SippResult:
        """Run ``scenario`` (key ``user`` set) to ``service``; it must pass."""
        result = run_sipp(scenario, workdir=workdir, ports=self.block,
                          remote_port=self.server.sip_port, service=service, timeout=40,
                          auth=(self.user, USERS[self.user]), keys={"user": self.user, **keys})
        assert result.returncode == 0, result.summary() + self.server.log_tail()
        return result


@contextmanager
def sipp_and_baresip(artifacts: Path, sipp_user: str, baresip_user: str,
                     hz: float) -> Iterator[tuple[ServerProcess, SippCaller, BaresipAgent]]:
    """The demo server, a registered baresip phone sending a ``hz`` tone and a registered
    SIPp caller; the server is stopped on the way out (its database stays to read)."""
    for binary in ("sipp", "baresip", "sox"):
        require_binary(binary)
    tone = audio.make_tone_wav(artifacts / "tone.wav", (hz,), 30.0)
    srv = ServerProcess(artifacts).start()
    try:
        with agent(artifacts, baresip_user, tone, srv) as phone:
            phone.ctrl.wait_registered()
            block = ports.allocate(8)
            register(srv, sipp_user, block, artifacts / f"reg_{sipp_user}")
            yield srv, SippCaller(srv, sipp_user, block), phone
    finally:
        srv.stop()
