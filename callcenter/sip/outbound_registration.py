"""Registering ourselves at a carrier (RFC 3261 §10.2, the client side), without I/O.

:class:`OutboundRegistration` is one account's state machine. The asyncio layer asks
:meth:`~OutboundRegistration.poll` for the next REGISTER when it is due, sends it and hands
the answer back to :meth:`~OutboundRegistration.on_response` (or a timeout to
:meth:`~OutboundRegistration.on_error`); :attr:`~OutboundRegistration.wake_at` says when to
ask again. Time comes in as ``now``.

- A binding is refreshed before it lapses: half-way for short ones, a minute early for long.
- A 401/407 is answered at once with digest credentials, at most once per attempt (twice
  when the second challenge says ``stale``), so a wrong password costs one more REGISTER,
  not a tight loop; the attempt then fails.
- A failed attempt (an error answer, a timeout, a transport error, bad credentials) is
  retried after a backoff doubling from ``retry_min`` up to ``retry_max`` (a 503's
  Retry-After is honoured within that cap).
- A 423 takes the registrar's Min-Expires and asks again at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from callcenter.sip.auth import answerable, build_authorization, parse_auth_params
from callcenter.sip.dialog import new_call_id, new_tag
from callcenter.sip.message import Headers, Request, Response
from callcenter.sip.uri import NameAddr, SipUri


class RegState(StrEnum):
    IDLE = "idle"  #: nothing sent yet
    REGISTERING = "registering"  #: a REGISTER is out
    REGISTERED = "registered"
    FAILED = "failed"  #: the last attempt failed; retried at ``wake_at``


@dataclass(frozen=True, kw_only=True)
class Account:
    """Who we register as: ``user`` at ``domain`` with ``password``; ``contact`` is where
    the carrier sends our calls (a name-addr, ``<sip:user@host:port>``)."""

    user: str
    password: str
    domain: str
    contact: str
    expires: int = 3600


@dataclass(frozen=True)
class Change:
    """What an input did to the registration, for logs, events and metrics."""

    state: RegState
    status: int | None  #: the answer's status; None for a timeout or transport error
    reason: str
    expires: int = 0  #: seconds granted (REGISTERED only)
    auth_failed: bool = False  #: the carrier refused our credentials


class OutboundRegistration:
    def __init__(
        self, account: Account, *, retry_min: float = 5.0, retry_max: float = 300.0,
        cnonce: str | None = None,
    ) -> None:
        self.account = account
        self.retry_min, self.retry_max = retry_min, retry_max
        self.state = RegState.IDLE
        self.call_id = new_call_id(account.domain)  # one Call-ID for every refresh (§10.2.4)
        self.from_tag = new_tag()
        self.cseq = 0
        self.expires = account.expires  #: what we ask for (a 423 raises it)
        self.wake_at: float | None = 0.0  #: when poll() has a REGISTER; None while one is out
        self.registered_until: float | None = None
        self.failures = 0  #: consecutive failed attempts
        self.last: Change | None = None
        self._challenge: tuple[str, str] | None = None  #: (header name, challenge value)
        self._nc = 0
        self._answers = 0  #: challenges answered within this attempt
        self._sent: Request | None = None
        self._again: int | None = None  #: the Expires of a REGISTER to send again (challenged)
        self._cnonce = cnonce or secrets.token_hex(8)

    # ----------------------------------------------------------------- output
    def poll(self, now: float, *, via: str) -> Request | None:
        """The REGISTER to send now, if one is due."""
        if self.wake_at is None or now < self.wake_at:
            return None
        return self._register(self._again, via)

    def unregister(self, via: str) -> Request | None:
        """A REGISTER with Expires 0, when a binding may be in force (on shutdown)."""
        if self.registered_until is None:
            return None
        return self._register(0, via)

    def _register(self, expires: int | None, via: str) -> Request:
        acc = self.account
        self.cseq += 1
        aor = f"<sip:{acc.user}@{acc.domain}>"
        headers = Headers()
        headers.add("Via", via)
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{aor};tag={self.from_tag}")
        headers.add("To", aor)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.cseq} REGISTER")
        headers.add("Contact", acc.contact)
        headers.add("Expires", str(self.expires if expires is None else expires))
        uri = f"sip:{acc.domain}"
        if self._challenge is not None:
            name, value = self._challenge
            self._nc += 1
            headers.add(name, build_authorization(
                value, method="REGISTER", uri=uri, username=acc.user, password=acc.password,
                cnonce=self._cnonce, nc=self._nc))
        req = Request("REGISTER", uri, headers)
        self._sent, self._again = req, None
        self.wake_at = None
        if self.state is not RegState.REGISTERED:
            self.state = RegState.REGISTERING
        return req

    # ------------------------------------------------------------------ input
    def on_response(self, resp: Response, now: float) -> Change | None:
        """The final answer to our REGISTER. None means: poll again now (a challenge to
        answer, a longer interval to ask for)."""
        sent = self._sent
        if resp.status in (401, 407):
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            challenge = answerable(resp.headers.get_all(name))
            stale = challenge is not None and _is_stale(challenge)
            if challenge is not None and (self._answers == 0 or (stale and self._answers < 2)):
                self._answers += 1
                self._challenge = ("Authorization" if resp.status == 401
                                   else "Proxy-Authorization", challenge)
                self._nc = 0
                self._again = _int(sent.headers.get("Expires") if sent else None, self.expires)
                self.wake_at = now
                return None
            self._challenge = None
            reason = "no usable challenge" if challenge is None else "credentials refused"
            return self._fail(now, resp.status, reason, auth_failed=challenge is not None)
        if resp.status == 423 and sent is not None:
            try:
                wanted = int(resp.headers.get("Min-Expires") or "")
            except ValueError:
                wanted = 0
            if wanted > self.expires:
                self.expires = wanted
                self.wake_at = now
                return None
            return self._fail(now, 423, "interval too brief")
        if 200 <= resp.status < 300:
            asked = int((sent.headers.get("Expires") if sent else None) or self.expires)
            if asked == 0:
                self.state, self.registered_until, self.wake_at = RegState.IDLE, None, None
                return self._note(Change(self.state, resp.status, "unregistered"))
            granted = self._granted(resp, asked)
            if granted <= 0:
                return self._fail(now, resp.status, "binding not kept")
            self.failures = self._answers = 0
            self.state = RegState.REGISTERED
            self.registered_until = now + granted
            self.wake_at = now + granted - min(granted / 2, 60.0)
            return self._note(Change(self.state, resp.status, "registered", expires=granted))
        retry_after = 0.0
        if resp.status == 503:
            try:
                retry_after = float((resp.headers.get("Retry-After") or "0").split(";")[0])
            except ValueError:
                retry_after = 0.0
        return self._fail(now, resp.status, resp.reason or str(resp.status),
                          at_least=retry_after)

    def on_error(self, reason: str, now: float) -> Change:
        """No answer (Timer F) or the transport could not send."""
        return self._fail(now, None, reason)

    # ---------------------------------------------------------------- helpers
    def backoff(self, failures: int) -> float:
        return min(self.retry_max, self.retry_min * 2.0 ** max(0, failures - 1))

    def _fail(self, now: float, status: int | None, reason: str, *, auth_failed: bool = False,
              at_least: float = 0.0) -> Change:
        self.failures += 1
        self._answers = 0
        self.wake_at = now + min(self.retry_max, max(at_least, self.backoff(self.failures)))
        if self.registered_until is not None and self.registered_until <= now:
            self.registered_until = None
        self.state = RegState.FAILED
        return self._note(Change(self.state, status, reason, auth_failed=auth_failed))

    def _note(self, change: Change) -> Change:
        self.last = change
        return change

    def _granted(self, resp: Response, asked: int) -> int:
        """Seconds the registrar kept our binding: our Contact's ``expires``, else the Expires
        header, else what we asked (§10.2.4)."""
        mine = _uri_key(self.account.contact)
        for value in resp.headers.get_all("Contact"):
            try:
                contact = NameAddr.parse(value)
            except ValueError:
                continue
            if _uri_key(str(contact.uri)) == mine and "expires" in contact.params:
                return _int(contact.params["expires"], asked)
        return _int(resp.headers.get("Expires"), asked)

def _is_stale(challenge: str) -> bool:
    return parse_auth_params(challenge)[1].get("stale", "").lower() == "true"


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _uri_key(text: str) -> tuple[str | None, str, int | None]:
    """A contact's user, host and port: how the registrar's echo is matched to ours."""
    try:
        uri = NameAddr.parse(text).uri if "<" in text else SipUri.parse(text)
    except ValueError:
        return None, text, None
    if not isinstance(uri, SipUri):
        return None, str(uri), None
    return uri.user, uri.host.lower(), uri.port
