"""SIP errors that carry their wire answer (status code and reason phrase).

A core raises one of these when the *peer* sent something we must refuse; the boundary
that handles the request turns it into a response with ``status`` and ``reason``
(RFC 3261 §21). Misuse of our own API raises ordinary ``ValueError``/``TypeError`` instead.
"""

from __future__ import annotations


class SipError(Exception):
    """Base class: a failure with the SIP response that answers it."""

    status: int = 500
    reason: str = "Server Internal Error"

    def __init__(self, detail: str = "", *, status: int | None = None, reason: str | None = None):
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.status} {self.reason}" + (f": {detail}" if detail else ""))


class BadRequest(SipError):
    """400: malformed request or body (RFC 3261 §21.4.1)."""

    status = 400
    reason = "Bad Request"


class Unauthorized(SipError):
    """401: credentials missing or wrong (RFC 3261 §21.4.2)."""

    status = 401
    reason = "Unauthorized"


class Forbidden(SipError):
    """403: understood, refused, and retrying with credentials will not help (§21.4.4)."""

    status = 403
    reason = "Forbidden"


class NotFound(SipError):
    """404: the user does not exist at the domain (§21.4.5)."""

    status = 404
    reason = "Not Found"


class CallDoesNotExist(SipError):
    """481: the request matches no dialog or transaction (§21.4.19)."""

    status = 481
    reason = "Call/Transaction Does Not Exist"


class BusyHere(SipError):
    """486: the callee is busy (§21.4.24)."""

    status = 486
    reason = "Busy Here"


class NotAcceptableHere(SipError):
    """488: no acceptable session description, e.g. no common codec (§21.4.26, RFC 3264 §6)."""

    status = 488
    reason = "Not Acceptable Here"


class ServiceUnavailable(SipError):
    """503: temporarily overloaded or in maintenance (§21.5.4)."""

    status = 503
    reason = "Service Unavailable"


__all__ = [
    "BadRequest",
    "BusyHere",
    "CallDoesNotExist",
    "Forbidden",
    "NotAcceptableHere",
    "NotFound",
    "ServiceUnavailable",
    "SipError",
    "Unauthorized",
]
