"""Run the callcenter server as a child process for one test, on its own ports and database.

    with ServerProcess(artifact_dir("test_x")) as srv:
        sipp ... 127.0.0.1:srv.sip_port ...
        rows = srv.cdrs()

The repository's config.yaml is the base (the demo lines, users and trunk); the test's ports,
RTP range and database are written into a copy under the test's artifact directory, with the
relative paths of the original (sounds, dialplans) made absolute. `overrides` deep-merges into
that copy, `base_config` swaps the base file, `extra_args` go after the `serve` options (e.g.
["--clock", "2026-11-23T10:00"]; not passed to a stand-in).

CALLCENTER_TEST_SERVER_CMD replaces the command with a stand-in (e.g. ../shared/interop/
mini_uas.py) to check the tests themselves; it is a format string with {python} {sip_port}
{http_port} {db} {config} {rtp_min} {rtp_max} {workdir}. Then `is_stand_in` is True.

`serve_command` replaces `python -m callcenter serve --config <copy>` (e.g. an installed
`callcenter serve` on its built-in configuration, run in `cwd`); the test's ports and database
options are still appended (its RTP range is then the configuration's own).
"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .artifacts import REPO
from .ports import PortBlock, allocate
from .sip_probe import options_ping

CDR_COLUMNS = (
    "id",
    "sip_call_id",
    "caller",
    "called",
    "source",
    "start",
    "answer",
    "end",
    "hangup_cause",
    "hangup_side",
    "digits",
    "codec",
)
PATH_KEYS = ("sounds", "dialplans")
STAND_IN_ENV = "CALLCENTER_TEST_SERVER_CMD"
RTP_PORTS = 200
DRAIN_TIMEOUT = 2  #: seconds (the shipped 300 would outlast stop_timeout); overrides may raise it


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ServerProcess:
    """The server under test: started on __enter__, stopped on __exit__ (SIGTERM, which drains
    for up to `DRAIN_TIMEOUT` while calls are up, then SIGKILL after `stop_timeout`).

    Ready means it answers OPTIONS *and* has logged `server_started`: SIP answers as soon as its
    socket is bound, while the queues, today's figures and the dialer's crash recovery come
    after, so a test that only waited for OPTIONS could read the database or the API too early.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        base_config: Path | None = None,
        overrides: dict[str, Any] | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] | None = None,
        serve_command: Sequence[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base_config = base_config or REPO / "config.yaml"
        self.overrides = overrides or {}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.env = env or {}
        self.extra_args = list(extra_args or [])
        self.serve_command = list(serve_command or [])
        self.cwd = cwd or REPO
        self.ports: PortBlock = allocate(4)
        block = allocate(RTP_PORTS + 1)
        # RTP on even ports, RTCP on the next odd one
        self.rtp = PortBlock(block.base + block.base % 2, RTP_PORTS)
        self.sip_port = self.ports[0]
        self.http_port = self.ports[1]
        self.db_path = self.workdir / "cc.db"
        self.log_path = self.workdir / "server.log"
        self.config_path = self.workdir / "config.yaml"
        self.stand_in = os.environ.get(STAND_IN_ENV, "")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def is_stand_in(self) -> bool:
        """True when a stand-in replaces the real server (CDR checks cannot apply)."""
        return bool(self.stand_in)

    def write_config(self) -> Path:
        """The base config with this test's ports, RTP range, database and absolute paths."""
        data: dict[str, Any] = {}
        if self.base_config.exists():
            data = yaml.safe_load(self.base_config.read_text(encoding="utf-8")) or {}
        base_dir = self.base_config.resolve().parent
        for key in PATH_KEYS:
            value = data.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                data[key] = str(base_dir / value)
        data = _merge(
            data,
            {
                "sip": {"port": self.sip_port},
                "http": {"port": self.http_port},
                # media in the server process unless a test (or MEDIA_WORKERS=N, to run
                # the suite against worker processes) asks for workers
                "media": {"rtp_port_min": self.rtp.base, "rtp_port_max": self.rtp.last,
                          "workers": int(os.environ.get("MEDIA_WORKERS", "0"))},
                "database": str(self.db_path),
                "logging": {"format": "json", "file": None},
                # SIGTERM drains: calls a test's peers left up may hold the stop this long
                "drain_timeout": DRAIN_TIMEOUT,
            },
        )
        data = _merge(data, self.overrides)
        self.config_path.write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        return self.config_path

    def command(self) -> list[str]:
        if self.stand_in:
            config = self.write_config()
            return shlex.split(
                self.stand_in.format(
                    python=sys.executable,
                    sip_port=self.sip_port,
                    http_port=self.http_port,
                    db=self.db_path,
                    config=config,
                    rtp_min=self.rtp.base,
                    rtp_max=self.rtp.last,
                    workdir=self.workdir,
                )
            )
        serve = self.serve_command or [
            sys.executable, "-m", "callcenter", "serve", "--config", str(self.write_config())
        ]
        return [
            *serve,
            "--sip-port",
            str(self.sip_port),
            "--http-port",
            str(self.http_port),
            "--db",
            str(self.db_path),
            "--log-format",
            "json",
            *self.extra_args,
        ]

    def start(self) -> ServerProcess:
        argv = self.command()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        # the log is shared by restarts on one workdir: only this start's lines count
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"$ {shlex.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before answering "
                    f"OPTIONS\n{self.log_tail()}"
                )
            if self._started() and options_ping(self.sip_port, timeout=0.25) is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"server did not log server_started and answer OPTIONS on udp {self.sip_port} "
            f"within {self.start_timeout} s\n{self.log_tail()}"
        )

    def _started(self) -> bool:
        """The server logged that every part started (a stand-in is not asked to)."""
        if self.stand_in:
            return True
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return b"server_started" in log.read()

    def alive(self) -> bool:
        """Process running and answering OPTIONS on UDP."""
        running = self.proc is not None and self.proc.poll() is None
        return running and options_ping(self.sip_port, timeout=1.0) is not None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after stop_timeout; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def cdrs(self) -> list[dict[str, Any]]:
        """Rows of the `calls` table (empty when the database or table does not exist yet)."""
        if not self.db_path.exists():
            return []
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            rows = con.execute("SELECT * FROM calls ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()
        return [dict(r) for r in rows]

    def wait_cdr(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any] | None:
        """The first CDR row matching predicate, polling up to timeout s (None if none)."""
        deadline = time.monotonic() + timeout
        while True:
            for row in self.cdrs():
                if predicate(row):
                    return row
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
