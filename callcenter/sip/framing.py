"""Cut a TCP byte stream into whole SIP messages (RFC 3261 §18.3), sans-I/O.

Over a stream, the header section ends at the first CRLFCRLF and the body is exactly
Content-Length octets; Content-Length is mandatory. CRLFs between messages are RFC 5626
keep-alives and are skipped (`keepalives` counts double-CRLF pings so the transport can send
the single-CRLF pong).
"""

from __future__ import annotations

from callcenter.sip.message import (
    MAX_MESSAGE_SIZE,
    Request,
    SipParseError,
    parse_headers,
    parse_message,
)


class FramingError(SipParseError):
    """The stream cannot be framed; answer `status` if `request` is set, then close.

    `messages` holds the complete messages cut from the same `feed()` call before the error.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        request: Request | None = None,
        messages: list[bytes] | None = None,
    ) -> None:
        super().__init__(status, reason, request)
        self.messages: list[bytes] = messages or []


class StreamFramer:
    """Accumulate stream bytes and return complete messages.

    `feed()` returns the messages completed by the new bytes, or raises `FramingError` once the
    stream is unusable (missing, conflicting or malformed Content-Length, a message larger than
    `max_size`); after that every `feed()` raises the same error.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self.keepalives = 0
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for CRLFCRLF
        self._need: int | None = None  # total length of the current message once known
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data`; return every message it completes, in order."""
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[bytes] = []
        try:
            while True:
                msg = self._next()
                if msg is None:
                    return out
                out.append(msg)
        except FramingError as err:
            err.messages = out
            self._error = err
            self._buf.clear()
            raise

    def _next(self) -> bytes | None:
        buf = self._buf
        if self._need is None:
            self._skip_keepalives()
            end = buf.find(b"\r\n\r\n", self._scan)
            if end < 0:
                self._scan = max(0, len(buf) - 3)
                if len(buf) > self.max_size:
                    raise FramingError(413, "Message Too Large")
                return None
            head_len = end + 4
            self._need = head_len + self._content_length(bytes(buf[:head_len]))
            if self._need > self.max_size:
                raise FramingError(413, "Message Too Large", _request_of(bytes(buf[:head_len])))
        if len(buf) < self._need:
            return None
        msg = bytes(buf[: self._need])
        del buf[: self._need]
        self._need = None
        self._scan = 0
        return msg

    def _skip_keepalives(self) -> None:
        buf = self._buf
        i = 0
        while i < len(buf) and buf[i] in (0x0D, 0x0A):
            i += 1
        if i:
            self.keepalives += bytes(buf[:i]).count(b"\r\n\r\n")
            del buf[:i]
            self._scan = 0

    def _content_length(self, head: bytes) -> int:
        text = head.decode("utf-8", "surrogateescape")
        _, _, header_text = text.partition("\r\n")
        try:
            values = parse_headers(header_text).get_all("Content-Length")
        except SipParseError as err:
            raise FramingError(err.status, err.reason) from None
        if not values:
            raise FramingError(400, "Bad Request (missing Content-Length)", _request_of(head))
        if len(set(values)) > 1:
            raise FramingError(400, "Bad Request (conflicting Content-Length)", _request_of(head))
        value = values[0]
        if not value.isascii() or not value.isdigit():
            raise FramingError(400, "Bad Request (bad Content-Length)", _request_of(head))
        return int(value)


def _request_of(head: bytes) -> Request | None:
    """Best effort: a request built from the header section alone, to answer an error."""
    try:
        msg = parse_message(head)
    except SipParseError as err:
        return err.request
    return msg if isinstance(msg, Request) else None
