"""Dialog state (RFC 3261 §12): identifiers, sequence numbers, route set, remote target."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field, replace
from enum import Enum

from callcenter.sip.errors import BadRequest
from callcenter.sip.message import Headers, Request, Response
from callcenter.sip.uri import NameAddr, SipUri, parse_header_params


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def parse_replaces(value: str) -> tuple[str, str, str]:
    """The (Call-ID, to-tag, from-tag) a Replaces value names (RFC 3891 §6.1): the to-tag is
    the receiver's own tag in that dialog, the from-tag the other side's; BadRequest."""
    call_id, semi, rest = value.strip().partition(";")
    try:
        params = parse_header_params(semi + rest)
    except ValueError as exc:
        raise BadRequest(f"bad Replaces: {exc}") from None
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not call_id.strip() or not isinstance(to_tag, str) or not isinstance(from_tag, str):
        raise BadRequest("Replaces needs a Call-ID, a to-tag and a from-tag")
    return call_id.strip(), to_tag, from_tag


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From/To name-addr as text (without tag)
    remote_uri: str
    remote_target: str  # Contact URI of the peer
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uas(cls, req: Request, local_tag: str) -> Dialog:
        """The dialog a UAS creates when it answers ``req`` (§12.1.1)."""
        contact = req.headers.get("Contact")
        if not contact:
            raise BadRequest("missing Contact")
        return cls(
            call_id=req.call_id,
            local_tag=local_tag,
            remote_tag=req.from_tag or "",
            local_uri=_without_tag(req.to),
            remote_uri=_without_tag(req.from_),
            remote_target=_contact_target(req),
            route_set=list(req.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=req.cseq[0],
        )

    @classmethod
    def from_uac(cls, req: Request, resp: Response) -> Dialog:
        """The dialog a UAC creates from a 1xx-with-tag or 2xx response (§12.1.2)."""
        target = _contact_target(resp) if resp.headers.get("Contact") else req.uri
        return cls(
            call_id=req.call_id,
            local_tag=req.from_tag or "",
            remote_tag=resp.to_tag or "",
            local_uri=_without_tag(req.from_),
            remote_uri=_without_tag(req.to),
            remote_target=target,
            route_set=list(reversed(resp.headers.get_all("Record-Route"))),
            local_seq=req.cseq[0],
            remote_seq=None,
            state=DialogState.CONFIRMED if 200 <= resp.status < 300 else DialogState.EARLY,
        )

    def confirm(self) -> None:
        """A 2xx to the INVITE was sent or received (§12.1)."""
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        """A BYE, or the end of the leg (§15): no request goes in this dialog any more."""
        self.state = DialogState.TERMINATED

    def accept_remote_request(self, req: Request) -> bool:
        """Check CSeq order of an in-dialog request (§12.2.2); False means answer 500."""
        seq = req.cseq[0]
        if req.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        if req.method in ("INVITE", "UPDATE") and req.headers.get("Contact"):
            self.remote_target = _contact_target(req)
        return True

    def create_request(
        self, method: str, *, via: str, contact: str | None = None, cseq: int | None = None
    ) -> Request:
        """A request inside this dialog (§12.2.1.1). ``via`` is the full Via value."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        target = self.remote_target
        routes = list(self.route_set)
        first = _route_uri(routes[0]) if routes else None
        if first is not None and "lr" not in first.params:
            # A strict router (§12.2.1.1): it becomes the Request-URI, without the parameters
            # a Request-URI may not carry, and the remote target goes last in the Route set.
            params = {k: v for k, v in first.params.items() if k != "method"}
            target = str(replace(first, params=params, headers={}))
            routes = [*routes[1:], f"<{self.remote_target}>"]
        headers = Headers()
        headers.add("Via", via)
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        headers.add("From", f"{self.local_uri};tag={self.local_tag}")
        headers.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if contact:
            headers.add("Contact", contact)
        return Request(method, target, headers)

    def ack(self, *, via: str, cseq: int) -> Request:
        """The ACK of a 2xx to our INVITE with CSeq ``cseq`` (§13.2.2.4)."""
        return self.create_request("ACK", via=via, cseq=cseq)

    def bye(self, *, via: str) -> Request:
        return self.create_request("BYE", via=via)

    def reinvite(self, *, via: str, contact: str, sdp: bytes) -> Request:
        """A re-INVITE with our SDP offer (§14.1): a session refresh or a media change."""
        return self._with_body(self.create_request("INVITE", via=via, contact=contact),
                               "application/sdp", sdp)

    def refer(
        self, *, via: str, contact: str, refer_to: str, referred_by: str | None = None
    ) -> Request:
        """A REFER asking the peer to call ``refer_to`` (RFC 3515 §2.4.1): exactly one
        Refer-To, a name-addr; the implicit subscription reports back by NOTIFY."""
        req = self.create_request("REFER", via=via, contact=contact)
        req.headers.add("Refer-To", refer_to if "<" in refer_to else f"<{refer_to}>")
        if referred_by:
            req.headers.add("Referred-By", referred_by)  # RFC 3892
        return req

    def notify(
        self, *, via: str, contact: str, status: int, reason: str, refer_cseq: int | None = None,
        expires: int = 60,
    ) -> Request:
        """A NOTIFY of the refer event package (RFC 3515 §2.4.4): a message/sipfrag body
        with the Status-Line the referenced request got; a final status (>= 200) ends the
        subscription. ``refer_cseq`` is the REFER's CSeq, the ``id`` of every REFER after
        the first in a dialog (§2.4.6)."""
        req = self.create_request("NOTIFY", via=via, contact=contact)
        req.headers.add("Event", "refer" if refer_cseq is None else f"refer;id={refer_cseq}")
        req.headers.add("Subscription-State",
                        "terminated;reason=noresource" if status >= 200
                        else f"active;expires={expires}")
        return self._with_body(req, "message/sipfrag;version=2.0",
                               f"SIP/2.0 {status} {reason}\r\n".encode())

    @staticmethod
    def _with_body(req: Request, content_type: str, body: bytes) -> Request:
        req.headers.add("Content-Type", content_type)
        req.body = body
        return req

    def next_hop(self) -> tuple[str, int] | None:
        """Where in-dialog requests go when the dialog has a route set: the first Route's
        host and port (§8.1.2; for a strict router that is also the Request-URI).

        None without a route set, and for a route this endpoint cannot use as an address (a
        host name: there is no RFC 3263 resolver here; an unparsable value): the caller then
        keeps its own destination, the address the dialog's signalling came from (NAT).
        """
        first = _route_uri(self.route_set[0]) if self.route_set else None
        if first is None:
            return None
        try:
            ipaddress.ip_address(first.host)
        except ValueError:
            return None
        return (first.host, first.port or (5061 if first.scheme == "sips" else 5060))


def _route_uri(route: str) -> SipUri | None:
    """The SIP URI of a Route / Record-Route value; None if it is not one."""
    try:
        uri = NameAddr.parse(route).uri
    except ValueError:
        return None
    return uri if isinstance(uri, SipUri) else None


def _contact_target(msg: Request | Response) -> str:
    """The first Contact's URI as text (the message's copy); ValueError for ``*`` or a value
    that does not parse, as parsing it here did."""
    uri = msg.contacts[0].uri
    if uri == "*":
        raise ValueError("Contact * names no target")
    return str(uri)


def _without_tag(addr: NameAddr) -> str:
    """``addr`` (a copy the message handed out) as text, without its tag."""
    addr.params.pop("tag", None)
    return str(addr)
