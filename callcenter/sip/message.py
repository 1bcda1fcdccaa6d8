"""Sans-I/O SIP messages (RFC 3261 §7): parse, serialise, build responses.

`parse_message()` takes the bytes of one datagram (or one message cut out of a stream by
`framing.StreamFramer`) and returns a `Request` or `Response`, or raises `SipParseError` (a
`sip.errors.SipError`, re-exported here), which carries the status to answer with and, when
possible, a `Request` good enough to answer. It never raises anything else, whatever the input.

A returned message is guaranteed to have parseable Via, From, To, Call-ID and CSeq headers, so
the convenience properties (`call_id`, `cseq`, `vias`, `top_via`, `from_`, `to`, tags,
`max_forwards`) do not raise. Semantic checks a server core applies before acting on a request
(CSeq method matching, duplicated singletons, Request-URI scheme) live in `validate_request()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from callcenter.sip import grammar as g
from callcenter.sip.errors import SipError
from callcenter.sip.uri import NameAddr, SipUri, Via, parse_uri, split_outside_quotes, uri_scheme

#: Largest message accepted, in octets (a UDP datagram's limit; §18.1.1 for the UDP/TCP choice).
MAX_MESSAGE_SIZE = 65535

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # any octet survives decode -> encode unchanged


def _bad(detail: str, status: int = 400) -> SipParseError:
    base = g.REASON_PHRASES.get(status, "Bad Request")
    return SipParseError(status, f"{base} ({detail})")


# Headers ------------------------------------------------------------------------------------


class SipParseError(SipError):
    """The message is malformed or unacceptable (400, 413, 416, 505...); answered statelessly.

    ``request`` is the partially parsed request when its Via, From, To, Call-ID and CSeq are
    usable, so it can be answered; otherwise it is None and the message is dropped.
    """

    def __init__(self, status: int, reason: str, request: Request | None = None) -> None:
        super().__init__(status=status, reason=reason)
        self.request = request


class Headers:
    """Ordered header fields with canonical names; values are kept as written on one line.

    List-valued headers (Via, Contact, Route, ...) may carry several comma-separated values per
    line; `get_all` splits them, respecting quotes and <...>, except for headers in
    `grammar.NEVER_SPLIT`, whose values may contain unquoted commas.

    `version` counts mutations: every method that changes the fields increments it, so a
    reader can cache values computed from the headers and know when they went stale
    (`Message` does). Nothing outside this class may touch `_items`.
    """

    __slots__ = ("_items", "version")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(g.canonical_name(n), v) for n, v in items]
        self.version = 0

    @staticmethod
    def _split(name: str, value: str) -> list[str]:
        if name in g.NEVER_SPLIT or "," not in value:
            return [value.strip()]
        parts = (p.strip() for p in split_outside_quotes(value, ",", angle=True))
        return [p for p in parts if p]

    def get(self, name: str) -> str | None:
        """First value of `name` (first element for list headers), or None."""
        cname = g.canonical_name(name)
        for n, v in self._items:
            if n == cname:
                if "," not in v:  # _split's common case, inline: read ~50 times a call
                    return v.strip()
                parts = self._split(n, v)
                if parts:
                    return parts[0]
        return None

    def get_all(self, name: str) -> list[str]:
        """All values of `name` in order, comma-separated lists split."""
        cname = g.canonical_name(name)
        out: list[str] = []
        for n, v in self._items:
            if n == cname:
                if "," not in v:
                    out.append(v.strip())
                else:
                    out.extend(self._split(n, v))
        return out

    def count(self, name: str) -> int:
        """Number of header lines named `name` (not list elements)."""
        cname = g.canonical_name(name)
        return sum(1 for n, _ in self._items if n == cname)

    def set(self, name: str, value: str) -> None:
        """Replace all values of `name` by `value`, at the position of the first one."""
        self.version += 1
        cname = g.canonical_name(name)
        for i, (n, _) in enumerate(self._items):
            if n == cname:
                self._items[i] = (cname, value)
                self._items[i + 1 :] = [it for it in self._items[i + 1 :] if it[0] != cname]
                return
        self._items.append((cname, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a value; with `first`, insert it before the other values of `name` (Via)."""
        self.version += 1
        cname = g.canonical_name(name)
        if first:
            for i, (n, _) in enumerate(self._items):
                if n == cname:
                    self._items.insert(i, (cname, value))
                    return
            self._items.insert(0, (cname, value))
        else:
            self._items.append((cname, value))

    def remove(self, name: str) -> None:
        """Remove every value of `name` (no error if absent)."""
        self.version += 1
        cname = g.canonical_name(name)
        self._items = [it for it in self._items if it[0] != cname]

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first list element of `name` (e.g. the top Via), or None."""
        self.version += 1
        cname = g.canonical_name(name)
        for i, (n, v) in enumerate(self._items):
            if n == cname:
                parts = self._split(n, v)
                if len(parts) <= 1:
                    del self._items[i]
                else:
                    self._items[i] = (n, ", ".join(parts[1:]))
                return parts[0] if parts else None
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        cname = g.canonical_name(name)
        for n, _ in self._items:  # a loop, not any(<generator>): ~3x cheaper, read ~45x a call
            if n == cname:
                return True
        return False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """A shallow copy (values are strings)."""
        new = Headers()
        new._items = list(self._items)
        return new


# Messages -----------------------------------------------------------------------------------


_T = TypeVar("_T")


def _copy_uri(uri: SipUri | str) -> SipUri | str:
    if isinstance(uri, str):
        return uri
    return SipUri(
        uri.host, uri.user, uri.password, uri.port, uri.scheme, dict(uri.params), dict(uri.headers)
    )


def _copy_name_addr(na: NameAddr) -> NameAddr:
    return NameAddr(_copy_uri(na.uri), na.display, dict(na.params))


def _copy_via(via: Via) -> Via:
    return Via(via.transport, via.host, via.port, dict(via.params), via.protocol)


def _shared(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """``parse`` with a memo shared by all messages: a dialog's requests and responses repeat
    the same From, To, Contact, Via and Request-URI. Safe to share because a message never
    hands out what it keeps, only copies (see Message); what fails to parse raises again, as
    nothing is kept. Bounded: 4,096 values of at most 512 characters (a longer one is parsed
    each time), so a peer sending new values cannot grow it past a few megabytes."""
    memo = lru_cache(maxsize=4096)(parse)

    def parse_shared(text: str) -> _T:
        return memo(text) if len(text) <= 512 else parse(text)

    return parse_shared


_parse_name_addr = _shared(NameAddr.parse)
_parse_via = _shared(Via.parse)
_parse_request_uri = _shared(parse_uri)


class Message:
    """Convenience properties shared by requests and responses, computed from `headers`.

    Parsed values are cached per message and keyed by the `Headers` object and its mutation
    counter (`Headers.version`), so changing a header, or assigning new `headers`, makes the
    next read parse again. Properties that return mutable objects (`Via`, `NameAddr`, lists)
    return a fresh copy on every read: a caller may change what it got (e.g. stamp `received`
    on a Via) without touching the cache or the headers; to change the message, write the
    headers (`headers.set`/`add`/`remove`). A value that fails to parse is not cached: the
    property raises ValueError again on the next read.
    """

    headers: Headers
    body: bytes

    def _cache(self) -> dict[str, Any]:
        """The parsed-value cache for the current headers (emptied when they changed)."""
        headers = self.headers
        state: tuple[Headers, int, dict[str, Any]] | None = self.__dict__.get("_hcache")
        if state is not None and state[0] is headers and state[1] == headers.version:
            return state[2]
        cache: dict[str, Any] = {}
        self.__dict__["_hcache"] = (headers, headers.version, cache)
        return cache

    def _cached(self, key: str, compute: Callable[[], _T]) -> _T:
        headers = self.headers  # _cache's test inlined: a message's properties are read
        state = self.__dict__.get("_hcache")  # about a hundred times a call
        if state is not None and state[0] is headers and state[1] == headers.version:
            cache: dict[str, Any] = state[2]
            if key in cache:
                return cache[key]  # type: ignore[no-any-return]
        else:
            cache = self._cache()
        value = cache[key] = compute()
        return value

    def _call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if value is None:
            raise ValueError("no Call-ID")
        return value

    def _cseq(self) -> tuple[int, str]:
        value = self.headers.get("CSeq")
        if value is None:
            raise ValueError("no CSeq")
        return _parse_cseq(value)

    def _vias(self) -> tuple[Via, ...]:
        return tuple(_parse_via(v) for v in self.headers.get_all("Via"))

    def _top_via(self) -> Via:
        vias: tuple[Via, ...] | None = self._cache().get("vias")
        if vias:
            return vias[0]  # the first element of get_all is what get returns
        value = self.headers.get("Via")
        if value is None:
            raise ValueError("no Via")
        return _parse_via(value)

    def _from(self) -> NameAddr:
        return _parse_name_addr(self.headers.get("From") or "")

    def _to(self) -> NameAddr:
        return _parse_name_addr(self.headers.get("To") or "")

    def _max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return None if value is None else _parse_uint(value, "Max-Forwards")

    def _contacts(self) -> tuple[NameAddr, ...]:
        return tuple(
            NameAddr(uri="*") if v == "*" else _parse_name_addr(v)
            for v in self.headers.get_all("Contact")
        )

    def _content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8)."""
        return self._cached("call_id", self._call_id)

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from CSeq (§20.16)."""
        return self._cached("cseq", self._cseq)

    @property
    def vias(self) -> list[Via]:
        """All Via values, top first (§20.42); a new list of copies on each read."""
        return [_copy_via(v) for v in self._cached("vias", self._vias)]

    @property
    def top_via(self) -> Via:
        """The topmost Via (a copy)."""
        return _copy_via(self._cached("top_via", self._top_via))

    @property
    def from_(self) -> NameAddr:
        """The From header (§20.20), a copy."""
        return _copy_name_addr(self._cached("from", self._from))

    @property
    def to(self) -> NameAddr:
        """The To header (§20.39), a copy."""
        return _copy_name_addr(self._cached("to", self._to))

    @property
    def from_tag(self) -> str | None:
        """The From tag, or None."""
        return self._cached("from", self._from).tag

    @property
    def to_tag(self) -> str | None:
        """The To tag, or None."""
        return self._cached("to", self._to).tag

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (§20.22), or None if absent."""
        return self._cached("max_forwards", self._max_forwards)

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values (§20.10); `*` is returned as a NameAddr whose uri is "*" (copies)."""
        return [_copy_name_addr(c) for c in self._cached("contacts", self._contacts)]

    @property
    def content_type(self) -> str | None:
        """The media type of Content-Type, lowercased, without parameters."""
        return self._cached("content_type", self._content_type)


@dataclass
class Request(Message):
    """A SIP request (§7.1). `uri` is the Request-URI as text."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = g.SIP_VERSION

    @property
    def request_uri(self) -> SipUri | str:
        """The Request-URI parsed: a `SipUri` (a copy), or the text for other schemes."""
        return _copy_uri(self._request_uri())

    def _request_uri(self) -> SipUri | str:
        """Parsed once per `uri` text (parse and validation read it too)."""
        cached: tuple[str, SipUri | str] | None = self.__dict__.get("_ruri")
        if cached is None or cached[0] != self.uri:
            cached = self.__dict__["_ruri"] = (self.uri, _parse_request_uri(self.uri))
        return cached[1]


@dataclass
class Response(Message):
    """A SIP response (§7.2)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = g.SIP_VERSION


# Parsing ------------------------------------------------------------------------------------


def _parse_uint(text: str, what: str) -> int:
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"bad {what}")
    return int(text)


def _parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not g.is_token(parts[1]):
        raise ValueError("bad CSeq")
    return _parse_uint(parts[0], "CSeq"), parts[1]


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the blank line; with none, the whole datagram is headers (RFC 4475 baddn)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")  # bare-LF peers: tolerated, the earlier terminator wins
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data, b""


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Unfold continuation lines (§7.3.1) and split `name: value`."""
    items: list[tuple[str, list[str]]] = []  # value pieces joined once, to stay linear
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not items:
                raise _bad("continuation line before first header")
            piece = line.strip()
            if piece:
                items[-1][1].append(piece)
            continue
        if not line:
            raise _bad("empty header line")
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        cname = _LINE_NAMES.get(name)
        if cname is None:
            if not colon or not g.is_token(name):
                raise _bad("malformed header line")
            cname = g.canonical_name(name)
            if len(_LINE_NAMES) < 512 and len(name) <= 64:
                _LINE_NAMES[name] = cname
        elif not colon:
            raise _bad("malformed header line")
        value = value.strip()
        items.append((cname, [value] if value else []))
    return [(name, " ".join(pieces)) for name, pieces in items]


_LINE_NAMES: dict[str, str] = {}
"""Header names as peers spell them, checked (tokens) and made canonical once: the first 512
spellings seen of at most 64 characters (a peer sending new or long names only finds them
checked each time; the memo stays under a few tens of kilobytes)."""


def parse_headers(text: str) -> Headers:
    """Parse header lines (no start line, no blank line) into `Headers`; raise SipParseError."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return Headers(_header_lines(lines))


def _body_length(headers: Headers, available: int) -> int:
    values = headers.get_all("Content-Length")
    if not values:
        return available  # §18.3: over UDP, the body runs to the end of the datagram
    if len(set(values)) > 1:
        raise _bad("conflicting Content-Length")
    try:
        length = _parse_uint(values[0], "Content-Length")
    except ValueError:
        raise _bad("bad Content-Length") from None
    if length > available:
        raise _bad("Content-Length larger than the message")
    return length


def _answerable(req: Request) -> bool:
    """Whether `req` carries enough to build a response to it."""
    h = req.headers
    if any(name not in h for name in g.MANDATORY_REQUEST):
        return False
    try:
        req.top_via  # noqa: B018 - parse check
        req.cseq  # noqa: B018
    except ValueError:
        return False
    return True


def _check_core(msg: Message) -> None:
    """Raise SipParseError if the core headers cannot be used. Checked once per state of the
    headers: validating a request just parsed does not check them again."""
    h = msg.headers
    if "core_ok" in msg._cache():  # emptied when the headers change
        return
    for name in g.MANDATORY_REQUEST:
        if name not in h:
            raise _bad(f"missing {name}")
    # The uncopied readers: each fills the message's cache for the properties read later.
    checks: tuple[tuple[str, Callable[[], object]], ...] = (
        ("Via", lambda: msg._cached("vias", msg._vias)),
        ("From", lambda: msg._cached("from", msg._from)),
        ("To", lambda: msg._cached("to", msg._to)),
        ("CSeq", lambda: msg.cseq),
        ("Max-Forwards", lambda: msg.max_forwards),
    )
    for name, check in checks:
        try:
            check()
        except ValueError:
            raise _bad(f"bad {name}") from None
    if not msg.call_id:
        raise _bad("bad Call-ID")
    if msg.cseq[0] > g.MAX_CSEQ:
        raise _bad("CSeq out of range")
    mf = msg.max_forwards
    if mf is not None and mf > g.MAX_MAX_FORWARDS:
        raise _bad("Max-Forwards out of range")
    msg._cache()["core_ok"] = True


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message from a datagram (or a framed stream message).

    Leading CRLFs (keep-alives) are skipped; octets after Content-Length are ignored (§18.3).
    Raise `SipParseError` for anything malformed.
    """
    try:
        return _parse(bytes(data))
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError, RecursionError) as exc:
        raise SipParseError(400, f"Bad Request ({exc.__class__.__name__})") from None


def _parse(data: bytes) -> Request | Response:
    data = data.lstrip(b"\r\n")
    if not data:
        raise _bad("empty message")
    head_bytes, rest = _split_head(data)
    if len(head_bytes) > MAX_MESSAGE_SIZE:
        raise SipParseError(413, "Request Entity Too Large")
    lines = head_bytes.decode(_ENCODING, _ERRORS).split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # no blank line before the end of the datagram (RFC 4475 baddn)
    start = lines[0]
    if start.startswith("SIP/") or start[:4].upper() == "SIP/":
        if len(data) > MAX_MESSAGE_SIZE:
            raise SipParseError(413, "Message Too Large")
        return _parse_response(start, lines[1:], rest)
    return _parse_request(start, lines[1:], rest, len(data))


def _parse_response(start: str, lines: list[str], rest: bytes) -> Response:
    version, _, tail = start.partition(" ")
    code, _, reason = tail.partition(" ")
    if version.upper() != g.SIP_VERSION:
        raise _bad("unsupported version", 505)
    if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
        raise _bad("bad status code")
    headers = Headers(_header_lines(lines))
    length = _body_length(headers, len(rest))
    resp = Response(int(code), reason.strip(), headers, rest[:length], g.SIP_VERSION)
    _check_core(resp)
    return resp


def _parse_request(start: str, lines: list[str], rest: bytes, size: int) -> Request:
    parts = start.split()
    method = parts[0] if parts else ""
    start_error: SipParseError | None = None
    version = g.SIP_VERSION
    uri = ""
    if len(parts) != 3 or not g.is_token(method):
        start_error = _bad("malformed Request-Line")
    else:
        uri, version = parts[1], parts[2]
    headers = Headers(_header_lines(lines))
    req = Request(method, uri, headers, b"", version)
    try:
        if size > MAX_MESSAGE_SIZE:
            raise SipParseError(413, "Request Entity Too Large")
        if start_error is not None:
            raise start_error
        if version.upper() != g.SIP_VERSION:
            raise _bad("unsupported version", 505)
        req.version = g.SIP_VERSION
        try:
            req._request_uri()
        except ValueError:
            raise _bad("malformed Request-URI") from None
        req.body = rest[: _body_length(headers, len(rest))]
        _check_core(req)
    except SipParseError as err:
        if _answerable(req):
            err.request = req
        raise
    return req


def validate_request(req: Request) -> None:
    """Semantic checks a server core makes before acting on a request (RFC 3261 §8.2, §16.3).

    Raise `SipParseError` (with `request` set) for: wrong version (505), missing or malformed
    mandatory headers, CSeq out of range, duplicated single-valued headers, CSeq method not
    matching the Request-Line, Max-Forwards out of range (400), and a Request-URI scheme other
    than sip/sips/tel (416).
    """
    try:
        if req.version.upper() != g.SIP_VERSION:
            raise _bad("unsupported version", 505)
        _check_core(req)
        for name in g.SINGLETONS:
            if len(req.headers.get_all(name)) > 1:
                raise _bad(f"multiple {name} values")
        if req.cseq[1] != req.method:
            raise _bad("CSeq method does not match")
        scheme = uri_scheme(req.uri)
        if scheme is None:
            raise _bad("malformed Request-URI")
        if scheme not in g.SUPPORTED_SCHEMES:
            raise _bad(f"scheme {scheme}", 416)
        try:
            req._request_uri()
        except ValueError:
            raise _bad("malformed Request-URI") from None
    except SipParseError as err:
        err.request = req if _answerable(req) else None
        raise


# Serialising --------------------------------------------------------------------------------


def serialize(msg: Request | Response) -> bytes:
    """Wire form: CRLF line ends, canonical names, a Content-Length matching the body."""
    if isinstance(msg, Request):
        lines = [f"{msg.method} {msg.uri} {msg.version}"]
    else:
        lines = [f"{msg.version} {msg.status} {msg.reason}"]
    lines.extend(f"{name}: {value}" for name, value in msg.headers if name != "Content-Length")
    lines.append(f"Content-Length: {len(msg.body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode(_ENCODING, _ERRORS) + msg.body


def make_response(
    req: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to `req` (§8.2.6.2): Via(s), From, To, Call-ID and CSeq copied.

    `to_tag` is added to To unless To already has a tag. The reason defaults to the §21 phrase.
    """
    headers = Headers()
    for name, value in req.headers:
        if name == "Via":
            headers.add(name, value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        first = req.headers.get(name)
        if first is not None:
            headers.add(name, first)
    if to_tag is not None and "To" in headers:
        try:
            has_tag = req.to.tag is not None
        except ValueError:
            has_tag = True
        if not has_tag:
            headers.set("To", f"{headers.get('To')};tag={to_tag}")
    if 100 < status < 300 and req.method == "INVITE" and ";tag=" not in (
            req.headers.get("To") or "").lower():
        # §12.1.1: a response that establishes a dialog carries the request's Record-Route,
        # or the caller's in-dialog requests bypass the proxies that asked to stay on the path
        for value in req.headers.get_all("Record-Route"):
            headers.add("Record-Route", value)
    if reason is None:
        reason = g.REASON_PHRASES.get(status, _class_reason(status))
    return Response(status, reason, headers)


def _class_reason(status: int) -> str:
    return {1: "Trying", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error"}.get(
        status // 100, "Global Failure"
    )
