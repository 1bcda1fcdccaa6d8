"""Bearer tokens of the HTTP API: every route module checks requests with one :class:`Auth`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from callcenter.web.http import HttpError, HttpRequest

__all__ = ["Auth"]


class Auth:
    """``tokens``: token -> role (``admin`` may change things, ``read`` may only read)."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self.tokens = dict(tokens)

    def require(self, req: HttpRequest, role: str = "read") -> str:
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "missing bearer token (Authorization: Bearer <token>)")
        for known, known_role in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                if role == "admin" and known_role != "admin":
                    raise HttpError(403, "this token may only read")
                return known_role
        raise HttpError(401, "unknown token")
