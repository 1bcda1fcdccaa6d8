"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 2617, RFC 2069).

Server side: :class:`DigestAuthenticator` issues challenges and verifies ``Authorization`` /
``Proxy-Authorization`` values. Nonces are stateless (a timestamp, random bits and an HMAC
under a server secret), so no nonce table is kept and any worker can verify them.

Client side: :func:`build_authorization` answers a challenge, for the calls the server
places through trunks and for tests.

:class:`FailureLimiter` counts failed attempts per key (a source address, a user name) and
blocks a key for a while after too many, with bounded memory.

All of it is pure: time comes in as ``now`` (seconds, monotonic), nothing touches the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

#: Hash functions of the digest algorithms we implement (RFC 7616 §3.3); "-sess" variants
#: use the same function with the session HA1 of §3.4.2.
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}

BAD_CREDENTIALS = "bad credentials"
_REQUIRED = ("username", "realm", "nonce", "uri", "response")
_WS = " \t\r\n"
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class AuthParseError(ValueError):
    """An authentication header value that does not follow RFC 7235 §2.1 syntax."""


# ------------------------------------------------------------------------- the grammar


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest a=b, c="d"`` into the scheme and its parameters (RFC 7235 §2.1).

    Parameter names are lower-cased; quoted-string values are unquoted, with backslash escapes
    resolved (RFC 7230 §3.2.6), so commas and escaped quotes inside quotes are kept. Unquoted
    values are read leniently up to the next comma or space. Raises :class:`AuthParseError`
    on a missing scheme, a parameter without ``=``, an unterminated quote or a repeated name.
    """
    text = value.strip(_WS)
    pos = 0
    while pos < len(text) and text[pos] in _TCHAR:
        pos += 1
    scheme = text[:pos]
    if not scheme or (pos < len(text) and text[pos] not in _WS):
        raise AuthParseError("missing auth scheme")
    params: dict[str, str] = {}
    while True:
        pos = _skip(text, pos, _WS + ",")
        if pos >= len(text):
            return scheme, params
        start = pos
        while pos < len(text) and text[pos] in _TCHAR:
            pos += 1
        name = text[start:pos].lower()
        pos = _skip(text, pos, _WS)
        if not name or pos >= len(text) or text[pos] != "=":
            raise AuthParseError(f"expected name=value at offset {start}")
        pos = _skip(text, pos + 1, _WS)
        if pos < len(text) and text[pos] == '"':
            param, pos = _quoted(text, pos + 1)
        else:
            start = pos
            while pos < len(text) and text[pos] not in _WS + ',"':
                pos += 1
            param = text[start:pos]
        if name in params:
            raise AuthParseError(f"parameter {name!r} repeated")
        params[name] = param
        pos = _skip(text, pos, _WS)
        if pos < len(text) and text[pos] != ",":
            raise AuthParseError(f"expected ',' at offset {pos}")


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string body starting after the opening quote; returns (value, next pos)."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise AuthParseError("unterminated quoted string")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----------------------------------------------------------------------- the arithmetic


def _hash_for(algorithm: str) -> tuple[Callable[[bytes], str], bool] | None:
    """(hash function, is session variant) for an algorithm name, any case; None if unknown."""
    name = algorithm.upper()
    sess = name.endswith("-SESS")
    func = ALGORITHMS.get(name[:-5] if sess else name)
    return (func, sess) if func is not None else None


#: a stored password that is the digest HA1, MD5(user:realm:password) in hex, not the password
HA1_PREFIX = "ha1:"


def ha1_of(user: str, realm: str, password: str) -> str:
    """What ``ha1:`` entries hold (RFC 7616 §3.4.2, MD5)."""
    return ALGORITHMS["MD5"](f"{user}:{realm}:{password}".encode("utf-8", "surrogateescape"))


def password_matches(stored: str, *, user: str, realm: str, given: str) -> bool:
    """``given`` is the password ``stored`` stands for (plain, or an ``ha1:`` hash)."""
    if stored.startswith(HA1_PREFIX):
        mine = stored[len(HA1_PREFIX):].lower()
        return hmac.compare_digest(mine.encode(), ha1_of(user, realm, given).encode())
    return hmac.compare_digest(stored.encode(), given.encode())


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (qop=auth) or RFC 2069 §2.1.2 (no qop).

    ``algorithm`` is ``MD5``, ``SHA-256`` or their ``-sess`` variants (§3.4.2). Raises
    ``ValueError`` for an unknown algorithm, qop other than auth, or missing nc/cnonce.
    A ``password`` of ``ha1:<hex>`` is the MD5 HA1 itself (MD5 algorithms only).
    """
    found = _hash_for(algorithm)
    if found is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    h, sess = found

    def hx(*parts: str) -> str:
        return h(":".join(parts).encode("utf-8", "surrogateescape"))

    ha1 = hx(username, realm, password)
    if password.startswith(HA1_PREFIX):
        if h is not ALGORITHMS["MD5"]:
            raise ValueError("an ha1: password answers MD5 challenges only")
        ha1 = password[len(HA1_PREFIX):].lower()
    if sess:
        if cnonce is None:
            raise ValueError("-sess algorithms need a cnonce")
        ha1 = hx(ha1, nonce, cnonce)
    ha2 = hx(method, uri)
    if qop is None:
        return hx(ha1, nonce, ha2)
    if qop.lower() != "auth":
        raise ValueError(f"unsupported qop {qop!r}")
    if nc is None or cnonce is None:
        raise ValueError("qop=auth needs nc and cnonce")
    return hx(ha1, nonce, nc, cnonce, "auth", ha2)


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True)
class AuthResult:
    """Outcome of :meth:`DigestAuthenticator.verify`.

    ``username`` is the name the client claimed (also on failure, for logs and the limiter);
    ``stale`` means the credentials were right but the nonce expired: re-challenge with
    ``stale=True`` (RFC 7616 §3.3) instead of counting a failure. ``reason`` is for logs only
    and never tells an unknown user from a wrong password.
    """

    ok: bool
    username: str | None
    stale: bool = False
    reason: str = ""


class DigestAuthenticator:
    """Stateless digest challenges and verification for one realm (RFC 7616 §3.3–3.4).

    A nonce is ``<ms timestamp hex>.<random hex>.<HMAC-SHA-256(secret) hex>``; verify()
    recomputes the HMAC, so nonces survive in any number of workers without storage but not a
    change of ``secret``. The same nonce is offered in every algorithm's challenge, so a
    client that ignores ``algorithm`` and answers the SHA-256 challenge with MD5 and no
    algorithm parameter (RFC 2069 clients such as pyVoIP) still verifies as MD5.

    Replay protection of ``nc`` is not done: a captured response is accepted again for the
    same method and URI until its nonce expires (``nonce_ttl``). Keep the TTL short; SIP
    over TLS removes the exposure.
    """

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes,
        nonce_ttl: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        if not algorithms:
            raise ValueError("at least one algorithm is needed")
        for algorithm in algorithms:
            if _hash_for(algorithm) is None:
                raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self.algorithms = tuple(a.upper() for a in algorithms)
        self._secret = secret
        self.opaque = self._mac(b"opaque")[:32]

    # -- nonces

    def _mac(self, data: bytes) -> str:
        message = self.realm.encode("utf-8") + b"\x00" + data
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def make_nonce(self, now: float) -> str:
        """A fresh nonce stamped with ``now``."""
        stamp = f"{max(0, int(now * 1000)):x}.{secrets.token_hex(8)}"
        return f"{stamp}.{self._mac(stamp.encode())[:32]}"

    def _nonce_time(self, nonce: str) -> float | None:
        """The time a nonce of ours was made, or None if it is not ours (bad HMAC, garbage)."""
        stamp, _, mac = nonce.rpartition(".")
        millis, _, rand = stamp.partition(".")
        if not (millis and rand and mac) or len(millis) > 16:
            return None
        expected = self._mac(stamp.encode("utf-8", "replace"))[:32]
        if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
            return None
        try:
            return int(millis, 16) / 1000.0
        except ValueError:
            return None

    # -- challenge

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` / ``Proxy-Authenticate`` values, one per algorithm, in order
        of preference (RFC 7616 §3.7: SHA-256 first, MD5 for old phones), all with qop=auth
        and the same nonce and opaque. ``stale=True`` after an expired nonce (§3.3).
        """
        nonce = self.make_nonce(now)
        values = []
        for algorithm in self.algorithms:
            parts = [
                f"realm={_quote(self.realm)}",
                'qop="auth"',
                f"algorithm={algorithm}",
                f"nonce={_quote(nonce)}",
                f"opaque={_quote(self.opaque)}",
            ]
            if stale:
                parts.append("stale=TRUE")
            values.append("Digest " + ", ".join(parts))
        return values

    # -- verification

    def verify(
        self,
        header_value: str,
        *,
        method: str,
        lookup_password: Callable[[str], str | None],
        now: float,
    ) -> AuthResult:
        """Check an ``Authorization`` value for a request with ``method`` (RFC 7616 §3.4).

        Accepts qop=auth with nc and cnonce, and RFC 2069 responses without qop. ``uri``
        must be present but is not compared with the Request-URI (clients disagree about
        ports and parameters). Never raises on a malformed value.
        """
        try:
            scheme, params = parse_auth_params(header_value)
        except AuthParseError:
            return AuthResult(False, None, reason="malformed header")
        username = params.get("username")
        if username is None and "username*" in params:
            username = _ext_value(params["username*"])
        if scheme.lower() != "digest":
            return AuthResult(False, username, reason="unsupported scheme")
        missing = [name for name in _REQUIRED if name != "username" and name not in params]
        if username is None:
            missing.insert(0, "username")
        if missing:
            return AuthResult(False, username, reason=f"missing {missing[0]}")
        assert username is not None
        if params.get("userhash", "false").lower() == "true":
            return AuthResult(False, username, reason="userhash not supported")
        if params["realm"] != self.realm:
            return AuthResult(False, username, reason="wrong realm")
        algorithm = params.get("algorithm", "MD5").upper()
        base = algorithm.removesuffix("-SESS")
        if base not in self.algorithms or _hash_for(algorithm) is None:
            return AuthResult(False, username, reason="unsupported algorithm")
        if "opaque" in params and not hmac.compare_digest(
            params["opaque"].encode("utf-8", "replace"), self.opaque.encode()
        ):
            return AuthResult(False, username, reason="bad opaque")
        issued = self._nonce_time(params["nonce"])
        if issued is None or issued > now + 1.0:
            return AuthResult(False, username, reason="bad nonce")

        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is not None:
            if qop.lower() != "auth":
                return AuthResult(False, username, reason="unsupported qop")
            if nc is None or cnonce is None or len(nc) != 8 or not _is_hex(nc):
                return AuthResult(False, username, reason="bad nc or cnonce")
        elif algorithm.endswith("-SESS") and cnonce is None:
            return AuthResult(False, username, reason="missing cnonce")

        password = lookup_password(username)
        # Unknown users get a response computed with a throw-away password, so they cost
        # the same work and end in the same result as a wrong password.
        try:
            expected = digest_response(
                algorithm=algorithm,
                username=username,
                realm=self.realm,
                password=password if password is not None else secrets.token_hex(16),
                method=method,
                uri=params["uri"],
                nonce=params["nonce"],
                qop=qop,
                nc=nc,
                cnonce=cnonce,
            )
        except UnicodeEncodeError:  # lone surrogates that no client could have hashed
            return AuthResult(False, username, reason="malformed header")
        except ValueError:  # an ha1: password answered with SHA-256
            return AuthResult(False, username, reason=BAD_CREDENTIALS)
        given = params["response"].lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given) or password is None:
            return AuthResult(False, username, reason=BAD_CREDENTIALS)
        if now - issued > self.nonce_ttl:
            return AuthResult(False, username, stale=True, reason="stale nonce")
        return AuthResult(True, username, reason="ok")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _ext_value(value: str) -> str | None:
    """Decode an RFC 8187 ext-value such as ``UTF-8''J%C3%A4s%C3%B8n`` (RFC 7616 §3.4.4)."""
    charset, sep, rest = value.partition("'")
    _, sep2, encoded = rest.partition("'")
    if not (sep and sep2) or charset.upper() != "UTF-8":
        return None
    try:
        return unquote(encoded, encoding="utf-8", errors="strict") if encoded else None
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------- client side


def build_authorization(
    challenge_value: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """An ``Authorization`` value answering one ``WWW-Authenticate`` value (RFC 7616 §3.4).

    Uses qop=auth when the challenge offers it, else the RFC 2069 form. Raises ``ValueError``
    for a challenge that is not Digest, lacks realm or nonce, names an algorithm we do not
    implement, or offers only qop values other than auth.
    """
    try:
        scheme, params = parse_auth_params(challenge_value)
    except AuthParseError as exc:
        raise ValueError(f"malformed challenge: {exc}") from exc
    if scheme.lower() != "digest":
        raise ValueError(f"unsupported auth scheme {scheme!r}")
    if "realm" not in params or "nonce" not in params:
        raise ValueError("challenge lacks realm or nonce")
    algorithm = params.get("algorithm")
    realm, nonce = params["realm"], params["nonce"]
    qop = None
    if "qop" in params:
        offered = [q.strip().lower() for q in params["qop"].split(",")]
        if "auth" not in offered:
            raise ValueError(f"no supported qop in {params['qop']!r}")
        qop = "auth"
    nc_text = f"{nc:08x}"
    needs_cnonce = qop is not None or (algorithm or "").upper().endswith("-SESS")
    response = digest_response(
        algorithm=algorithm or "MD5",
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=cnonce if needs_cnonce else None,
    )
    parts = [f"username={_quote(username)}", f"realm={_quote(realm)}", f"uri={_quote(uri)}"]
    if algorithm is not None:
        parts.append(f"algorithm={algorithm}")
    parts.append(f"nonce={_quote(nonce)}")
    if qop is not None:
        parts += [f"nc={nc_text}", f"cnonce={_quote(cnonce)}", f"qop={qop}"]
    elif needs_cnonce:
        parts.append(f"cnonce={_quote(cnonce)}")
    parts.append(f"response={_quote(response)}")
    if "opaque" in params:
        parts.append(f"opaque={_quote(params['opaque'])}")
    return "Digest " + ", ".join(parts)


def answerable(challenges: Iterable[str]) -> str | None:
    """The first challenge :func:`build_authorization` can answer, or None."""
    for value in challenges:
        try:
            build_authorization(value, method="INVITE", uri="sip:x", username="u",
                                password="p", cnonce="c")
        except ValueError:
            continue
        return value
    return None


# ------------------------------------------------------------------------ failure limiter


@dataclass
class _Record:
    failures: deque[float]
    blocked_until: float | None = None
    last_seen: float = 0.0


@dataclass
class FailureLimiter:
    """Blocks a key after ``max_failures`` failures within ``window`` seconds, for
    ``block_for`` seconds (fail2ban-style defence against password guessing).

    Memory is bounded: a key's failures are kept in a deque of at most ``max_failures``
    stamps, idle entries are dropped as time passes, and at most ``max_keys`` keys are
    tracked (the least recently touched is forgotten first, which under a flood of distinct
    keys can also forget a blocked one: pair this with a per-source limit upstream).
    """

    max_failures: int = 5
    window: float = 60.0
    block_for: float = 300.0
    max_keys: int = 10_000
    _records: OrderedDict[Hashable, _Record] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.max_keys < 1:
            raise ValueError("max_failures and max_keys must be at least 1")

    def __len__(self) -> int:
        return len(self._records)

    def record_failure(self, key: Hashable, now: float) -> bool:
        """Count a failure; True when this one started a block."""
        self._expire(now)
        record = self._records.get(key)
        if record is None:
            record = _Record(deque(maxlen=self.max_failures))
            self._records[key] = record
        self._records.move_to_end(key)
        record.last_seen = now
        if record.blocked_until is not None and record.blocked_until > now:
            return False
        record.blocked_until = None
        while record.failures and record.failures[0] <= now - self.window:
            record.failures.popleft()
        record.failures.append(now)
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        if len(record.failures) >= self.max_failures:
            record.failures.clear()
            record.blocked_until = now + self.block_for
            return True
        return False

    def is_blocked(self, key: Hashable, now: float) -> bool:
        record = self._records.get(key)
        return bool(record and record.blocked_until is not None and record.blocked_until > now)

    def record_success(self, key: Hashable) -> None:
        """Forget the key's failures; a block in force stays (check is_blocked first)."""
        record = self._records.get(key)
        if record is not None and record.blocked_until is None:
            del self._records[key]
        elif record is not None:
            record.failures.clear()

    def _expire(self, now: float) -> None:
        """Drop entries idle longer than any window or block they could still matter for."""
        horizon = max(self.window, self.block_for)
        while self._records:
            key, record = next(iter(self._records.items()))
            if now - record.last_seen <= horizon:
                break
            del self._records[key]
