"""Registrar bindings (RFC 3261 §10.3), pure with an injected clock.

The asyncio core authenticates the REGISTER and then asks ``Registrar.register()`` what to
answer; the bindings are what routing and OPTIONS qualify read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callcenter.sip.errors import BadRequest, Forbidden, SipError
from callcenter.sip.message import Request
from callcenter.sip.uri import NameAddr

Address = tuple[str, int]


@dataclass
class Binding:
    user: str
    contact: str  # the Contact URI as registered
    expires_at: float
    source: Address  # where the REGISTER came from (NAT-friendly route to the phone)
    transport: str
    call_id: str
    cseq: int
    user_agent: str = ""
    q: float = 1.0
    reachable: bool = True  # from OPTIONS qualify
    last_qualified: float = 0.0
    missed_qualify: int = 0

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True)
class RegisterResult:
    status: int
    reason: str
    contacts: list[str] = field(default_factory=list)  # Contact header values for the 200
    min_expires: int | None = None
    added: tuple[Binding, ...] = ()
    removed: tuple[Binding, ...] = ()


@dataclass(kw_only=True, eq=False)
class Registrar:
    """Contact bindings per user: several contacts per user, expiry, un-REGISTER."""

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 600
    max_contacts: int = 10
    _bindings: dict[str, dict[str, Binding]] = field(default_factory=dict, init=False, repr=False)

    def register(
        self, req: Request, user: str, source: Address, transport: str, now: float
    ) -> RegisterResult:
        self.expire(now)
        header_expires = _int_or_none(req.headers.get("Expires"))
        contacts = req.headers.get_all("Contact")
        call_id, cseq = req.call_id, req.cseq[0]
        current = self._bindings.get(user) or {}  # stored below only if it keeps a binding
        added: list[Binding] = []
        removed: list[Binding] = []
        if any(c.strip() == "*" for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                raise BadRequest("Contact: * needs Expires: 0 and no other Contact")
            removed = list(current.values())
            self._bindings.pop(user, None)
            return RegisterResult(200, "OK", [], added=(), removed=tuple(removed))
        parsed: list[tuple[str, int, float]] = []
        for value in contacts:
            try:
                addr = NameAddr.parse(value)
            except ValueError as exc:
                raise BadRequest("malformed Contact") from exc
            expires = _int_or_none(addr.params.get("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else self.default_expires
            if 0 < expires < self.min_expires:
                return RegisterResult(423, "Interval Too Brief", min_expires=self.min_expires)
            q = _float_or(addr.params.get("q"), 1.0)
            parsed.append((str(addr.uri), min(expires, self.max_expires), q))
        ua = req.headers.get("User-Agent") or ""
        for uri, expires, q in parsed:
            old = current.get(uri)
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                raise SipError("out-of-order REGISTER")
            if expires == 0:
                if old is not None:
                    removed.append(current.pop(uri))
                continue
            if old is None and len(current) >= self.max_contacts:
                raise Forbidden("too many contacts")
            binding = Binding(
                user, uri, now + expires, source, transport, call_id, cseq, ua, q,
                last_qualified=now,
            )
            current[uri] = binding
            if old is None:
                added.append(binding)
        if current:
            self._bindings[user] = current
        else:
            self._bindings.pop(user, None)
        return RegisterResult(
            200, "OK",
            [f"<{b.contact}>;expires={b.expires_in(now)}" for b in current.values()],
            added=tuple(added), removed=tuple(removed),
        )

    def contacts(self, user: str, now: float, *, reachable_only: bool = False) -> list[Binding]:
        """Live bindings of ``user``, most preferred (q, then newest) first."""
        found = [
            b for b in self._bindings.get(user, {}).values()
            if b.expires_at > now and (b.reachable or not reachable_only)
        ]
        found.sort(key=lambda b: (-b.q, -b.expires_at))
        return found

    def all_bindings(self) -> list[Binding]:
        return [b for per_user in self._bindings.values() for b in per_user.values()]

    def is_registered(self, user: str, now: float) -> bool:
        return bool(self.contacts(user, now, reachable_only=True))

    def expire(self, now: float) -> list[Binding]:
        gone: list[Binding] = []
        for user in list(self._bindings):
            per_user = self._bindings[user]
            for uri in [u for u, b in per_user.items() if b.expires_at <= now]:
                gone.append(per_user.pop(uri))
            if not per_user:
                del self._bindings[user]
        return gone


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return None


def _float_or(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
