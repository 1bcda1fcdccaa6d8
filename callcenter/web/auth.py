"""Who makes an API request: the bearer tokens of ``http.tokens`` (machines: ``admin`` or
``read``) and the tokens users get from ``POST /api/login`` (their role: ``agent`` or
``supervisor``). Every route module checks requests with one :class:`Auth`; what each role
may do on each route is ``roles.py``'s, which marks a request it let through."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from callcenter.web.http import HttpError, HttpRequest

SESSION_SECONDS = 12 * 3600  #: a login's token lasts a working day


@dataclass(frozen=True)
class Principal:
    """The role of a request's token; ``user``: the logged-in user (None: a config token)."""

    role: str
    name: str
    user: str | None = None
    expires: float | None = None


class Auth:
    """``tokens``: token -> role (``admin`` may change things, ``read`` may only read);
    ``names``: token -> the name the audit trail gives its changes."""

    def __init__(self, tokens: Mapping[str, str], names: Mapping[str, str] | None = None,
                 *, wall: Callable[[], float] = time.time) -> None:
        self.tokens = dict(tokens)
        self.names = dict(names or {})
        self.wall = wall
        self.sessions: dict[str, Principal] = {}  #: login tokens
        self._granted: set[int] = set()  #: requests the role policy let through
        self.internal = secrets.token_urlsafe(32)  #: the server's own look-ups (admin)

    def login(self, user: str, role: str) -> tuple[str, Principal]:
        """A new session token for ``user`` with ``role``."""
        now = self.wall()
        self.sessions = {t: p for t, p in self.sessions.items() if (p.expires or 0) > now}
        token = secrets.token_urlsafe(32)
        self.sessions[token] = Principal(role, f"user {user}", user, now + SESSION_SECONDS)
        return token, self.sessions[token]

    def logout_users(self, keep: Callable[[str, str], bool]) -> None:
        """End the sessions of users for whom ``keep(user, role)`` is false (a reload)."""
        self.sessions = {t: p for t, p in self.sessions.items()
                         if p.user is not None and keep(p.user, p.role)}

    def _token(self, req: HttpRequest) -> str:
        """The request's bearer token (401 if none)."""
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "missing bearer token (Authorization: Bearer <token>)")
        return token.strip()

    def principal(self, req: HttpRequest) -> Principal:
        """Who the request's token is (401 for an unknown or expired one)."""
        token = self._token(req)
        if hmac.compare_digest(self.internal.encode(), token.encode()):
            return Principal("admin", "server")
        for known, role in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(role, self.names.get(known) or f"{role} token")
        session = self.sessions.get(token)
        if session is not None and (session.expires or 0) > self.wall():
            return session
        raise HttpError(401, "unknown token")

    def require(self, req: HttpRequest, role: str = "read") -> str:
        """The token's role: any may read, ``admin`` may change; a user's role only where the
        role policy let the request through (403 otherwise)."""
        known = self.principal(req)
        if id(req) in self._granted or known.role == "admin" or (
                role == "read" and known.role == "read"):
            return known.role
        if known.role == "read":
            raise HttpError(403, "this token may only read")
        raise HttpError(403, f"not allowed for role {known.role}")

    def who(self, req: HttpRequest) -> str:
        """Who makes the request, for the audit trail: the token's name, else its role."""
        return self.principal(req).name

    def grant(self, req: HttpRequest) -> None:
        self._granted.add(id(req))

    def release(self, req: HttpRequest) -> None:
        self._granted.discard(id(req))
