"""The messages between the signalling process and a media worker, and their framing. Pure.

Commands are the engine's public methods (open, configure, play, bridge, mix, record, send DTMF,
close) keyed by the channel id the signalling side chose; events are its callbacks (end of a
prompt, DTMF, received audio for taps), periodic statistics and a closed channel's final ones
(the engine's own `stats` dataclasses: fields travel as JSON, dataclasses rebuilt from type hints).

Framing: ``!II`` (header length, blob length), a JSON header ``{"t": name, ...fields}``, then
the blob, which carries the one ``bytes`` field a message may have (``data``: prompt frames,
PCM) raw. Not pickle: a worker must not run whatever a peer writes into its pipe, and JSON keeps
a captured stream readable; not JSON alone: audio as base64 would cost a third more and a copy.
Socket file descriptors travel beside the bytes (SCM_RIGHTS), never inside a message.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

from .stats import ChannelStats, EngineStats

_PREFIX = struct.Struct("!II")
MAX_FRAME = 64 << 20
"""A frame larger than this is a broken peer, not a message."""


class ProtocolError(ValueError):
    """A frame that does not decode to a known message."""


# ----------------------------------------------------------------------------- commands


@dataclass(slots=True)
class Open:
    """Adopt the RTP and RTCP sockets sent with this frame (two fds) as channel ``ch``."""

    ch: int
    inband_dtmf: bool = False


@dataclass(slots=True)
class Configure:
    ch: int
    remote: tuple[str, int] | None
    payload_type: int
    dtmf_payload_type: int | None
    rtcp_remote: tuple[str, int] | None = None
    srtp: tuple[str, str] | None = None  #: SRTP suite and the peer's key (base64)
    srtp_key: str = ""  #: our SRTP key (base64), chosen by the signalling side for its SDP


@dataclass(slots=True)
class Play:
    """Play frames; ``key`` names a prompt the worker keeps once ``data`` brought it (empty
    ``data`` = already sent); ``key`` "" is not kept. ``forget`` lists keys to drop."""

    ch: int
    play: int
    key: str
    codec: int
    frame_size: int
    interruptible: bool = False
    replace: bool = False
    loop: bool = False
    forget: tuple[str, ...] = ()
    data: bytes = b""


@dataclass(slots=True)
class StopPlaying:
    ch: int


@dataclass(slots=True)
class SendDtmf:
    ch: int
    digits: str
    duration_ms: int = 100
    gap_ms: int = 60


@dataclass(slots=True)
class DtmfReceived:
    """A digit signalling learned (SIP INFO): interrupts prompts like one heard in the media."""

    ch: int
    digit: str


@dataclass(slots=True)
class Record:
    ch: int
    path: str
    stereo: bool = False


@dataclass(slots=True)
class StopRecording:
    ch: int


@dataclass(slots=True)
class Listen:
    """Send (or stop sending) the decoded audio the channel receives as `Audio` events."""

    ch: int
    on: bool


@dataclass(slots=True)
class Bridge:
    a: int
    b: int


@dataclass(slots=True)
class Unbridge:
    ch: int


@dataclass(slots=True)
class Mix:
    mix: int
    channels: tuple[int, ...]
    matrix: tuple[tuple[float, ...], ...]


@dataclass(slots=True)
class SetMatrix:
    mix: int
    matrix: tuple[tuple[float, ...], ...]


@dataclass(slots=True)
class Unmix:
    mix: int


@dataclass(slots=True)
class Close:
    """Close the channel; ``moving``: it is reopened on another worker, so no RTCP BYE, and
    the worker answers `Moved` with the state the next worker resumes from."""

    ch: int
    moving: bool = False


@dataclass(slots=True)
class Resume:
    """Carry on a moved channel's stream: ``state`` as `Moved` reported it (`Channel.handover`)."""

    ch: int
    state: dict[str, Any] | None = None


@dataclass(slots=True)
class Settings:
    """Engine settings: `MediaEngine.rtp_timeout`."""

    rtp_timeout: float


@dataclass(slots=True)
class Ping:
    """Answer `Pong` with the same ``n`` (a worker that does not, in time, is killed)."""

    n: int


# ------------------------------------------------------------------------------- events


@dataclass(slots=True)
class Pong:
    n: int


@dataclass(slots=True)
class RtpTimeout:
    """The channel's far end has sent no RTP for the engine's ``rtp_timeout``."""

    ch: int



@dataclass(slots=True)
class PlayDone:
    ch: int
    play: int
    outcome: str
    """A `PlayOutcome` value."""


@dataclass(slots=True)
class Moved:
    """A channel closed with ``moving``: its stream and reception state."""

    ch: int
    state: dict[str, Any]


@dataclass(slots=True)
class Dtmf:
    ch: int
    digit: str


@dataclass(slots=True)
class Recorded:
    """The file of a `StopRecording` (or of a channel closed while recording) is complete."""

    ch: int


@dataclass(slots=True)
class Audio:
    ch: int
    data: bytes = b""


@dataclass(slots=True)
class Stats:
    """A worker's clock figures and the figures of its channels that changed since the last."""

    engine: EngineStats
    channels: dict[str, ChannelStats] = field(default_factory=dict)


@dataclass(slots=True)
class Closed:
    """A channel closed (not moving): its final figures, which a CDR reads."""

    ch: int
    stats: ChannelStats


MESSAGES: dict[str, type] = {cls.__name__: cls for cls in (
    Open, Configure, Play, StopPlaying, SendDtmf, DtmfReceived, Record, StopRecording, Listen,
    Bridge, Unbridge, Mix, SetMatrix, Unmix, Close, Resume, Settings, Ping, Moved, PlayDone, Dtmf,
    Recorded, Audio, Stats, Closed, Pong, RtpTimeout)}


_SCALARS = frozenset((int, float, str, bool, bytes, type(None)))
Convert = Callable[[Any], Any]


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _plain(value: Any) -> Any:
    """A message's value as JSON values (dataclasses as objects, recursively); faster than
    `dataclasses.asdict`, which copies every leaf."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return {name: _plain(getattr(value, name)) for name in _names(value.__class__)}


def _tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@cache
def _converter(tp: Any) -> Convert | None:
    """How a JSON value becomes the annotated type ``tp`` again (None: as it is):
    dataclasses rebuilt (also as dict values), arrays as tuples (addresses are compared with
    the ones sockets return). Made once per type: statistics of many channels come each
    second."""
    if isinstance(tp, type) and is_dataclass(tp):
        hints = get_type_hints(tp)
        plan = [(f.name, conv) for f in fields(tp)
                if (conv := _converter(hints[f.name])) is not None]

        known = frozenset(_names(tp))

        def build(value: dict[str, Any]) -> Any:
            for name, conv in plan:  # only the fields that need it: the dict is ours
                if name in value:
                    value[name] = conv(value[name])
            try:
                return tp(**value)
            except TypeError:  # a field only a newer peer knows is left out (a missing one
                return tp(**{k: v for k, v in value.items() if k in known})  # raises again)
        return build
    if get_origin(tp) is dict and (item := _converter(get_args(tp)[1])) is not None:
        return lambda value: {k: item(v) for k, v in value.items()}
    if tp in _SCALARS or (isinstance(tp, UnionType) and set(get_args(tp)) <= _SCALARS):
        return None
    return _tuples


_dumps = json.JSONEncoder(separators=(",", ":")).encode
"""One encoder for every frame (``json.dumps`` with options builds a new one per call)."""


def encode(msg: Any) -> bytes:
    """One frame for ``msg``."""
    body: dict[str, Any] = {}
    blob: bytes = b""
    for name in _names(msg.__class__):
        value = getattr(msg, name)
        if name == "data":
            blob = value
        else:
            body[name] = value if type(value) in _SCALARS else _plain(value)
    body["t"] = type(msg).__name__
    header = _dumps(body).encode()
    return _PREFIX.pack(len(header), len(blob)) + header + blob


def _decode(header: bytes, blob: bytes) -> Any:
    try:
        body = json.loads(header)
        cls = MESSAGES[body.pop("t")]
        if blob:
            body["data"] = blob
        build = _converter(cls)
        assert build is not None
        return build(body)
    except (ValueError, KeyError, TypeError, AttributeError, NameError) as e:
        raise ProtocolError(f"bad message: {e}") from None


class Decoder:
    """Reassemble frames from a byte stream; `feed` returns the messages completed."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= _PREFIX.size:
            hlen, blen = _PREFIX.unpack_from(buf, pos)
            if hlen + blen > MAX_FRAME:
                raise ProtocolError(f"frame of {hlen + blen} bytes")
            end = pos + _PREFIX.size + hlen + blen
            if len(buf) < end:
                break
            start = pos + _PREFIX.size
            out.append(_decode(bytes(buf[start:start + hlen]), bytes(buf[start + hlen:end])))
            pos = end
        del buf[:pos]
        return out
