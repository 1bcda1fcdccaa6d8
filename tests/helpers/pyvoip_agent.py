"""pyVoIP 1.6.8 as a second, pure-Python softphone, run in threads with bounded waits.

Quirks (RECIPES.md): pyVoIP sends every SIP message, responses included, to its registrar's
address:port, so it only answers INVITEs the server sends from its main SIP socket; its digest
answer ignores qop (RFC 2069 style) with uri "sip:HOST;transport=UDP"; audio is 8-bit unsigned
PCM; DTMF is taken from the first (marker) packet of each event.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import Samples, read_wav, write_wav
from .ports import PortBlock


@dataclass
class CallRecord:
    """What one answered call brought: caller, audio heard, digits."""

    caller: str = ""
    frames: list[bytes] = field(default_factory=list)
    digits: str = ""
    ended: threading.Event = field(default_factory=threading.Event)

    def audio(self) -> Samples:
        """Heard audio as float samples (8-bit unsigned -> [-1, 1))."""
        data = b"".join(self.frames)
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0


class PyVoipAgent:
    """Register as `user`, auto-answer calls, play `play_wav`, record and collect DTMF."""

    def __init__(
        self,
        user: str,
        password: str,
        *,
        registrar_port: int,
        ports: PortBlock,
        play_wav: Path | None = None,
        call_seconds: float = 8.0,
        workdir: Path | None = None,
    ) -> None:
        self.user, self.password = user, password
        self.registrar_port = registrar_port
        self.sip_port, self.rtp_range = ports[0], (ports[2], ports.last)
        self.play_wav, self.call_seconds = play_wav, call_seconds
        self.workdir = workdir
        self.calls: list[CallRecord] = []
        self.incoming = threading.Event()
        self.phone: Any = None

    def _pcm_u8(self) -> bytes:
        if self.play_wav is None:
            return b""
        samples, _ = read_wav(self.play_wav)
        return np.clip(samples * 128.0 + 128.0, 0, 255).astype(np.uint8).tobytes()

    def _on_call(self, call: Any) -> None:
        from pyVoIP.VoIP import CallState, InvalidStateError

        record = CallRecord(caller=str(getattr(call.request, "headers", {}).get("From", "")))
        self.calls.append(record)
        self.incoming.set()
        try:
            call.answer()
            if self.play_wav is not None:
                call.write_audio(self._pcm_u8())
            deadline = time.monotonic() + self.call_seconds
            while call.state == CallState.ANSWERED and time.monotonic() < deadline:
                record.frames.append(call.read_audio(160, blocking=False))
                digit = call.get_dtmf()
                if digit:
                    record.digits += digit
                time.sleep(0.02)
            if call.state == CallState.ANSWERED:
                try:
                    call.hangup()
                except InvalidStateError:
                    pass
        finally:
            record.ended.set()
            if self.workdir is not None:
                write_wav(
                    self.workdir / f"pyvoip_{self.user}_{len(self.calls)}.wav", record.audio()
                )

    def start(self, timeout: float = 20.0) -> PyVoipAgent:
        """Start and REGISTER; raise if not registered within timeout s."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyVoIP.VoIP import PhoneStatus, VoIPPhone
        self.phone = VoIPPhone(
            "127.0.0.1",
            self.registrar_port,
            self.user,
            self.password,
            myIP="127.0.0.1",
            callCallback=self._on_call,
            sipPort=self.sip_port,
            rtpPortLow=self.rtp_range[0],
            rtpPortHigh=self.rtp_range[1],
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.phone.start()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True, name=f"pyvoip-{self.user}")
        thread.start()
        thread.join(timeout)
        if errors or thread.is_alive() or self.phone.get_status() != PhoneStatus.REGISTERED:
            status = self.phone.get_status()
            self.stop(timeout=3)
            raise RuntimeError(
                f"pyVoIP {self.user} not registered within {timeout} s "
                f"(status {status}, errors {errors})"
            )
        return self

    def wait_call(self, timeout: float) -> CallRecord | None:
        """The first incoming call, once it has ended (bounded)."""
        if not self.incoming.wait(timeout):
            return None
        record = self.calls[0]
        record.ended.wait(self.call_seconds + 5)
        return record

    def stop(self, timeout: float = 10.0) -> None:
        """phone.stop() (un-REGISTER) in a thread, bounded: it can wait 30 s for an answer."""
        if self.phone is None:
            return
        thread = threading.Thread(target=self.phone.stop, daemon=True)
        thread.start()
        thread.join(timeout)
        self.phone = None

    def __enter__(self) -> PyVoipAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
