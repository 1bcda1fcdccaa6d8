"""SIP errors that carry their wire answer (status code, reason phrase, extra headers).

A parser, a core or a request handler raises one of these when the *peer* sent something we
must refuse. One boundary answers it: ``SipStack`` turns a handler's SipError into the response
``status``/``reason`` with ``headers`` (RFC 3261 §21), and a SipParseError into a stateless
answer. Misuse of our own API raises ordinary ``ValueError``/``TypeError`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from callcenter.sip.grammar import REASON_PHRASES


class SipError(Exception):
    """Base class: a failure with the SIP response that answers it.

    ``status`` without ``reason`` takes the §21 phrase. ``headers`` go into the answer, e.g.
    Allow for a 405, Min-Expires for a 423, WWW-Authenticate for a 401 (a name may repeat).
    """

    status: int = 500
    reason: str = "Server Internal Error"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "reason" not in vars(cls):  # a subclass names its status; the phrase follows
            cls.reason = REASON_PHRASES.get(cls.status, cls.reason)

    def __init__(
        self, detail: str = "", *, status: int | None = None, reason: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        if status is not None:
            self.status = status
            self.reason = REASON_PHRASES.get(status, self.reason)
        if reason is not None:
            self.reason = reason
        self.detail = detail
        self.headers: tuple[tuple[str, str], ...] = tuple(
            headers.items() if isinstance(headers, Mapping) else headers)
        super().__init__(f"{self.status} {self.reason}" + (f": {detail}" if detail else ""))


class BadRequest(SipError):
    """400: malformed request or body (RFC 3261 §21.4.1)."""

    status = 400


class Unauthorized(SipError):
    """401: credentials missing or wrong (RFC 3261 §21.4.2)."""

    status = 401


class ProxyAuthenticationRequired(SipError):
    """407: as 401, from an element that authenticates on the way (§21.4.8)."""

    status = 407


class Forbidden(SipError):
    """403: understood, refused, and retrying with credentials will not help (§21.4.4)."""

    status = 403


class NotFound(SipError):
    """404: the user does not exist at the domain (§21.4.5)."""

    status = 404


class UnsupportedMediaType(SipError):
    """415: a body we do not understand; Accept lists what we do (§21.4.13)."""

    status = 415

    def __init__(self, accept: str = "application/sdp", detail: str = "") -> None:
        super().__init__(detail, headers={"Accept": accept})


class MethodNotAllowed(SipError):
    """405: the method is known but not allowed here; Allow lists what is (§21.4.6)."""

    status = 405

    def __init__(self, allow: str, detail: str = "") -> None:
        super().__init__(detail, headers={"Allow": allow})


class IntervalTooBrief(SipError):
    """423: the registration expires too soon; Min-Expires says how soon (§21.4.17)."""

    status = 423

    def __init__(self, min_expires: int, detail: str = "") -> None:
        super().__init__(detail, headers={"Min-Expires": str(min_expires)})


class TemporarilyUnavailable(SipError):
    """480: the callee is known but cannot be reached now (§21.4.18)."""

    status = 480


class RequestTerminated(SipError):
    """487: the request was CANCELled (§21.4.25)."""

    status = 487


class CallDoesNotExist(SipError):
    """481: the request matches no dialog or transaction (§21.4.19)."""

    status = 481


class NotAcceptableHere(SipError):
    """488: no acceptable session description, e.g. no common codec (§21.4.26, RFC 3264 §6)."""

    status = 488


class RequestPending(SipError):
    """491: a request of ours for the same dialog is still pending: glare (§14.2, §21.4.27)."""

    status = 491


class ServiceUnavailable(SipError):
    """503: temporarily overloaded or in maintenance (§21.5.4)."""

    status = 503

