"""Kamailio as the carrier on loopback: a registrar and proxy that demands digest.

    with Kamailio(workdir, subscribers={"acme": "secret"}, trunk_user="acme",
                  pstn_port=6000) as carrier:
        carrier.port          # where the server registers and sends its calls
        carrier.restart()     # a carrier restart: the registrations it held are gone

The config is tests/fixtures/kamailio/carrier.cfg, its subscribers a db_text directory.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from .artifacts import REPO
from .ports import free_port

TEMPLATE = REPO / "tests" / "fixtures" / "kamailio" / "carrier.cfg"
DOMAIN = "carrier.test"


class Kamailio:
    def __init__(self, workdir: Path, *, subscribers: dict[str, str], trunk_user: str,
                 pstn_port: int = 9) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.workdir / "kamailio.log"
        db = self.workdir / "db"
        db.mkdir(exist_ok=True)
        (db / "version").write_text(
            "id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n")
        rows = "".join(f"{i}:{user}:{DOMAIN}:{password}:-:-\n"
                       for i, (user, password) in enumerate(subscribers.items(), 1))
        (db / "subscriber").write_text("id(int,auto) username(string) domain(string) "
                                       "password(string) ha1(string) ha1b(string) \n" + rows)
        config = TEMPLATE.read_text()
        for name, value in (("PORT", self.port), ("DB", db), ("PSTN_PORT", pstn_port),
                            ("TRUNK_USER", trunk_user)):
            config = config.replace(f"@{name}@", str(value))
        self.config = self.workdir / "carrier.cfg"
        self.config.write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Kamailio:
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        run = self.workdir / "run"
        run.mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [binary, "-f", str(self.config), "-DD", "-E", "-Y", str(run), "-m", "32", "-M", "4"],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kamailio exited:\n" + self.log_tail())
            if b"INFO: <core>" in self.log_path.read_bytes() and self._listening():
                return self
            time.sleep(0.1)
        raise RuntimeError("kamailio did not start:\n" + self.log_tail())

    def _listening(self) -> bool:
        out = subprocess.run(["ss", "-lunH", f"sport = :{self.port}"], capture_output=True,
                             text=True, check=False).stdout
        return str(self.port) in out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
