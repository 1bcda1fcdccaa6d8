"""SDP parse/serialize (RFC 4566) and the offer/answer model for audio calls (RFC 3264).

Pure and sans-I/O: text in, dataclasses out, and back. The parser is tolerant in the way
deployed phones need (``\\n`` or ``\\r\\n``, unknown line types and attributes kept or
skipped, malformed optional attributes kept verbatim) but raises :class:`SdpError` (a 400)
when a mandatory line is missing or unreadable.

Offer/answer supports one audio stream with G.711 (and any other static codec named in
``supported``) plus RFC 4733 telephone-event, as plain RTP or as SRTP with SDES keys
(``sdes.py``, RTP/SAVP or a=crypto in RTP/AVP). Every other stream is rejected with port 0
in its own position (RFC 3264 §6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from callcenter.sip.errors import BadRequest, NotAcceptableHere
from callcenter.sip.sdes import SECURE_PROTOS, Crypto, offered_cryptos

CRLF = "\r\n"
RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"}) | SECURE_PROTOS
HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})
DEFAULT_PTIME = 20
TELEPHONE_EVENT = "telephone-event"
DTMF_EVENTS = "0-16"


class SdpError(BadRequest):
    """The peer sent an SDP body we cannot read: answered with 400."""

    reason = "Bad Request (malformed SDP)"


class Direction(StrEnum):
    """Stream direction attributes, RFC 4566 §6 / RFC 3264 §5.1."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def reversed(self) -> Direction:
        """The direction seen from the other end (the answer to this offer, RFC 3264 §6.1)."""
        return _REVERSED[self]

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


_DIRECTIONS = frozenset(d.value for d in Direction)
_REVERSED = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


class RtpMap(NamedTuple):
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 4566 §6)."""

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.encoding}/{self.clock_rate}{suffix}"


#: Static audio payload types usable without an rtpmap (RFC 3551 §6, table 4).
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    0: RtpMap("PCMU", 8000),
    3: RtpMap("GSM", 8000),
    4: RtpMap("G723", 8000),
    8: RtpMap("PCMA", 8000),
    9: RtpMap("G722", 8000),
    18: RtpMap("G729", 8000),
}
_STATIC_BY_NAME = {m.encoding: pt for pt, m in STATIC_PAYLOAD_TYPES.items()}


@dataclass
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (§5.2)."""

    username: str
    sess_id: int
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (§5.7)."""

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` or ``/count`` suffix."""
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """RFC 2543 style hold: connection address 0.0.0.0 (RFC 3264 §8.4)."""
        return self.host in HOLD_ADDRESSES

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @classmethod
    def for_host(cls, host: str) -> Connection:
        return cls("IN", _addrtype(host), host)


@dataclass
class Timing:
    """``t=<start-time> <stop-time>`` (§5.9); 0 0 is an unbounded session."""

    start: int = 0
    stop: int = 0


@dataclass
class MediaDescription:
    """One ``m=`` section (§5.14) with the attributes offer/answer needs parsed out.

    ``rtpmap``, ``fmtp``, ``direction`` and ``ptime`` hold those attributes; ``attributes``
    holds every other ``a=`` line of the section, in order, as ``(name, value or None)``.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    number_of_ports: int = 1
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    rtpmap: dict[int, RtpMap] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: Direction | None = None
    ptime: int | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def payload_types(self) -> list[int]:
        """The numeric formats, in order of preference (non-numeric ones skipped)."""
        return [int(f) for f in self.formats if f.isdigit()]

    def codec(self, pt: int) -> RtpMap | None:
        """The codec behind payload type ``pt``: rtpmap first, then the static table."""
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        if pt < 96:
            return STATIC_PAYLOAD_TYPES.get(pt)
        return None

    def attribute(self, name: str) -> str | None:
        """The value of the first generic attribute called ``name`` ('' for a flag)."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    @property
    def is_rejected(self) -> bool:
        return self.port == 0

    def _lines(self) -> list[str]:
        port = (
            f"{self.port}/{self.number_of_ports}" if self.number_of_ports != 1 else str(self.port)
        )
        lines = [f"m={' '.join([self.media, port, self.proto, *self.formats])}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={kind}:{value}" for kind, value in self.bandwidths)
        listed = [int(f) for f in dict.fromkeys(self.formats) if f.isdigit()]
        unlisted = sorted((self.rtpmap.keys() | self.fmtp.keys()) - set(listed))
        for pt in listed + unlisted:  # maps for unlisted formats are kept, not dropped
            if pt in self.rtpmap:
                lines.append(f"a=rtpmap:{pt} {self.rtpmap[pt]}")
            if pt in self.fmtp:
                lines.append(f"a=fmtp:{pt} {self.fmtp[pt]}")
        if self.ptime is not None:
            lines.append(f"a=ptime:{self.ptime}")
        lines.extend(_attribute_line(name, value) for name, value in self.attributes)
        if self.direction is not None:
            lines.append(f"a={self.direction}")
        return lines


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 4566 §5). ``direction`` is a session-level direction attribute."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)
    direction: Direction | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        return parse(text)

    def serialize(self) -> str:
        """The body as text with CRLF line ends, fields in the RFC 4566 §5 order."""
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name or ' '}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={kind}:{value}" for kind, value in self.bandwidths)
        lines.append(f"t={self.timing.start} {self.timing.stop}")
        lines.extend(_attribute_line(name, value) for name, value in self.attributes)
        if self.direction is not None:
            lines.append(f"a={self.direction}")
        for media in self.media:
            lines.extend(media._lines())
        return CRLF.join(lines) + CRLF

    def __bytes__(self) -> bytes:
        return self.serialize().encode()

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """Media-level ``c=`` overrides the session-level one (§5.7)."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def first_audio(self) -> tuple[int, MediaDescription] | None:
        """Index and section of the first active RTP audio stream, if any."""
        for index, media in enumerate(self.media):
            if media.media == "audio" and media.port != 0 and media.proto in RTP_PROTOS:
                return index, media
        return None


@dataclass(frozen=True)
class NegotiatedMedia:
    """What the media engine needs after offer/answer, seen from our side.

    ``remote`` is where to send RTP; ``payload_type`` and ``dtmf_payload_type`` are the numbers
    to send with; ``direction`` is what *we* may do (already narrowed when the peer's address
    is 0.0.0.0); ``remote_hold`` is true when the peer's SDP puts the call on hold; ``srtp``
    is the peer's SDES key when the stream is SRTP (ours is the one we put in our SDP).
    """

    remote: tuple[str, int]
    payload_type: int
    codec: str
    dtmf_payload_type: int | None
    direction: Direction
    ptime: int = DEFAULT_PTIME
    clock_rate: int = 8000
    remote_hold: bool = False
    srtp: Crypto | None = None


# --------------------------------------------------------------------------- parsing

_LINE = re.compile(r"^([a-zA-Z])=(.*)$")
_split_lines = re.compile(r"\r?\n|\r").split


def parse(text: str | bytes) -> SessionDescription:
    """Parse an SDP body (RFC 4566 §5). Raises :class:`SdpError` on a malformed one."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError("body is not UTF-8") from exc
    lines = [line.strip() for line in _split_lines(text)]
    lines = [line for line in lines if line]
    if not lines:
        raise SdpError("empty body")
    first = _LINE.match(lines[0])
    if first is None or first.group(1) != "v":
        raise SdpError("body does not start with v=")
    version = _int(first.group(2).strip(), "v=")

    origin: Origin | None = None
    session_name = "-"
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = []
    timing: Timing | None = None
    direction: Direction | None = None
    attributes: list[tuple[str, str | None]] = []
    media_list: list[MediaDescription] = []
    current: MediaDescription | None = None

    for line in lines[1:]:
        match = _LINE.match(line)
        if match is None:
            raise SdpError(f"malformed line {line[:40]!r}")
        kind, value = match.group(1), match.group(2)
        if kind == "m":
            current = _parse_media(value)
            media_list.append(current)
        elif kind == "c":
            conn = _parse_connection(value)
            if current is None:
                connection = conn
            else:
                current.connection = conn
        elif kind == "a":
            name, _, raw = value.partition(":")
            attr_value = raw if ":" in value else None
            if current is None:
                if name in _DIRECTIONS and attr_value is None:
                    direction = Direction(name)
                else:
                    attributes.append((name, attr_value))
            else:
                _media_attribute(current, name, attr_value)
        elif kind == "b":
            bw = _parse_bandwidth(value)
            if bw is not None:
                (bandwidths if current is None else current.bandwidths).append(bw)
        elif kind == "i":
            if current is None:
                information = value
            else:
                current.information = value
        elif current is not None:
            continue  # k= and unknown types inside a media section: ignored
        elif kind == "o":
            origin = _parse_origin(value)
        elif kind == "s":
            session_name = value.strip() or "-"
        elif kind == "t" and timing is None:
            timing = _parse_timing(value)
        # u= e= p= r= z= k= and unknown types at session level: ignored

    if origin is None:
        raise SdpError("missing o= line")
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        version=version,
        information=information,
        connection=connection,
        bandwidths=bandwidths,
        timing=timing or Timing(),
        direction=direction,
        attributes=attributes,
        media=media_list,
    )


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise SdpError(f"{what} expects a number, got {text[:20]!r}")
    return int(text)


def _parse_origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError("o= needs 6 fields")
    username, sess_id, sess_version, nettype, addrtype, address = parts
    return Origin(
        username,
        _int(sess_id, "o= sess-id"),
        _int(sess_version, "o= sess-version"),
        nettype,
        addrtype,
        address,
    )


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError("c= needs 3 fields")
    return Connection(*parts)


def _parse_timing(value: str) -> Timing:
    parts = value.split()
    if len(parts) != 2:
        raise SdpError("t= needs 2 fields")
    return Timing(_int(parts[0], "t= start"), _int(parts[1], "t= stop"))


def _parse_bandwidth(value: str) -> tuple[str, int] | None:
    kind, _, amount = value.partition(":")
    amount = amount.strip()
    return (kind.strip(), int(amount)) if kind.strip() and amount.isdigit() else None


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError("m= needs media, port and proto")
    media, port_text, proto, *formats = parts
    port_part, _, count_part = port_text.partition("/")
    port = _int(port_part, "m= port")
    if port > 65535:
        raise SdpError("m= port out of range")
    count = _int(count_part, "m= port count") if count_part else 1
    return MediaDescription(media, port, proto, formats, number_of_ports=count)


def _media_attribute(media: MediaDescription, name: str, value: str | None) -> None:
    """Store one media-level ``a=`` line; malformed known attributes are kept verbatim."""
    if value is None and name in _DIRECTIONS:
        media.direction = Direction(name)
        return
    if value is not None:
        if name == "rtpmap":
            parsed = _parse_rtpmap(value)
            if parsed is not None:
                media.rtpmap[parsed[0]] = parsed[1]
                return
        elif name == "fmtp":
            fmt, _, params = value.strip().partition(" ")
            if fmt.isdigit() and params.strip():
                media.fmtp[int(fmt)] = params.strip()
                return
        elif name == "ptime":
            try:
                media.ptime = max(1, round(float(value)))
                return
            except ValueError:
                pass
    media.attributes.append((name, value))


def _parse_rtpmap(value: str) -> tuple[int, RtpMap] | None:
    fmt, _, codec = value.strip().partition(" ")
    pieces = codec.strip().split("/")
    if not fmt.isdigit() or int(fmt) > 127 or len(pieces) not in (2, 3):
        return None
    if not pieces[0] or not pieces[1].isdigit():
        return None
    channels = 1
    if len(pieces) == 3:
        if not pieces[2].isdigit():
            return None
        channels = int(pieces[2])
    return int(fmt), RtpMap(pieces[0], int(pieces[1]), channels)


def _attribute_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _addrtype(host: str) -> str:
    return "IP6" if ":" in host else "IP4"


# ---------------------------------------------------------------------- offer/answer


def _canonical(name: str) -> str:
    return name.upper() if name.lower() != TELEPHONE_EVENT else TELEPHONE_EVENT


def _find_dtmf(media: MediaDescription, clock_rate: int) -> int | None:
    for pt in media.payload_types:
        codec = media.codec(pt)
        if codec and codec.encoding.lower() == TELEPHONE_EVENT and codec.clock_rate == clock_rate:
            return pt
    return None


def _remote_address(sd: SessionDescription, media: MediaDescription) -> tuple[str, int]:
    conn = sd.connection_for(media)
    if conn is None:
        raise SdpError("no c= line for the audio stream")
    return conn.host, media.port


def _narrow(direction: Direction, remote_host: str) -> Direction:
    """We cannot send to an RFC 2543 hold address (c=0.0.0.0)."""
    if remote_host in HOLD_ADDRESSES:
        return Direction.of(sends=False, receives=direction.receives)
    return direction


def is_hold(sd: SessionDescription) -> bool:
    """True when ``sd`` (an offer from the peer) puts its first audio stream on hold.

    Hold is signalled by sendonly or inactive (RFC 3264 §8.4) or, in RFC 2543 style, by the
    connection address 0.0.0.0. A body without an active audio stream is not a hold.
    """
    found = sd.first_audio()
    return found is not None and _media_hold(sd, found[1])


def _media_hold(sd: SessionDescription, media: MediaDescription) -> bool:
    conn = sd.connection_for(media)
    if conn is not None and conn.is_hold:
        return True
    return sd.direction_for(media) in (Direction.SENDONLY, Direction.INACTIVE)


def answer_offer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    session_id: int,
    session_version: int,
    rtcp_port: int | None = None,
    srtp: str = "off",
    srtp_key: bytes = b"",
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer an offer (RFC 3264 §6): one audio stream, everything else rejected with port 0.

    The codec is the first one in the *offer's* format order that is in ``supported`` (with the
    offer's payload type numbers kept); telephone-event at the same clock rate is added when
    offered. The answer's direction mirrors the offer's (§6.1). Raises :class:`NotAcceptableHere`
    when no audio stream carries a supported codec, :class:`SdpError` when the chosen stream has
    no address. ``rtcp_port`` adds ``a=rtcp`` (RFC 3605) when given. ``srtp`` is the leg's
    policy (``sdes.POLICIES``): a stream it cannot take (RTP/SAVP without a usable key or
    with ``off``; no key when ``required``) is skipped; an SRTP answer carries ``srtp_key``.
    """
    wanted = {_canonical(name) for name in supported}
    chosen: tuple[int, int, RtpMap] | None = None  # (m-line index, pt, codec)
    crypto: Crypto | None = None
    insecure = False  # a stream was skipped for its SRTP terms
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.port == 0 or media.proto not in RTP_PROTOS:
            continue
        keys = offered_cryptos(media.attributes) if srtp != "off" else []
        crypto = keys[0] if keys else None
        if crypto is None and (media.proto in SECURE_PROTOS or srtp == "required"):
            insecure = True
            continue
        for pt in media.payload_types:
            codec = media.codec(pt)
            if codec is not None and _canonical(codec.encoding) in wanted and codec.channels == 1:
                chosen = (index, pt, codec)
                break
        if chosen is not None:
            break
    if chosen is None:
        raise NotAcceptableHere("no acceptable SRTP crypto suite" if insecure
                                else "no common audio codec")

    index, pt, codec = chosen
    offered = offer.media[index]
    remote = _remote_address(offer, offered)
    offered_direction = offer.direction_for(offered)
    ours = _narrow(offered_direction.reversed(), remote[0])
    dtmf_pt = _find_dtmf(offered, codec.clock_rate)

    audio = MediaDescription(
        media="audio",
        port=local_port,
        proto=offered.proto,
        formats=[str(pt)],
        rtpmap={pt: RtpMap(codec.encoding, codec.clock_rate, codec.channels)},
        ptime=DEFAULT_PTIME,
        direction=ours,
    )
    if dtmf_pt is not None:
        audio.formats.append(str(dtmf_pt))
        audio.rtpmap[dtmf_pt] = RtpMap(TELEPHONE_EVENT, codec.clock_rate)
        audio.fmtp[dtmf_pt] = DTMF_EVENTS
    if rtcp_port is not None:
        audio.attributes.append(("rtcp", str(rtcp_port)))
    if crypto is not None:
        audio.attributes.append(("crypto", str(crypto._replace(key=srtp_key))))

    answer_media = [
        audio if i == index else MediaDescription(m.media, 0, m.proto, list(m.formats[:1]) or ["0"])
        for i, m in enumerate(offer.media)
    ]
    answer = _session(local_address, session_id, session_version, answer_media)
    negotiated = NegotiatedMedia(
        remote=remote,
        payload_type=pt,
        codec=_canonical(codec.encoding),
        dtmf_payload_type=dtmf_pt,
        direction=ours,
        ptime=offered.ptime or DEFAULT_PTIME,
        clock_rate=codec.clock_rate,
        remote_hold=_media_hold(offer, offered),
        srtp=crypto,
    )
    return answer, negotiated


def make_offer(
    *,
    local_address: str,
    local_port: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    dtmf_pt: int | None = 101,
    session_id: int,
    session_version: int,
    direction: Direction | str = Direction.SENDRECV,
    rtcp_port: int | None = None,
    srtp: str = "off",
    srtp_key: bytes = b"",
) -> SessionDescription:
    """An audio offer (RFC 3264 §5) for calls we place: static ``codecs`` in our preference
    order, plus telephone-event on ``dtmf_pt`` (None to leave it out). Unless ``srtp`` is
    ``off`` it carries our SDES key: in RTP/SAVP when ``required``, else in RTP/AVP (best
    effort SRTP: a peer that ignores a=crypto answers plain RTP).

    Raises ``ValueError`` for a codec without a static payload type.
    """
    proto = "RTP/SAVP" if srtp == "required" else "RTP/AVP"
    media = MediaDescription("audio", local_port, proto, [], ptime=DEFAULT_PTIME)
    for name in codecs:
        pt = _STATIC_BY_NAME.get(name.upper())
        if pt is None:
            raise ValueError(f"no static payload type for codec {name!r}")
        media.formats.append(str(pt))
        media.rtpmap[pt] = STATIC_PAYLOAD_TYPES[pt]
    if not media.formats:
        raise ValueError("an offer needs at least one codec")
    if dtmf_pt is not None:
        if not 96 <= dtmf_pt <= 127:
            raise ValueError("dtmf_pt must be a dynamic payload type (96-127)")
        media.formats.append(str(dtmf_pt))
        media.rtpmap[dtmf_pt] = RtpMap(TELEPHONE_EVENT, 8000)
        media.fmtp[dtmf_pt] = DTMF_EVENTS
    if rtcp_port is not None:
        media.attributes.append(("rtcp", str(rtcp_port)))
    if srtp != "off":
        media.attributes.append(("crypto", str(Crypto(1, "AES_CM_128_HMAC_SHA1_80", srtp_key))))
    media.direction = Direction(direction)
    return _session(local_address, session_id, session_version, [media])


def parse_answer(answer: SessionDescription, offer: SessionDescription) -> NegotiatedMedia:
    """Read the peer's answer to our ``offer`` (RFC 3264 §7).

    The codec is the answer's first format that names a codec we offered (compared by encoding
    and clock rate, so a peer that renumbers a payload type still works; we send with the
    answer's number, §5.1). Raises :class:`NotAcceptableHere` when the audio stream is rejected
    or carries nothing we offered.
    """
    found = offer.first_audio()
    if found is None:
        raise ValueError("the offer has no audio stream")
    index, ours = found
    if index >= len(answer.media):
        raise NotAcceptableHere("answer has fewer m= lines than the offer")
    theirs = answer.media[index]
    if theirs.port == 0 or theirs.media != "audio":
        raise NotAcceptableHere("audio stream rejected")
    selected = _select_answered_codec(ours, theirs)
    if selected is None:
        raise NotAcceptableHere("answer selects no codec we offered")
    pt, codec = selected
    crypto = _answered_crypto(ours, theirs)
    remote = _remote_address(answer, theirs)
    dtmf_pt = None
    if _find_dtmf(ours, codec.clock_rate) is not None:
        dtmf_pt = _find_dtmf(theirs, codec.clock_rate)
    direction = _narrow(answer.direction_for(theirs).reversed(), remote[0])
    offered_direction = offer.direction_for(ours)
    direction = Direction.of(
        sends=direction.sends and offered_direction.sends,
        receives=direction.receives and offered_direction.receives,
    )
    return NegotiatedMedia(
        remote=remote,
        payload_type=pt,
        codec=_canonical(codec.encoding),
        dtmf_payload_type=dtmf_pt,
        direction=direction,
        ptime=theirs.ptime or DEFAULT_PTIME,
        clock_rate=codec.clock_rate,
        remote_hold=remote[0] in HOLD_ADDRESSES,
        srtp=crypto,
    )


def _answered_crypto(ours: MediaDescription, theirs: MediaDescription) -> Crypto | None:
    """The peer's key for the crypto line of ours it accepted (same tag and suite, RFC 4568
    §7.1.3); none when it answered plain RTP, which an RTP/SAVP offer does not allow."""
    offered = {(c.tag, c.suite) for c in offered_cryptos(ours.attributes)}
    if not offered:
        return None
    for crypto in offered_cryptos(theirs.attributes):
        if (crypto.tag, crypto.suite) in offered:
            return crypto
    if ours.proto in SECURE_PROTOS:
        raise NotAcceptableHere("answer has no SRTP key")
    return None


def _select_answered_codec(
    ours: MediaDescription, theirs: MediaDescription
) -> tuple[int, RtpMap] | None:
    """The answer's first audio codec that we offered, by encoding and clock rate."""
    offered = set()
    for pt in ours.payload_types:
        codec = ours.codec(pt)
        if codec is not None:
            offered.add((_canonical(codec.encoding), codec.clock_rate))
    for pt in theirs.payload_types:
        codec = theirs.codec(pt)
        if codec is None and str(pt) in ours.formats:
            codec = ours.codec(pt)  # same number as offered, no rtpmap in the answer
        if codec is None or codec.encoding.lower() == TELEPHONE_EVENT:
            continue
        if (_canonical(codec.encoding), codec.clock_rate) in offered:
            return pt, codec
    return None


def _session(
    address: str, session_id: int, session_version: int, media: list[MediaDescription]
) -> SessionDescription:
    conn = Connection.for_host(address)
    return SessionDescription(
        origin=Origin("-", session_id, session_version, "IN", conn.addrtype, address),
        session_name="callcenter",
        connection=conn,
        media=media,
    )
