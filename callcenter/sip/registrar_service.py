"""The registrar as a SIP service: digest authentication (401/407, RFC 3261 §22), REGISTER
answers over the pure binding table (§10.3), expiry and OPTIONS qualify of the bindings.

The process hands it the stack, the authenticator, the failure limiter and the passwords, and
hears of changes through callbacks; nothing above ``sip/`` answers a REGISTER or a challenge.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from callcenter.sip.auth import DigestAuthenticator, FailureLimiter
from callcenter.sip.errors import (
    Forbidden,
    IntervalTooBrief,
    ProxyAuthenticationRequired,
    SipError,
    Unauthorized,
)
from callcenter.sip.message import Request, make_response
from callcenter.sip.registrar import Binding, Registrar
from callcenter.sip.stack import RequestTimeout, ServerRequest, SipStack
from callcenter.sip.uri import SipUri
from callcenter.sip.useragent import new_request

log = structlog.get_logger("registrar")

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingChanged:
    """A binding came (``registered``), went, or ``expired`` on the registrar's timer."""

    ts: float  # wall-clock time
    user: str
    contact: str
    registered: bool
    source: str = ""  # transport:host:port of the REGISTER
    expires: int = 0
    user_agent: str | None = None
    expired: bool = False


@dataclass(kw_only=True, eq=False)
class RegistrarService:
    stack: SipStack
    registrar: Registrar
    auth: DigestAuthenticator
    limiter: FailureLimiter
    passwords: Mapping[str, str]
    qualify_interval: float
    on_binding: Callable[[BindingChanged], None]
    #: a user's set of bindings changed: (user, registered now)
    on_user: Callable[[str, bool], None]
    on_reachability: Callable[[str, bool], None]
    wall: Callable[[], float] = time.time  # nonces and the failure limiter run on wall-clock time
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _last_tick: float | None = field(default=None, init=False, repr=False)
    #: user -> the (transport, address) keys of its registered contacts' connections
    _flows: dict[str, set[tuple[str, tuple[str, int]]]] = field(
        default_factory=dict, init=False, repr=False)

    # ------------------------------------------------------------- digest auth
    def authenticate(self, sreq: ServerRequest, *, proxy: bool) -> str:
        """The authenticated user name; raises the digest challenge (401, or 407 when we act
        as a proxy would, for INVITE) or Forbidden while the source is blocked."""
        req = sreq.request
        ip = sreq.source[0]
        wall = self.wall()
        if self.limiter.is_blocked(ip, wall):
            log.warning("auth_blocked", source=ip, method=req.method)
            raise Forbidden(reason="Forbidden (too many failed attempts, try later)")
        value = req.headers.get("Proxy-Authorization" if proxy else "Authorization")
        if value is None and proxy:
            value = req.headers.get("Authorization")
        if not value:
            raise self._challenge(wall, proxy=proxy, stale=False)
        result = self.auth.verify(
            value, method=req.method, lookup_password=self.passwords.get, now=wall
        )
        if result.ok and result.username:
            self.limiter.record_success(ip)
            return result.username
        if result.stale or result.reason == "bad nonce":
            # an expired nonce, or one from before a restart: not a guessing attempt
            raise self._challenge(wall, proxy=proxy, stale=result.stale)
        blocked = self.limiter.record_failure(ip, wall)
        log.warning(
            "auth_failed", source=f"{ip}:{sreq.source[1]}", user=result.username,
            method=req.method, blocked=blocked,
        )
        raise self._challenge(wall, proxy=proxy, stale=False)

    def _challenge(self, wall: float, *, proxy: bool, stale: bool) -> SipError:
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        challenges = [(header, value) for value in self.auth.challenge(wall, stale=stale)]
        error = ProxyAuthenticationRequired if proxy else Unauthorized
        return error("digest challenge", headers=challenges)

    def is_user_signalling(self, req: Request, source: Address) -> bool:
        """A request from a phone registered by one of our users (it must authenticate)."""
        if "Authorization" in req.headers or "Proxy-Authorization" in req.headers:
            return True
        uri = req.from_.uri
        user = uri.user if isinstance(uri, SipUri) else None
        if user is None or user not in self.passwords:
            return False
        now = self.stack.now()
        return any(b.source == source for b in self.registrar.contacts(user, now))

    # ---------------------------------------------------------------- REGISTER
    def on_register(self, sreq: ServerRequest) -> None:
        req = sreq.request
        user = self.authenticate(sreq, proxy=False)
        aor = req.to.uri
        aor_user = aor.user if isinstance(aor, SipUri) else None
        if aor_user != user:
            log.warning("register_wrong_aor", user=user, aor=str(aor))
            raise Forbidden(reason="Forbidden (credentials do not match the AOR)")
        now = self.stack.now()
        result = self.registrar.register(req, user, sreq.source, sreq.transport, now)  # SipError: 400
        if result.status == 423:
            assert result.min_expires is not None
            raise IntervalTooBrief(result.min_expires)
        wall = self.wall()
        resp = make_response(req, 200)
        for contact in result.contacts:
            resp.headers.add("Contact", contact)
        resp.headers.add("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(wall)))
        resp.headers.add("Server", self.stack.user_agent)
        sreq.send(resp)
        source = f"{sreq.transport}:{sreq.source[0]}:{sreq.source[1]}"
        ua = req.headers.get("User-Agent")
        for binding in result.added:
            log.info("registered", user=user, contact=binding.contact, source=source)
            self.on_binding(BindingChanged(
                ts=wall, user=user, contact=binding.contact, registered=True, source=source,
                expires=binding.expires_in(now), user_agent=ua))
        for binding in result.removed:
            log.info("unregistered", user=user, contact=binding.contact)
            self.on_binding(BindingChanged(
                ts=wall, user=user, contact=binding.contact, registered=False, source=source,
                user_agent=ua))
        if result.added or result.removed:
            self.on_user(user, bool(result.contacts))
        self._remember_contacts(user, now)

    def _remember_contacts(self, user: str, now: float) -> None:
        """Tell the transports where each of ``user``'s phones on TCP or TLS listens (its
        Contact): requests go on the phone's own connection while it is open, and once it is
        gone a new connection is opened to the Contact instead of the dead source port."""
        contacts = self.stack.transports.contacts
        for key in self._flows.pop(user, ()):
            contacts.pop(key, None)
        keys = set()
        for b in self.registrar.contacts(user, now):
            try:
                uri = SipUri.parse(b.contact)
            except ValueError:
                continue
            if b.transport in ("tcp", "tls"):
                default = 5061 if b.transport == "tls" or uri.scheme == "sips" else 5060
                contacts[(b.transport, b.source)] = (uri.host, uri.port or default)
                keys.add((b.transport, b.source))
        if keys:
            self._flows[user] = keys

    # ------------------------------------------------------- expiry and qualify
    async def run(self) -> None:
        """Expire bindings and qualify registered contacts, once a second until cancelled."""
        while True:
            await asyncio.sleep(1.0)
            for binding in self.tick(self.stack.now()):
                task = asyncio.ensure_future(self.qualify(binding))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def tick(self, now: float) -> list[Binding]:
        """Expire the bindings gone by ``now``; the bindings due for an OPTIONS qualify, the
        longest unqualified first and no more than the share of all bindings that falls in
        the time since the last tick (a ``qualify_interval``'s worth at most). Phones that
        registered together (a shift logging in, the server starting) are thus qualified
        spread over the interval, not all in one burst: 600 OPTIONS and their answers at
        once held the signalling process for about 100 ms and, on a small box, the media
        workers behind it (docs/benchmarks.md)."""
        for gone in self.registrar.expire(now):
            log.info("registration_expired", user=gone.user, contact=gone.contact)
            self.on_binding(BindingChanged(ts=self.wall(), user=gone.user, contact=gone.contact,
                                           registered=False, expired=True))
            self.on_user(gone.user, False)
            self._remember_contacts(gone.user, now)
        if not self.qualify_interval:
            return []
        bindings = self.registrar.all_bindings()
        interval = self.qualify_interval
        since = interval if self._last_tick is None else min(now - self._last_tick, interval)
        self._last_tick = now
        due = sorted((b for b in bindings if now - b.last_qualified >= interval),
                     key=lambda b: b.last_qualified)
        due = due[:max(1, math.ceil(len(bindings) * since / interval))]
        for binding in due:
            binding.last_qualified = now
        return due

    async def qualify(self, binding: Binding) -> None:
        """OPTIONS to the contact; a change of reachability is told ``on_reachability``."""
        stack = self.stack
        host = stack.advertised
        req = new_request(
            "OPTIONS", binding.contact, via=stack.via(binding.transport),
            from_=f"<sip:callcenter@{host}>", to=f"<{binding.contact}>", host=host,
        )
        try:
            await stack.request(req, binding.source, binding.transport)
            ok = True
        except RequestTimeout:
            ok = False
        self.qualified(binding, ok)

    def qualified(self, binding: Binding, ok: bool) -> None:
        """Record the outcome of one OPTIONS qualify of ``binding``."""
        if ok != binding.reachable:
            log.info("contact_reachability", user=binding.user, contact=binding.contact,
                     reachable=ok)
        changed, binding.reachable = ok != binding.reachable, ok
        binding.missed_qualify = 0 if ok else binding.missed_qualify + 1
        if changed:
            self.on_reachability(binding.user, ok)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
