"""Run SIPp (the `sipp` binary of Debian's sip-tester) with our scenarios, bounded in time.

Debian 12's sipp has no TLS: `transport="tls"` (`-t l1`) needs the SIPp that
tests/install_sipp_tls.sh leaves at `sipp_tls_path()`, passed as `binary`.

Port layout of one SIPp instance, from a PortBlock of at least 8 ports:
  base+0  SIP (-p)          base+1  control (-cp)
  base+2  media (-mp; SIPp binds it and base+4 for video; pcap playback uses it as source)
  base+6  the RTP sink: our scenarios advertise [media_port+4] in their SDP, and SIPp also uses
          that port as the UDP source of play_pcap_audio. So the port the server learns from
          symmetric RTP and the port in the SDP are the same, and a Python RtpSink bound there
          sees everything the server sends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .ports import PortBlock

SCENARIOS = Path(__file__).resolve().parents[1] / "integration" / "scenarios"
SINK_OFFSET = 4  # [media_port+4] in the scenarios' SDP
SIPP_TLS = "/usr/local/lib/callcenter-sipp/sipp-tls"


def sipp_tls_path() -> str:
    """SIPp with TLS: tests/install_sipp_tls.sh's, or $CALLCENTER_SIPP_TLS when set."""
    return os.environ.get("CALLCENTER_SIPP_TLS", SIPP_TLS)


@dataclass
class SippResult:
    """What a finished SIPp run left behind."""

    returncode: int
    argv: list[str]
    workdir: Path
    stdout: Path
    stderr: Path
    pid: int = 0

    def _read(self, pattern: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(pattern)))

    @property
    def messages(self) -> str:
        """The -trace_msg log (every message sent and received)."""
        return self._read(f"*_{self.pid}_messages.log") if self.pid else ""

    @property
    def errors(self) -> str:
        """The -trace_err log (unexpected messages)."""
        return self._read(f"*_{self.pid}_errors.log") if self.pid else ""

    def summary(self) -> str:
        """Exit code plus the tails of the logs, for assertion messages."""
        tail = self.stderr.read_text(errors="replace")[-1500:]
        return (
            f"sipp exit {self.returncode}: {' '.join(self.argv)}\n--- stderr ---\n{tail}\n"
            f"--- errors ---\n{self.errors[-2500:]}"
        )


@dataclass
class Sipp:
    """One SIPp process: `Sipp(...).start()` then `.wait()`, or `run_sipp(...)`."""

    scenario: str
    workdir: Path
    ports: PortBlock
    remote_port: int | None = None  # None: a UAS that only listens
    service: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    transport: str = "udp"
    timeout: float = 60.0
    calls: int = 1
    duration_ms: int | None = None
    trace_msg: bool = True
    auth: tuple[str, str] | None = None
    extra: list[str] = field(default_factory=list)
    binary: str | None = None  # None: `sipp` on PATH
    proc: subprocess.Popen[bytes] | None = None

    @property
    def sip_port(self) -> int:
        return self.ports[0]

    @property
    def media_port(self) -> int:
        return self.ports[2]

    @property
    def sink_port(self) -> int:
        return self.ports[2] + SINK_OFFSET

    def argv(self) -> list[str]:
        argv = [self.binary or shutil.which("sipp") or "sipp"]
        if self.remote_port is not None:
            argv.append(f"127.0.0.1:{self.remote_port}")
        argv += [
            "-sf",
            self._scenario_copy().name,
            "-i",
            "127.0.0.1",
            "-p",
            str(self.sip_port),
            "-cp",
            str(self.ports[1]),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(self.media_port),
            "-bind_local",
            "-m",
            str(self.calls),
            "-nostdin",
            "-trace_err",
            "-timeout",
            f"{int(self.timeout)}s",
            "-timeout_error",
        ]
        if self.transport in ("tcp", "tls"):
            argv += ["-t", "t1" if self.transport == "tcp" else "l1"]
        if self.trace_msg:
            argv.append("-trace_msg")
        if self.service:
            argv += ["-s", self.service]
        if self.duration_ms is not None:
            argv += ["-d", str(self.duration_ms)]
        if self.auth:
            argv += ["-au", self.auth[0], "-ap", self.auth[1]]
        for name, value in self.keys.items():
            argv += ["-key", name, str(value)]
        return argv + list(self.extra)

    def _scenario_copy(self) -> Path:
        """SIPp names its trace files after the scenario path: keep them in the workdir."""
        src = Path(self.scenario)
        if not src.is_absolute():
            src = SCENARIOS / src
        dst = self.workdir / src.name
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        return dst

    def start(self) -> Sipp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        stem = f"sipp_{Path(self.scenario).stem}_{self.sip_port}"
        self._stdout = self.workdir / f"{stem}.stdout"
        self._stderr = self.workdir / f"{stem}.stderr"
        with open(self._stdout, "wb") as out, open(self._stderr, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        self._argv = argv
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for exit (bounded by timeout, default SIPp's own -timeout + 15 s), else kill."""
        assert self.proc is not None, "start() first"
        try:
            code = self.proc.wait(timeout=timeout if timeout is not None else self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.proc.returncode if self.proc.returncode is not None else -9
        return SippResult(
            code, self._argv, self.workdir, self._stdout, self._stderr, pid=self.proc.pid
        )

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM (SIPp writes its logs), then SIGKILL after `grace` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Sipp:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sipp(scenario: str, **kwargs: object) -> SippResult:
    """Run a scenario to the end (bounded) and return the result."""
    sipp = Sipp(scenario, **kwargs)  # type: ignore[arg-type]
    return sipp.start().wait()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll a zero-argument callable until it returns truthy or timeout s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
