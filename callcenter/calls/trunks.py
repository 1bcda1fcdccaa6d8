"""Which trunk an INVITE comes from (``trunks[].inbound``).

``ip``: from one of the trunk's ``addresses``. ``register``: sent to the Contact we registered
at the carrier (the Request-URI's user is our ``register.user``) from the registrar's address.
``both``: either. A registered trunk's match wins over an address match.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from callcenter.config.models import Trunk
from callcenter.sip.uri import SipUri


@dataclass(frozen=True)
class Registered:
    """Our registration at a trunk: the Contact's user and the registrar's addresses."""

    user: str
    sources: frozenset[str]


def addresses_of(host: str) -> frozenset[str]:
    """``host``'s addresses: itself when an IP address, else what it resolves to (once, at
    start; empty when it does not resolve)."""
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    except OSError:
        return frozenset()


def trunk_of(trunks: Sequence[Trunk], registered: Mapping[str, Registered], target: object,
             source: str) -> Trunk | None:
    """The trunk of an INVITE to ``target`` (its Request-URI) from IP ``source``, else None."""
    user = target.user if isinstance(target, SipUri) else None
    for trunk in trunks:
        reg = registered.get(trunk.name)
        if trunk.inbound != "ip" and reg and user == reg.user and source in reg.sources:
            return trunk
    addr = _address(source)
    return next((t for t in trunks if t.inbound != "register" and any(
        addr in _network(net) for net in t.addresses)), None)


@lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A caller's IP address, parsed once (every call from a carrier comes from a few)."""
    return ipaddress.ip_address(text)


@lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A trunk's address or network as configured, parsed once."""
    return ipaddress.ip_network(text, strict=False)
