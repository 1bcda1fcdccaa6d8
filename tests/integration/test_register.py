"""Agents register with digest auth; wrong or unknown credentials are refused alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import ports, sip_probe
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp
from tests.integration.demo import USERS


def register_with_sipp(
    server: ServerProcess, artifacts: Path, scenario: str, user: str, password: str
) -> int:
    require_binary("sipp")
    block = ports.allocate(8)
    result = (
        Sipp(
            scenario,
            workdir=artifacts,
            ports=block,
            remote_port=server.sip_port,
            service=user,
            auth=(user, password),
            timeout=15,
            keys={"contact_port": str(block[0]), "expires": "300"},
        )
        .start()
        .wait()
    )
    assert result.returncode in (0, 1), result.summary()
    return result.returncode


@pytest.mark.parametrize("user", ["1001", "2001"])
def test_register_digest_ok(server: ServerProcess, artifacts: Path, user: str) -> None:
    code = register_with_sipp(server, artifacts, "uac_register_auth.xml", user, USERS[user])
    assert code == 0, f"SIPp REGISTER as {user} did not end with 200; see {artifacts}"


@pytest.mark.parametrize("user", ["1001", "9999"], ids=["wrong-password", "unknown-user"])
def test_register_refused(server: ServerProcess, artifacts: Path, user: str) -> None:
    code = register_with_sipp(server, artifacts, "uac_register_reject.xml", user, "not-it")
    assert code == 0, f"REGISTER with bad credentials was not refused (401/403); see {artifacts}"
    assert server.alive()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_algorithms(artifacts: Path, algorithm: str) -> None:
    """SHA-256 is opt-in (sip.auth.algorithms); with both offered, either answer works."""
    overrides = {"sip": {"auth": {"algorithms": ["SHA-256", "MD5"]}}}
    with ServerProcess(artifacts, overrides=overrides) as server:
        status, challenges = sip_probe.register(
            server.sip_port, "1002", USERS["1002"], algorithm=algorithm
        )
    offered = [c.get("algorithm", "MD5") for c in challenges]
    assert any(c.get("qop", "") for c in challenges), f"no qop in challenges {challenges}"
    assert status == 200, f"{algorithm} REGISTER got {status}; challenges offered {offered}"


def test_register_wrong_password_same_answer_as_unknown_user(server: ServerProcess) -> None:
    wrong, _ = sip_probe.register(server.sip_port, "1003", "bad-password")
    unknown, _ = sip_probe.register(server.sip_port, "no-such-user", "bad-password")
    assert wrong in (401, 403)
    assert wrong == unknown
