"""Bearer tokens of the HTTP API: every route module checks requests with one :class:`Auth`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from callcenter.web.http import HttpError, HttpRequest

__all__ = ["Auth"]


class Auth:
    """``tokens``: token -> role (``admin`` may change things, ``read`` may only read);
    ``names``: token -> the name the audit trail gives its changes."""

    def __init__(self, tokens: Mapping[str, str], names: Mapping[str, str] | None = None) -> None:
        self.tokens = dict(tokens)
        self.names = dict(names or {})

    def _token(self, req: HttpRequest) -> str:
        """The request's known token (401 if none)."""
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "missing bearer token (Authorization: Bearer <token>)")
        for known in self.tokens:
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                return known
        raise HttpError(401, "unknown token")

    def require(self, req: HttpRequest, role: str = "read") -> str:
        known_role = self.tokens[self._token(req)]
        if role == "admin" and known_role != "admin":
            raise HttpError(403, "this token may only read")
        return known_role

    def who(self, req: HttpRequest) -> str:
        """Who makes the request, for the audit trail: the token's name, else its role."""
        token = self._token(req)
        return self.names.get(token) or f"{self.tokens[token]} token"
