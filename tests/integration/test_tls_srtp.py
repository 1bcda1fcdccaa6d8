"""Secure phones: baresip agents registered over SIP/TLS (a throw-away CA made with openssl)
call each other through the server, and each hears the other's words."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import http
from tests.helpers.baresip import BaresipAgent
from tests.helpers.certs import Certs, make_certs
from tests.helpers.server import ServerProcess
from tests.integration.demo import USERS, Media

TALK_SECONDS = 5.0
MATCH = 0.6  # best_match of the other side's words in a recording (1.0 = exact copy)


@pytest.fixture
def certs(artifacts: Path) -> Certs:
    require_binary("openssl")
    return make_certs(artifacts / "certs")


@pytest.fixture
def tls_server(artifacts: Path, certs: Certs) -> Iterator[ServerProcess]:
    tls = {"certificate": str(certs.certificate), "key": str(certs.key), "ca": str(certs.ca),
           "port": ports.free_port()}
    srv = ServerProcess(artifacts, overrides={"sip": {"transports": ["udp", "tcp", "tls"],
                                                      "tls": tls}})
    srv.tls_port = tls["port"]  # type: ignore[attr-defined]
    with srv:
        yield srv


def _agent(artifacts: Path, user: str, port: int, wav: Path, certs: Certs,
           transport: str = "tls", mediaenc: str = "") -> BaresipAgent:
    return BaresipAgent(artifacts / f"a{user}", user, USERS[user], registrar_port=port,
                        ports=ports.allocate(20), source_wav=wav, transport=transport,
                        mediaenc=mediaenc, cafile=certs.ca)


def _talk(caller: BaresipAgent, callee: BaresipAgent, target: str) -> None:
    callee.ctrl.wait_registered()
    caller.ctrl.wait_registered()
    caller.dial(target)
    callee.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
    caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
    time.sleep(TALK_SECONDS)
    caller.ctrl.command("hangup")
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)


def _heard_each_other(caller: BaresipAgent, callee: BaresipAgent, media: Media) -> None:
    heard_by_caller = audio.read_wav(caller.recordings()["heard"])[0]
    heard_by_callee = audio.read_wav(callee.recordings()["heard"])[0]
    words_a = audio.read_wav(media.agent_a_wav)[0]
    words_b = audio.read_wav(media.agent_b_wav)[0]
    assert audio.best_match(words_b, heard_by_caller) > MATCH, "caller did not hear the callee"
    assert audio.best_match(words_a, heard_by_callee) > MATCH, "callee did not hear the caller"


def test_agents_over_tls(tls_server: ServerProcess, artifacts: Path, media: Media,
                         certs: Certs) -> None:
    require_binary("baresip")
    port = tls_server.tls_port  # type: ignore[attr-defined]
    caller = _agent(artifacts, "1001", port, media.agent_a_wav, certs)
    callee = _agent(artifacts, "1002", port, media.agent_b_wav, certs)
    with callee, caller:
        callee.ctrl.wait_registered()
        status, regs = http(tls_server, "GET", "/api/registrations")
        assert status == 200
        assert {r["transport"] for r in regs if r["user"] == "1002"} == {"tls"}, regs
        # the INVITE to 1002 goes back on the connection 1002 registered over
        _talk(caller, callee, f"sip:1002@127.0.0.1:{port};transport=tls")
    _heard_each_other(caller, callee, media)
    assert "tls_connect_failed" not in tls_server.log_tail(200000)
