"""RFC 4475 torture messages against the running server, over UDP and TCP.

Each message in tests/fixtures/rfc4475/ is sent as is, except its top Via: the sent-by becomes
127.0.0.1:<the probe's port> and the transport the one we use. The RFC's messages name
example.com and 192.0.2.x hosts, and RFC 3261 §18.2.2 sends a UDP response to the Via sent-by
(port 5060 unless given); rewritten, every response comes back to our probe and the server has
no reason to send anything anywhere else. (Contact/Record-Route hosts are left alone: an
endpoint only uses them for requests inside a dialog, which none of these cases sets up.)

Judged loosely from INDEX.tsv: `valid` requests get a final answer that is not 400 or 500
(unless the strict column names that code); `invalid` ones get a 4xx, a code the strict column
names, or nothing; `either` ones anything but 500; messages that are responses get nothing back.
After every case the server must still answer OPTIONS.

A second variant sends the messages unmodified from a network namespace (below).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callcenter.sip.message import Request, Response, SipParseError, parse_message
from tests.helpers import sip_probe
from tests.helpers.artifacts import REPO, artifact_dir
from tests.helpers.netns_torture import UDP_ONLY
from tests.helpers.server import ServerProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rfc4475"
TCP_INCOMPLETE = {"baddn", "clerr"}  # over TCP the server must wait for more bytes
_TOP_VIA = re.compile(
    rb"^((?:v|via)[ \t]*:[ \t]*SIP\s*/\s*\d+\.\d+\s*/\s*)([A-Za-z]+)(\s+)([^;,\s]+)", re.I | re.M
)


@dataclass(frozen=True)
class Case:
    name: str
    expected: str
    strict: str
    note: str

    @property
    def data(self) -> bytes:
        return (FIXTURES / f"{self.name}.dat").read_bytes()


def load_cases() -> list[Case]:
    index = FIXTURES / "INDEX.tsv"
    if not index.exists():
        return []
    rows = [line.split("\t") for line in index.read_text().splitlines()[1:] if line.strip()]
    return [Case(r[0], r[2], r[4] if len(r) > 4 else "", r[3]) for r in rows]


CASES = load_cases()


def rewrite_top_via(data: bytes, port: int, transport: str) -> bytes:
    """Point the top Via at 127.0.0.1:port over `transport` (headers only; body untouched)."""
    end = data.find(b"\r\n\r\n")
    head, rest = (data, b"") if end < 0 else (data[:end], data[end:])
    head = _TOP_VIA.sub(
        lambda m: (
            m.group(1) + transport.upper().encode() + m.group(3) + f"127.0.0.1:{port}".encode()
        ),
        head,
        count=1,
    )
    return head + rest


_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)


def call_id_of(data: bytes) -> str | None:
    """The Call-ID to wait for (stop at its final answer instead of sleeping the timeout)."""
    found = _CALL_ID.search(data)
    return found.group(1).decode("utf-8", "replace") if found else None


def strict_codes(strict: str) -> set[int]:
    return {int(x) for x in strict.split(",") if x.strip().isdigit()}


def verdict(case: Case, answers: list[sip_probe.Received]) -> str | None:
    """None when the answers are acceptable, else why not."""
    is_response = case.data.startswith(b"SIP/")
    finals = [a.status for a in answers if (a.status or 0) >= 200]
    allowed = strict_codes(case.strict)
    if is_response:
        return f"a response was answered: {finals or answers}" if answers else None
    if case.name == "dblreq" and any(
        b"INVITE" in a.data.split(b"CSeq", 1)[-1][:40] for a in answers
    ):
        return "answered the INVITE in the trailing octets"
    if case.expected == "valid":
        if not finals:
            return "no final response"
        bad = [s for s in finals if s in (400, 500) and s not in allowed]
        return f"valid message answered {bad}" if bad else None
    if case.expected == "invalid":
        bad = [s for s in finals if not (400 <= s < 500 or s in allowed)]
        return f"invalid message answered {bad}" if bad else None
    return f"answered {finals}" if 500 in finals else None


@pytest.fixture(scope="module")
def torture_server() -> Iterator[ServerProcess]:
    with ServerProcess(artifact_dir("test_torture_live")) as srv:
        yield srv


def test_fixtures_present() -> None:
    assert len(CASES) >= 49, f"RFC 4475 messages missing in {FIXTURES}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_torture_udp(torture_server: ServerProcess, case: Case) -> None:
    with sip_probe.UdpProbe() as probe:
        probe.send(rewrite_top_via(case.data, probe.port, "UDP"), torture_server.sip_port)
        answers = probe.collect(3.0, until_final=call_id_of(case.data))
    problem = verdict(case, answers)
    assert problem is None, f"{case.name} ({case.note}): {problem}"
    assert sip_probe.options_ping(torture_server.sip_port) is not None, "server stopped answering"


TCP_CASES = [c for c in CASES if c.name not in UDP_ONLY]


@pytest.mark.parametrize("case", TCP_CASES, ids=[c.name for c in TCP_CASES])
def test_torture_tcp(torture_server: ServerProcess, case: Case) -> None:
    data = rewrite_top_via(case.data, 9, "TCP")  # over TCP responses use the connection
    answers, _closed = sip_probe.send_tcp(
        data, torture_server.sip_port, timeout=3.0, until_final=call_id_of(case.data)
    )
    if case.name not in TCP_INCOMPLETE:
        problem = verdict(case, answers)
        assert problem is None, f"{case.name} ({case.note}): {problem}"
    assert sip_probe.options_ping(torture_server.sip_port, transport="tcp") is not None
    assert sip_probe.options_ping(torture_server.sip_port) is not None


# ---------------------------------------------------------------------------------------------
# The same messages UNMODIFIED, from a loopback-only network namespace: their top Via names
# example.com hosts and 192.0.2.x addresses, and every answer must still come back to the
# packet's source address (RFC 3261 §18.2.1 received, §18.2.2 the sent-by port or 5060;
# RFC 3581 rport: the source port). tests/helpers/netns_torture.py runs inside `unshare -rn`.


@pytest.fixture(scope="module")
def unmodified() -> dict[str, Any]:
    probe = ["unshare", "-rn", "ip", "link", "set", "lo", "up"]
    try:
        check = subprocess.run(probe, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run {' '.join(probe)}: {exc}")
    if check.returncode != 0:
        pytest.skip(f"network namespaces not permitted: {check.stderr.strip()}")
    workdir = artifact_dir("test_torture_unmodified")
    run = subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "tests.helpers.netns_torture", str(workdir)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (workdir / "answers.json").write_text(run.stdout)
    result: dict[str, Any] = json.loads(run.stdout)
    assert result["alive"], "the server stopped answering OPTIONS"
    return result


def expected_port(case: Case, sender_port: int) -> int | None:
    """The port a UDP answer must reach: the sender's with rport, else sent-by's or 5060."""
    try:
        msg: Request | Response | None = parse_message(case.data)
    except SipParseError as exc:
        msg = exc.request
    if msg is None:
        return None
    via = msg.top_via
    return sender_port if via.has_rport else via.port or 5060


def _received(texts: list[str]) -> list[sip_probe.Received]:
    return [sip_probe.Received(t.encode("latin-1"), ("127.0.0.1", 0)) for t in texts]


def _finals(answers: list[sip_probe.Received]) -> list[int]:
    return [a.status for a in answers if a.status is not None and a.status >= 200]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_torture_unmodified_udp(unmodified: dict[str, Any], case: Case) -> None:
    """Answered as over TCP (where the connection carries the answer back), at the right port."""
    answers = _received([text for _, text in unmodified["udp"][case.name]])
    problem = verdict(case, answers)
    assert problem is None, f"{case.name} ({case.note}): {problem}"
    if case.name in unmodified["tcp"] and case.name not in TCP_INCOMPLETE:
        over_tcp = _finals(_received(unmodified["tcp"][case.name]))
        assert _finals(answers) == over_tcp, f"{case.name}: UDP answers differ from TCP's"
    want = expected_port(case, unmodified["sender_port"])
    ports = {port for port, _ in unmodified["udp"][case.name]}
    assert ports <= {want}, f"{case.name}: answers reached ports {ports}, expected {want}"


@pytest.mark.parametrize("case", TCP_CASES, ids=[c.name for c in TCP_CASES])
def test_torture_unmodified_tcp(unmodified: dict[str, Any], case: Case) -> None:
    if case.name not in TCP_INCOMPLETE:
        problem = verdict(case, _received(unmodified["tcp"][case.name]))
        assert problem is None, f"{case.name} ({case.note}): {problem}"
