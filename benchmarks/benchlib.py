"""Shared helpers of the benchmarks: start the server, wait for it, sample its CPU, profile it.

Only 127.0.0.1 is used. Every process started here is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import csv
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.sip_probe import options_ping  # noqa: E402 - the repository root first

BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio default loop"
    return {
        "cpu": model,
        "cores": str(psutil.cpu_count(logical=True)),
        "ram_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "python": platform.python_version(),
        "loop": loop,
        "kernel": platform.release(),
    }


@dataclass
class Server:
    """`python -m callcenter serve` as a child process with its own database and log."""

    workdir: Path
    config: Path
    sip_port: int
    http_port: int
    env: dict[str, str] = field(default_factory=dict)
    nice: int = 0
    """Niceness of the server process (negative = ahead of other load on a shared machine)."""
    proc: subprocess.Popen[bytes] | None = None
    wrapper: list[str] = field(default_factory=list)
    """A command the server runs under (valgrind ...)."""

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        db = self.workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        config = self.config
        if "CALLCENTER_BENCH_SIP_RCVBUF" in self.env:  # sip.udp_receive_buffer for this run
            data = yaml.safe_load(self.config.read_text())
            data["sip"]["udp_receive_buffer"] = int(self.env["CALLCENTER_BENCH_SIP_RCVBUF"])
            for key in ("sounds", "dialplans"):  # relative to the original config's folder
                if key in data and not Path(data[key]).is_absolute():
                    data[key] = str((self.config.parent / data[key]).resolve())
            config = self.workdir / "bench-config.yaml"
            config.write_text(yaml.safe_dump(data, allow_unicode=True))
        cmd = [
            *self.wrapper, sys.executable, "-m", "callcenter", "serve", "--config", str(config),
            "--sip-port", str(self.sip_port), "--http-port", str(self.http_port),
            "--db", str(db), "--log-format", "json",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            env=env, preexec_fn=niceness(self.nice),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: see {self.workdir / 'server.log'}")
            if options_ping(self.sip_port) == 200:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not answer OPTIONS")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 20)


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM our child, SIGKILL it after ``timeout`` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def niceness(n: int) -> Callable[[], None] | None:
    """A preexec_fn that sets the child's niceness to n (root may go below 0)."""
    if not n:
        return None
    return lambda: os.setpriority(os.PRIO_PROCESS, 0, n)


def start_sipp(
    args: Any, scenario: Path, number: str, rate: int, hold: float, workdir: Path, stat: Path,
    tls: tuple[str, int, list[str]] | None = None,
) -> subprocess.Popen[bytes]:
    """SIPp placing ``rate`` calls a second for ``args.duration`` s to ``number``, each held
    ``hold`` s; bounded by -m (the number of calls) and a global -timeout. ``args`` gives the
    ports (sip_port, sipp_port, media_port), the SIPp binary and the niceness. ``tls``: (SIPp
    with TLS, the server's TLS port, SIPp's -tls_* options) for SIP over one TLS connection."""
    binary, port, extra = tls if tls else (args.sipp, args.sip_port, [])
    cmd = [
        binary, f"{HOST}:{port}", "-sf", str(scenario), "-s", number,
        "-i", HOST, "-p", str(args.sipp_port), "-mi", HOST, "-mp", str(args.media_port),
        "-bind_local", "-nostdin", "-r", str(rate), "-rp", "1000", "-m", str(rate * args.duration),
        "-l", str(max(10, int(rate * (hold + 2) * 3))), "-d", str(int(hold * 1000)),
        "-recv_timeout", "10000", "-timeout", f"{args.duration + int(hold) + 40}s",
        "-timeout_error", "-trace_stat", "-stf", str(stat), "-fd", "1", "-trace_err",
        "-error_file", str(workdir / "sipp_errors.log"), *(["-t", "l1", *extra] if tls else []),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir,
                            preexec_fn=niceness(args.nice))


def finish_sipp(sipp: subprocess.Popen[bytes], timeout: float, workdir: Path) -> None:
    """Wait for SIPp (killed after ``timeout`` s); its stderr goes to workdir/sipp.stderr."""
    try:
        _, err = sipp.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sipp.kill()
        _, err = sipp.communicate()
    if err:
        (workdir / "sipp.stderr").write_bytes(err)


def sipp_row(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat CSV by column name ({} without one)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) > 1 else {}


def count(row: dict[str, str], key: str) -> int:
    """A SIPp counter of ``sipp_row``'s row (0 when missing)."""
    try:
        return int(float(row.get(key, "0") or 0))
    except ValueError:
        return 0


class CpuSampler:
    """Samples a process's CPU use, its children's included (percent of one core), once a
    second in a thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.system: list[tuple[float, float]] = []
        """Whole-machine busy % (100 = every core busy): shows other load on a shared box."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CpuSampler:
        self._last = self._tree_seconds()
        psutil.cpu_percent(None)
        self._thread.start()
        return self

    def _tree_seconds(self) -> float:
        """CPU seconds of the process and its children (media workers) so far."""
        total = 0.0
        for proc in (self.proc, *self.proc.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return total

    def _run(self) -> None:
        t0 = prev = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                now, cpu = time.monotonic(), self._tree_seconds()
                used, self._last = max(0.0, cpu - self._last), cpu  # a child gone: not < 0
                self.samples.append((now - t0, 100.0 * used / (now - prev)))
                self.system.append((now - t0, psutil.cpu_percent(None)))
                prev = now
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def system_summary(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Mean whole-machine busy % over [start, end)."""
        vals = [v for t, v in self.system if start <= t < end]
        return sum(vals) / len(vals) if vals else 0.0

    def summary(self, start: float = 0.0, end: float = float("inf")) -> dict[str, float]:
        """Mean / max / p90 over the samples whose time is in [start, end)."""
        vals = sorted(v for t, v in self.samples if start <= t < end)
        if not vals:
            return {"mean": 0.0, "p90": 0.0, "max": 0.0}
        return {
            "mean": sum(vals) / len(vals),
            "p90": vals[int(0.9 * (len(vals) - 1))],
            "max": vals[-1],
        }


def own_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) of the process alone, its children not included."""
    t = psutil.Process(pid).cpu_times()
    return float(t.user), float(t.system)


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """Start `py-spy record` on the server (collapsed stacks) when py-spy is installed."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        found = shutil.which("py-spy")  # e.g. from a venv of its own on PATH
        if found is None:
            return None
        exe = Path(found)
    return subprocess.Popen(
        [str(exe), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stacks(collapsed: Path) -> Iterator[tuple[str, int]]:
    """(stack, samples) of each line of py-spy's collapsed output."""
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            yield stack, int(count)


def hot_spots(collapsed: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) from py-spy's collapsed stacks, by self time."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for stack, count in _stacks(collapsed):
        total += count
        frames = [f.split(" (", 1)[0] + _where(f) for f in stack.split(";")]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count
    if not total:
        return []
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [(f, 100 * c / total, 100 * incl.get(f, 0) / total) for f, c in rows]


def inclusive(collapsed: Path, needles: list[str]) -> dict[str, float]:
    """Share (%) of samples whose stack contains each needle (substring of a frame)."""
    hits = dict.fromkeys(needles, 0)
    total = 0
    for stack, count in _stacks(collapsed):
        total += count
        for n in needles:
            if n in stack:
                hits[n] += count
    return {n: (100 * c / total if total else 0.0) for n, c in hits.items()}


def _where(frame: str) -> str:
    """' (file.py)' with the path shortened to the last two components."""
    if " (" not in frame:
        return ""
    loc = frame.split(" (", 1)[1].rstrip(")")
    path = loc.split(":", 1)[0]
    return " (" + "/".join(Path(path).parts[-2:]) + ")"


def udp_errors() -> dict[str, int]:
    """Machine-wide UDP counters from /proc/net/snmp (RcvbufErrors = a full socket buffer)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()
             if ln.startswith("Udp:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=False)}


def udp_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped at the UDP sockets bound to 127.0.0.1 on ``ports``."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        ip, _, port = cols[1].partition(":")
        if ip == "0100007F" and int(port, 16) in ports:
            total += int(cols[-1])
    return total


def udp_socket_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to 127.0.0.1:port (its buffer
    was full), from /proc/net/udp; -1 when no such socket."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == want:
            return int(cols[-1])
    return -1
