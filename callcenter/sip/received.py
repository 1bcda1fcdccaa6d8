"""Where a response goes: the ``received`` stamp on receipt and the response address.

RFC 3261 §18.2.1: a server MUST add ``received=<source address>`` to the top Via when its
sent-by host differs from the packet's source. §18.2.2: over a reliable transport the
response goes back on the connection the request came on; otherwise to the ``received``
address (the source) with the sent-by port, 5060 when none. RFC 3581: ``rport`` asks for the
source port too. A proxy or SBC that puts a host name in Via therefore gets its answers
without a DNS lookup of that name.
"""

from __future__ import annotations

from callcenter.sip.events import Address
from callcenter.sip.message import Request
from callcenter.sip.uri import Via

RELIABLE = frozenset({"tcp", "tls", "ws", "wss"})
DEFAULT_PORT = 5060


def response_destination(via: Via, source: Address, transport: str) -> Address:
    """Where responses to a request with top Via ``via`` from ``source`` go (§18.2.2).

    The address is always the source's (what ``received`` records; a ``received`` the
    sender wrote itself is not trusted), except for a ``maddr`` without ``rport``.
    """
    if transport in RELIABLE or via.has_rport:
        return source
    port = via.port or DEFAULT_PORT
    return (via.params.get("maddr") or source[0], port)


def stamp_via(req: Request, source: Address) -> None:
    """Add ``received`` and fill ``rport`` on the top Via (§18.2.1, RFC 3581 §4)."""
    vias = req.vias
    top = vias[0]
    changed = False
    if top.host.strip("[]").lower() != source[0]:
        top.params["received"] = source[0]
        changed = True
    if "rport" in top.params and not top.params["rport"]:
        top.params["rport"] = str(source[1])
        top.params["received"] = source[0]
        changed = True
    if changed:
        req.headers.remove("Via")
        for via in vias:
            req.headers.add("Via", str(via))
