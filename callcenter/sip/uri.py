"""SIP URIs (RFC 3261 §19.1), name-addr values (§20.10, §20.20, §20.39) and Via (§20.42).

Parsers raise `ValueError` on malformed input; `sip.message` turns that into a `SipParseError`.
Escaped characters (%HH) in user, password, URI parameters and URI headers are decoded on
parse and re-escaped on `str()`; decoding uses UTF-8 with surrogateescape so any octet
(including %00, RFC 4475 §3.1.1.4) survives a round trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callcenter.sip import grammar as g

_URI_FORBIDDEN = re.compile(r'[\s<>"]').search

ParamValue = str | None
"""A parameter value; None for a flag parameter such as `;lr` or `;rport`."""


# Helpers --------------------------------------------------------------------------------------


def unescape(text: str) -> str:
    """Decode %HH escapes (§19.1.2); a "%" not followed by two hex digits stays literal."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%" and i + 2 < n and text[i + 1] in g.HEXDIG and text[i + 2] in g.HEXDIG:
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, allowed: frozenset[str]) -> str:
    """Escape every character not in `allowed` as %HH of its UTF-8 octets (§19.1.2)."""
    if all(c in allowed for c in text):
        return text
    parts: list[str] = []
    for c in text:
        if c in allowed:
            parts.append(c)
        else:
            parts.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(parts)


def split_outside_quotes(text: str, sep: str, *, angle: bool = False) -> list[str]:
    """Split on `sep` outside quoted strings (and, if `angle`, outside <...>), in linear time."""
    if '"' not in text and not (angle and "<" in text):
        return text.split(sep)
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif angle and c == "<":
            in_angle = True
        elif angle and c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def parse_quoted(text: str, start: int = 0) -> tuple[str, int]:
    """Parse a §25.1 quoted-string at `text[start]`; return (unescaped value, index after it)."""
    if start >= len(text) or text[start] != '"':
        raise ValueError("expected quoted string")
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated quoted string")


def quote(text: str) -> str:
    """Render `text` as a quoted-string, escaping backslash and double quote (§25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_header_params(text: str) -> dict[str, ParamValue]:
    """Parse `;name=value;flag` generic-params (§25.1); names lowercased, quotes kept.

    `text` is everything after the value, starting with ";" (or empty). LWS around ";" and "="
    is allowed (RFC 4475 §3.1.1.1).
    """
    params: dict[str, ParamValue] = {}
    text = text.strip()
    if not text:
        return params
    if text[0] != ";":
        raise ValueError(f"unexpected text before parameters: {text[:20]!r}")
    for item in split_outside_quotes(text[1:], ";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not g.is_token(name):
            raise ValueError(f"bad parameter name {name!r}")
        if eq:
            value = value.strip()
            if not value:
                raise ValueError(f"empty value for parameter {name!r}")
            if value[0] == '"':
                _, end = parse_quoted(value)
                if value[end:].strip():
                    raise ValueError(f"junk after quoted parameter {name!r}")
            elif not g.is_gen_value(value):
                raise ValueError(f"bad value for parameter {name!r}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: dict[str, ParamValue]) -> str:
    """Render generic-params as `;name=value;flag`."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _check_host(host: str) -> None:
    if not host:
        raise ValueError("empty host")
    if ":" in host:
        if not g.is_ipv6(host):
            raise ValueError(f"bad IPv6 address {host!r}")
    elif not g.is_hostname(host):
        raise ValueError(f"bad host {host!r}")


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Parse `host[:port]` (§25.1 hostport); IPv6 references lose their brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unterminated IPv6 reference")
        host = text[1:end]
        if ":" not in host:
            raise ValueError(f"bad IPv6 reference {text!r}")
        rest = text[end + 1 :]
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if ":" in port_text:
            raise ValueError(f"bad hostport {text!r}")
    _check_host(host)
    if not rest:
        return host, None
    if rest[0] != ":" or not rest[1:].isascii() or not rest[1:].isdigit():
        raise ValueError(f"bad port in {text!r}")
    port = int(rest[1:])
    if port > 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


def format_host(host: str) -> str:
    """Host as written in a URI or Via: IPv6 addresses get their brackets back."""
    return f"[{host}]" if ":" in host else host


def uri_scheme(text: str) -> str | None:
    """The lowercased scheme of an absolute URI, or None if `text` does not start with one."""
    colon = text.find(":")
    if colon <= 0:
        return None
    scheme = text[:colon]
    if scheme[0] not in g.ALPHA or not g.is_scheme_tail(scheme):
        return None
    return scheme.lower()


# SIP URI ------------------------------------------------------------------------------------


@dataclass
class SipUri:
    """A sip: or sips: URI (§19.1.1). `host` is without IPv6 brackets; values are unescaped."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, ParamValue] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP-URI / SIPS-URI; raise ValueError if malformed."""
        scheme = uri_scheme(text)
        if scheme not in ("sip", "sips"):
            raise ValueError(f"not a SIP URI: {text[:40]!r}")
        rest = text[len(scheme) + 1 :]
        if not rest or _URI_FORBIDDEN(rest):
            raise ValueError(f"bad characters in URI {text[:40]!r}")
        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            u, colon, pw = userinfo.partition(":")
            if not u or not g.is_user(u):
                raise ValueError(f"bad user part in {text[:40]!r}")
            if colon and not g.is_password(pw):
                raise ValueError(f"bad password in {text[:40]!r}")
            user = unescape(u)
            password = unescape(pw) if colon else None
        rest, qmark, header_text = rest.partition("?")
        hostport, _, param_text = rest.partition(";")
        host, port = parse_hostport(hostport)
        params: dict[str, ParamValue] = {}
        if param_text:
            for item in param_text.split(";"):
                name, eq, value = item.partition("=")
                if not name or not g.is_uri_param(name + value):
                    raise ValueError(f"bad URI parameter {item!r}")
                params[unescape(name).lower()] = unescape(value) if eq else None
        headers: dict[str, str] = {}
        if qmark:
            for item in header_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise ValueError(f"bad URI header {item!r}")
                if not g.is_uri_header(name + value):
                    raise ValueError(f"bad URI header {item!r}")
                headers[unescape(name)] = unescape(value)
        return cls(
            host=host,
            user=user,
            password=password,
            port=port,
            scheme=scheme,
            params=params,
            headers=headers,
        )

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user, g.USER_CHARS - {";", "?"}))
            if self.password is not None:
                parts += [":", escape(self.password, g.PASSWORD_CHARS)]
            parts.append("@")
        parts.append(format_host(self.host))
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params.items():
            parts += [";", escape(name, g.PARAM_CHARS)]
            if value is not None:
                parts += ["=", escape(value, g.PARAM_CHARS)]
        sep = "?"
        for name, value in self.headers.items():
            parts += [sep, escape(name, g.HEADER_CHARS), "=", escape(value, g.HEADER_CHARS)]
            sep = "&"
        return "".join(parts)

    @property
    def transport(self) -> str | None:
        """The `transport` URI parameter, lowercased, if present."""
        value = self.params.get("transport")
        return value.lower() if value else None


def parse_uri(text: str) -> SipUri | str:
    """Parse a SIP/SIPS URI into `SipUri`; any other absolute URI is returned as text.

    Raise ValueError for text that is not an absolute URI at all.
    """
    scheme = uri_scheme(text)
    if scheme is None:
        raise ValueError(f"not an absolute URI: {text[:40]!r}")
    if scheme in ("sip", "sips"):
        return SipUri.parse(text)
    if _URI_FORBIDDEN(text):
        raise ValueError(f"bad characters in URI {text[:40]!r}")
    return text


# name-addr / addr-spec ----------------------------------------------------------------------


@dataclass
class NameAddr:
    """`[display-name] <URI> *(;param)` or `addr-spec *(;param)` (§20.10, §20.20, §20.39)."""

    uri: SipUri | str
    display: str | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a From/To/Contact/Route-style value; raise ValueError if malformed."""
        s = text.strip()
        display: str | None = None
        if s.startswith('"'):
            display, end = parse_quoted(s)
            s = s[end:].lstrip()
            if not s.startswith("<"):
                raise ValueError("quoted display name without <URI>")
        lt = s.find("<")
        if lt >= 0:
            if display is None:
                tokens = s[:lt].split()
                display = " ".join(tokens) if tokens else None
            gt = s.find(">", lt)
            if gt < 0:
                raise ValueError("unterminated <URI>")
            uri = parse_uri(s[lt + 1 : gt].strip())
            params = parse_header_params(s[gt + 1 :])
        else:
            # addr-spec: a URI with ";" "," or "?" must be in <> (§20), so ";" starts params.
            uri_text, semi, param_text = s.partition(";")
            uri = parse_uri(uri_text.strip())
            params = parse_header_params(semi + param_text)
        return cls(uri=uri, display=display, params=params)

    @property
    def tag(self) -> str | None:
        """The `tag` parameter (§19.3), or None."""
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"


# Via ----------------------------------------------------------------------------------------


def _check_via_params(params: dict[str, ParamValue]) -> None:
    """Check the §20.42 / RFC 3581 grammar of the Via parameters a server acts on."""
    for name in ("received", "maddr"):
        value = params.get(name)
        if name in params and value is None:
            raise ValueError(f"Via {name} without value")
        if value is not None:
            _check_host(value[1:-1] if value.startswith("[") and value.endswith("]") else value)
    ttl = params.get("ttl")
    if "ttl" in params and (ttl is None or not _is_uint(ttl, 255)):
        raise ValueError("bad Via ttl")
    rport = params.get("rport")
    if rport is not None and not _is_uint(rport, 65535):
        raise ValueError("bad Via rport")
    if "branch" in params and params["branch"] is None:
        raise ValueError("Via branch without value")


def _is_uint(text: str, limit: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= limit


@dataclass
class Via:
    """One Via value (§20.42). `host` is without IPv6 brackets; `transport` is uppercased.

    `params` maps lowercased names to values; a flag parameter (e.g. `;rport` sent by a client,
    RFC 3581) has the value None.
    """

    transport: str
    host: str
    port: int | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm `SIP / 2.0 / UDP host[:port] *(;param)`; raise ValueError."""
        parts = text.split("/", 2)
        if len(parts) != 3:
            raise ValueError(f"bad Via {text[:40]!r}")
        name, version = parts[0].strip(), parts[1].strip()
        rest = parts[2].lstrip()
        match = g.TOKEN_RUN.match(rest)
        i = match.end() if match else 0
        transport = rest[:i]
        if not (g.is_token(name) and g.is_token(version) and g.is_token(transport)):
            raise ValueError(f"bad Via protocol {text[:40]!r}")
        rest = rest[i:]
        if not rest or rest[0] not in g.WSP:
            raise ValueError(f"bad Via sent-by {text[:40]!r}")
        rest = rest.lstrip()
        semi = rest.find(";")
        sent_by = (rest if semi < 0 else rest[:semi]).strip()
        # LWS is allowed around the ":" of sent-by (§25.1 HCOLON-like SWS rules are lenient).
        sent_by = "".join(sent_by.split())
        host, port = parse_hostport(sent_by)
        params = parse_header_params("" if semi < 0 else rest[semi:])
        _check_via_params(params)
        return cls(
            transport=transport.upper(),
            host=host,
            port=port,
            params=params,
            protocol=f"{name.upper()}/{version}",
        )

    @property
    def branch(self) -> str | None:
        """The `branch` parameter (§8.1.1.7), or None."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The `received` parameter (§18.2.1), or None."""
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        """True if an `rport` parameter is present, with or without a value (RFC 3581)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The numeric `rport` value, or None if absent or present as a bare flag (RFC 3581)."""
        value = self.params.get("rport")
        if value is None or not value.isascii() or not value.isdigit():
            return None
        return int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) from the sent-by field."""
        return self.host, self.port

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"{self.protocol}/{self.transport} {format_host(self.host)}{port}"
            f"{format_params(self.params)}"
        )
