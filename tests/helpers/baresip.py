"""baresip 1.0 (Debian baresip-core) as a headless agent softphone, driven over ctrl_tcp.

Each agent gets its own directory (config, accounts, source WAV, rec/ for sndfile dumps), its
own SIP port, RTP range and control port. Facts this relies on (see RECIPES.md): aufile hangs
up when its WAV ends (so the source is looped to `source_seconds`), net_interface must be an
IP, REGISTER_OK fires before we can connect (so poll `reginfo`), and `quit` must be sent while
the registrar still runs.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .audio import loop_wav
from .ports import PortBlock

REC_PREFIX = "bsrec-"  #: the short directories under /tmp that hold the sndfile dumps

CONFIG = """\
poll_method\tepoll
sip_listen\t127.0.0.1:{sip_port}
net_interface\t127.0.0.1
dns_server\t127.0.0.1:53
call_local_timeout\t120
call_max_calls\t4
audio_source\taufile,{source}
audio_player\taubridge,{name}-sink
audio_alert\taubridge,{name}-alert
ausrc_srate\t8000
auplay_srate\t8000
ausrc_channels\t1
auplay_channels\t1
audio_buffer\t20-160
rtp_ports\t{rtp_low}-{rtp_high}
rtcp_mux\tno
jitter_buffer_delay\t5-10
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taufile.so
module\taubridge.so
module\tsndfile.so
module_tmp\tuuid.so
module_tmp\taccount.so
module_app\tmenu.so
module_app\tctrl_tcp.so
ctrl_tcp_listen\t127.0.0.1:{ctrl_port}
snd_path\t{rec}
statmode_default\toff
{extra}"""


class CtrlError(RuntimeError):
    """A ctrl_tcp command failed or timed out."""


class BaresipCtrl:
    """ctrl_tcp client: netstring-framed JSON commands, responses and events."""

    def __init__(self, port: int, *, connect_timeout: float = 10.0) -> None:
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.history: list[dict[str, Any]] = []
        self._responses: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._token = 0
        self._closed = False
        self._thread = threading.Thread(target=self._reader, daemon=True, name=f"ctrl-{port}")
        self._thread.start()

    def _reader(self) -> None:
        buffer = b""
        self.sock.settimeout(0.5)
        while not self._closed:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            while b":" in buffer:
                length_text, _, rest = buffer.partition(b":")
                if not length_text.isdigit():
                    buffer = b""
                    break
                length = int(length_text)
                if len(rest) < length + 1:
                    break
                self._dispatch(json.loads(rest[:length]))
                buffer = rest[length + 1 :]
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("event"):
            self.history.append(msg)
            self.events.put(msg)
        elif msg.get("response"):
            with self._cond:
                self._responses[str(msg.get("token"))] = msg
                self._cond.notify_all()

    def command(self, text: str, timeout: float = 5.0) -> dict[str, Any]:
        """Send `command params` and return the response (raises CtrlError if not ok)."""
        name, _, params = text.partition(" ")
        with self._cond:
            self._token += 1
            token = str(self._token)
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise CtrlError(f"no response to {text!r} within {timeout} s")
                self._cond.wait(left)
            response = self._responses.pop(token)
        if not response.get("ok", False):
            raise CtrlError(f"{text!r} failed: {response.get('data')}")
        return response

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of this type (others are skipped but kept in `history`)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event.get("type") == kind:
                return event
        seen = [e.get("type") for e in self.history]
        raise CtrlError(f"no {kind} event within {timeout} s (events so far: {seen})")

    def seen(self, kind: str) -> list[dict[str, Any]]:
        """All events of this type received so far."""
        return [e for e in self.history if e.get("type") == kind]

    def wait_registered(self, timeout: float = 15.0) -> None:
        """Poll `reginfo` until an account shows OK."""
        deadline = time.monotonic() + timeout
        data = ""
        while time.monotonic() < deadline:
            data = str(self.command("reginfo").get("data", ""))
            if "OK" in data:
                return
            time.sleep(0.2)
        raise CtrlError(f"not registered within {timeout} s: {data!r}")

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=2)


class BaresipAgent:
    """One baresip process with its own config dir; use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        user: str,
        password: str,
        *,
        registrar_port: int,
        ports: PortBlock,
        source_wav: Path,
        answermode: str = "auto",
        regint: int = 300,
        codecs: str = "PCMU",
        source_seconds: float = 90.0,
        transport: str = "udp",
        mediaenc: str = "",
        cafile: Path | None = None,
        certificate: Path | None = None,
    ) -> None:
        """`transport` "tls" registers over TLS (at `registrar_port`, the server's TLS port)
        trusting `cafile`; `mediaenc` "srtp" or "srtp-mand" offers SDES-keyed SRTP;
        `certificate` (certificate and key in one PEM) lets it take TLS at `sip_port + 1`."""
        if ports.size < 12:
            raise ValueError("a baresip agent needs a block of at least 12 ports")
        self.workdir = Path(workdir)
        self.user, self.password = user, password
        self.registrar_port = registrar_port
        # baresip listens for SIP on UDP+TCP at sip_port and for TLS at sip_port + 1
        self.sip_port, self.ctrl_port = ports[0], ports[2]
        self.rtp_ports = (ports[4], ports.last)
        self.source_wav, self.source_seconds = Path(source_wav), source_seconds
        self.answermode, self.regint, self.codecs = answermode, regint, codecs
        self.transport, self.mediaenc, self.cafile = transport, mediaenc, cafile
        self.certificate = certificate
        #: workdir/rec: a link to a short directory under /tmp, since baresip's sndfile module
        #: cuts a dump's path at 127 characters (the `-dec.wav` of a dump under a long test
        #: name was lost); a dump's path stays valid after baresip stopped
        self.rec_dir = self.workdir / "rec"
        self.proc: subprocess.Popen[bytes] | None = None
        self._ctrl: BaresipCtrl | None = None

    @property
    def ctrl(self) -> BaresipCtrl:
        assert self._ctrl is not None, "agent not started"
        return self._ctrl

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.registrar_port}"

    def _short_rec_dir(self) -> None:
        """Point workdir/rec at a new short directory (once; a restart keeps it), and remove
        such directories older than a day (earlier runs)."""
        if self.rec_dir.is_symlink():
            if self.rec_dir.exists():
                return
            self.rec_dir.unlink()  # its directory was removed (an earlier run's, a day old)
        stale = time.time() - 86400
        for old in Path(tempfile.gettempdir()).glob(f"{REC_PREFIX}*"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < stale:
                    shutil.rmtree(old, ignore_errors=True)
        if self.rec_dir.is_dir():
            shutil.rmtree(self.rec_dir)  # a plain directory from an older helper
        self.rec_dir.parent.mkdir(parents=True, exist_ok=True)
        self.rec_dir.symlink_to(tempfile.mkdtemp(prefix=REC_PREFIX))

    def write_config(self) -> None:
        self._short_rec_dir()
        source = self.workdir / "source.wav"
        loop_wav(self.source_wav, source, self.source_seconds)
        (self.workdir / "config").write_text(
            CONFIG.format(
                sip_port=self.sip_port,
                source=source.resolve(),
                name=self.user,
                rtp_low=self.rtp_ports[0],
                rtp_high=self.rtp_ports[1],
                ctrl_port=self.ctrl_port,
                rec=self.rec_dir.resolve(),
                extra=(f"sip_cafile\t{self.cafile.resolve()}\n" if self.cafile else "")
                + (f"sip_certificate\t{self.certificate.resolve()}\n" if self.certificate else "")
                + ("module\tsrtp.so\n" if self.mediaenc.startswith("srtp") else ""),
            )
        )
        (self.workdir / "accounts").write_text(
            f"<{self.aor};transport={self.transport}>;auth_user={self.user};"
            f"auth_pass={self.password};answermode={self.answermode};"
            f"audio_codecs={self.codecs};regint={self.regint};"
            f"medianat=;mediaenc={self.mediaenc}\n"
        )

    def start(self) -> BaresipAgent:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        binary = shutil.which("baresip") or "baresip"
        self.log_path = self.workdir / "baresip.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-f", str(self.workdir.resolve())],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._ctrl = BaresipCtrl(self.ctrl_port)
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"baresip ctrl_tcp not reachable: {exc}\n{self.log_tail()}") from exc
        return self

    def dial(self, target: str) -> None:
        self.ctrl.command(f"dial {target}")

    def recordings(self) -> dict[str, Path]:
        """Newest sndfile dumps: 'heard' (-dec.wav, received) and 'said' (-enc.wav, sent)."""
        out = {}
        for key, suffix in (("heard", "-dec.wav"), ("said", "-enc.wav")):
            files = sorted(self.rec_dir.glob(f"*{suffix}"))
            if files:
                out[key] = files[-1]
        return out

    def log_tail(self, chars: int = 3000) -> str:
        path = getattr(self, "log_path", None)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""

    def stop(self, timeout: float = 8.0) -> None:
        """`quit` over ctrl_tcp, then SIGTERM, then SIGKILL, each bounded."""
        if self._ctrl is not None:
            try:
                self._ctrl.command("quit", timeout=2.0)
            except (CtrlError, OSError):
                pass
            self._ctrl.close()
            self._ctrl = None
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> BaresipAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
