"""DTMF: RFC 4733 telephone-events (receive with de-duplication, send), SIP INFO bodies, and a
Goertzel in-band detector. Pure: no sockets, no clock.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

import numpy as np

EVENT_CODES = "0123456789*#ABCD"
"""RFC 4733 §3.2: events 0-15 are the DTMF keys, in this order."""
DIGITS = frozenset(EVENT_CODES)
_EVENT = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A DTMF payload or body we cannot read (the peer's fault)."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 §2.3."""

    event: int
    end: bool
    volume: int
    duration: int
    """Samples since the event's timestamp."""

    @property
    def digit(self) -> str | None:
        return EVENT_CODES[self.event] if self.event < 16 else None


def decode_event(payload: bytes) -> TelephoneEvent:
    """Parse an RFC 4733 payload (the first event when several are stacked)."""
    if len(payload) < 4:
        raise DtmfError("telephone-event payload shorter than 4 octets")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def encode_event(event: int, *, end: bool, volume: int, duration: int) -> bytes:
    """Serialize an RFC 4733 payload; duration is clamped to 16 bits."""
    return _EVENT.pack(event, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


def digit_code(digit: str) -> int:
    """Event code of a DTMF key ('0'-'9', '*', '#', 'A'-'D')."""
    code = EVENT_CODES.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


@dataclass(slots=True)
class Rfc4733Receiver:
    """Turns a stream of telephone-event packets into digits, one per event.

    An event is identified by (SSRC, RTP timestamp) (RFC 4733 §2.5.1.2): its updates and its
    retransmitted end packets share the timestamp, and the next key press gets a new one. The
    digit is reported on the first packet seen of an event, so a lost start packet does not lose
    the digit.
    """

    memory: int = 16
    """How many recent events to remember."""
    _seen: deque[tuple[int, int]] = field(default_factory=deque)

    def feed(self, payload: bytes, timestamp: int, ssrc: int = 0) -> str | None:
        """Return the digit if this packet starts a new event, else None. Raises DtmfError."""
        ev = decode_event(payload)
        key = (ssrc, timestamp)
        if key in self._seen:
            return None
        self._seen.append(key)
        if len(self._seen) > self.memory:
            self._seen.popleft()
        return ev.digit


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One RTP packet an RFC 4733 sender emits; one per 20 ms tick."""

    payload: bytes
    marker: bool
    end: bool


def event_packets(
    digit: str,
    *,
    duration_ms: int = 100,
    volume: int = 10,
    packet_ms: int = 20,
    clock_rate: int = 8000,
    end_repeats: int = 3,
) -> list[EventPacket]:
    """The packets of one key press (RFC 4733 §2.5.1): a start packet with the marker bit, an
    update every `packet_ms`, then `end_repeats` identical end packets. All carry the event's
    timestamp, which the sender keeps fixed; duration is in samples and grows."""
    code = digit_code(digit)
    step = clock_rate * packet_ms // 1000
    total = max(step, clock_rate * duration_ms // 1000)
    out = []
    dur = step
    first = True
    while dur < total:
        out.append(
            EventPacket(encode_event(code, end=False, volume=volume, duration=dur), first, False)
        )
        first = False
        dur += step
    end = encode_event(code, end=True, volume=volume, duration=total)
    out.extend(EventPacket(end, first and i == 0, True) for i in range(end_repeats))
    return out


def parse_sip_info(content_type: str, body: bytes | str) -> str | None:
    """The digit in a SIP INFO body, or None.

    application/dtmf-relay: "Signal=5\\r\\nDuration=160"; application/dtmf: "5". Event numbers
    ("Signal=11") are accepted too.
    """
    ctype = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    value: str | None = None
    if ctype == "application/dtmf-relay":
        for line in text.splitlines():
            name, sep, val = line.partition("=")
            if sep and name.strip().lower() == "signal":
                value = val.strip()
                break
    elif ctype == "application/dtmf":
        value = text.strip()
    if not value:
        return None
    if value.isdigit() and len(value) <= 2 and int(value) < 16:
        return EVENT_CODES[int(value)]
    value = value.upper()
    return value if len(value) == 1 and value in DIGITS else None


# --------------------------------------------------------------------------- in-band detector

ROW_FREQS = (697.0, 770.0, 852.0, 941.0)
COL_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


@dataclass(slots=True)
class InbandDtmfDetector:
    """Goertzel DTMF detector over 8 kHz 16-bit linear audio.

    Windows of `window` samples every `hop` samples are tested for one row and one column tone:
    both above `min_level` (RMS, linear units), together most of the window's energy, each
    `peak_ratio` above the other tones of its group, and within the twist limits (the row tone
    at most `max_row_excess_db` louder than the column tone, the column tone at most
    `max_col_excess_db` louder than the row tone).
    A window that holds a tone edge (a quarter of it below `steadiness` times the loudest
    quarter's energy) does not count. A digit is
    reported once it holds for `min_hits` consecutive windows (a 40 ms tone always gives two, a
    20 ms tone at most one) and not again until `release` windows without it: one press, one
    digit.
    """

    sample_rate: int = 8000
    window: int = 160
    hop: int = 80
    min_level: float = 50.0
    energy_fraction: float = 0.6
    peak_ratio: float = 4.0
    steadiness: float = 0.6
    max_row_excess_db: float = 8.0
    max_col_excess_db: float = 4.0
    min_hits: int = 2
    release: int = 3
    _buf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64), repr=False)
    _basis: np.ndarray = field(init=False, repr=False)
    _candidate: str | None = field(default=None, repr=False)
    _hits: int = 0
    _misses: int = 0
    _reported: str | None = None

    def __post_init__(self) -> None:
        n = np.arange(self.window)
        freqs = np.array(ROW_FREQS + COL_FREQS)
        self._basis = np.exp(-2j * np.pi * np.outer(n, freqs) / self.sample_rate)

    def _classify(self, x: np.ndarray) -> str | None:
        n = self.window
        quarters = np.einsum("ij,ij->i", *(x.reshape(4, -1),) * 2)
        energy = float(quarters.sum())
        if energy < self.min_level**2 * n or quarters.min() < self.steadiness * quarters.max():
            return None  # too quiet, or a tone edge inside the window
        # |DFT at f|^2 scaled so a sine of amplitude A gives A^2/2 * n, comparable to energy.
        power = np.abs(x @ self._basis) ** 2 * (2.0 / n)
        rows, cols = power[:4], power[4:]
        r = int(np.argmax(rows))
        c = int(np.argmax(cols))
        pr, pc = float(rows[r]), float(cols[c])
        if pr + pc < self.energy_fraction * energy:
            return None
        if np.any(np.delete(rows, r) * self.peak_ratio > pr):
            return None
        if np.any(np.delete(cols, c) * self.peak_ratio > pc):
            return None
        twist_db = 10.0 * np.log10(pc / pr) if pr > 0 and pc > 0 else -99.0
        if twist_db > self.max_col_excess_db or twist_db < -self.max_row_excess_db:
            return None
        return KEYPAD[r][c]

    def feed(self, frame: bytes) -> list[str]:
        """Add 16-bit little-endian PCM; return the digits whose press was recognised."""
        buf = np.concatenate((self._buf, np.frombuffer(frame, dtype="<i2").astype(np.float64)))
        out: list[str] = []
        pos = 0
        while pos + self.window <= len(buf):
            digit = self._classify(buf[pos : pos + self.window])
            pos += self.hop
            if digit is not None and digit == self._candidate:
                self._hits += 1
            else:
                self._candidate = digit
                self._hits = 1 if digit is not None else 0
            if digit is None or digit != self._reported:
                self._misses += 1
            else:
                self._misses = 0
            if self._reported is not None and self._misses >= self.release:
                self._reported = None
            if digit is not None and self._hits >= self.min_hits and self._reported is None:
                self._reported = digit
                self._misses = 0
                out.append(digit)
        self._buf = buf[pos:]
        return out
