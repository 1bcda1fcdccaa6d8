"""What a user agent sends outside a dialog (RFC 3261 §8.1.1), and the waits of one.

Requests inside a dialog are built by :class:`~callcenter.sip.dialog.Dialog`; the layers
above ask for requests here and never compose SIP headers themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from callcenter.sip.auth import answerable, build_authorization
from callcenter.sip.dialog import new_call_id, new_tag
from callcenter.sip.errors import CallDoesNotExist, Forbidden, MethodNotAllowed
from callcenter.sip.message import Headers, Request, Response
from callcenter.sip.stack import ServerRequest

#: the methods a call leg of ours accepts (RFC 3261 §20.5)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER"
ALLOW_HEADERS = {"Allow": ALLOW}
#: the methods the server accepts outside a dialog too (REGISTER for the phones)
SERVER_ALLOW = f"{ALLOW}, REGISTER"


@dataclass(frozen=True, kw_only=True)
class Timers:
    """The waits of a user agent, derived from RFC 3261's T1 and T4 (§17.1.1.1, table 4).

    Defaults are RFC 3261's: T1 500 ms (a round trip), T4 5 s (the longest a message
    stays in the network).
    """

    t1: float = 0.5
    t4: float = 5.0

    @property
    def transaction(self) -> float:
        """Timer B, F and H (64·T1, 32 s): the longest a transaction can take."""
        return 64 * self.t1

    @property
    def ack(self) -> float:
        """The longest the ACK of our 2xx is waited for: Timer H, plus 4·T1 (34 s) for the
        BYE that the ACK timeout sends to end the leg first."""
        return self.transaction + 4 * self.t1

    @property
    def bye(self) -> float:
        """A guard over our BYE's answer: its transaction ends it at Timer F; this is
        Timer F plus 2·T4 (42 s), for a stack that would never say so."""
        return self.transaction + 2 * self.t4

    @property
    def cancel(self) -> float:
        """How long a CANCEL's own answer is waited for before the leg is ended anyway:
        2·T4 (10 s), a request and its answer each the longest in the network."""
        return 2 * self.t4

    @property
    def crossing_2xx(self) -> float:
        """How long after our CANCEL a 2xx that crossed it may still arrive: T4 (5 s)."""
        return self.t4


def new_request(
    method: str, uri: str, *, via: str, from_: str, to: str, host: str,
    contact: str | None = None,
) -> Request:
    """A request outside any dialog (§8.1.1): a fresh From tag and Call-ID, CSeq 1.

    ``from_`` and ``to`` are name-addrs without tags; ``host`` names the Call-ID's host.
    """
    headers = Headers()
    headers.add("Via", via)
    headers.add("Max-Forwards", "70")
    headers.add("From", f"{from_};tag={new_tag()}")
    headers.add("To", to)
    headers.add("Call-ID", new_call_id(host))
    headers.add("CSeq", f"1 {method}")
    if contact:
        headers.add("Contact", contact)
    return Request(method, uri, headers)


def new_invite(
    uri: str, *, via: str, host: str, from_user: str, from_display: str = "", to_user: str,
    contact: str, sdp: bytes, from_host: str | None = None, extra: Sequence[tuple[str, str]] = (),
) -> Request:
    """An INVITE opening a dialog with our SDP offer (§13.2.1), From (in ``from_host``, by
    default ours) and To in our domain ``host`` (a caller's number and name travel in From);
    ``extra`` headers (Privacy, P-Asserted-Identity) follow."""
    display = f'"{from_display}" ' if from_display else ""
    invite = new_request(
        "INVITE", uri, via=via, from_=f"{display}<sip:{from_user}@{from_host or host}>",
        to=f"<sip:{to_user}@{host}>", host=host, contact=contact,
    )
    for name, value in extra:
        invite.headers.add(name, value)
    invite.headers.add("Allow", ALLOW)
    invite.headers.add("Content-Type", "application/sdp")
    invite.body = sdp
    return invite


def authorized_retry(
    invite: Request, resp: Response, *, via: str, user: str, password: str
) -> Request | None:
    """``invite`` again, answering the 401/407 ``resp`` with digest credentials (RFC 3261
    §22.2): same Call-ID, From tag and To (no tag), CSeq + 1, a new branch in ``via``.
    None when ``resp`` offers no challenge we can answer."""
    proxy = resp.status == 407
    challenge = answerable(resp.headers.get_all(
        "Proxy-Authenticate" if proxy else "WWW-Authenticate"))
    if challenge is None:
        return None
    headers = invite.headers.copy()
    headers.set("Via", via)
    headers.set("CSeq", f"{invite.cseq[0] + 1} {invite.method}")
    headers.add("Proxy-Authorization" if proxy else "Authorization", build_authorization(
        challenge, method=invite.method, uri=invite.uri, username=user, password=password,
        cnonce=new_tag()))
    return Request(invite.method, invite.uri, headers, invite.body)


def answer_sdp(
    sreq: ServerRequest, *, contact: str, sdp: bytes, to_tag: str | None = None
) -> Response:
    """A 200 carrying our SDP and Contact (the dialog's remote target, §12.1.1)."""
    return sreq.respond(200, to_tag=to_tag, headers={"Contact": contact}, body=sdp)


@dataclass(frozen=True, slots=True)
class Handlers:
    """Where :func:`dispatch` sends the requests a user agent does not answer itself."""

    invite: Callable[[ServerRequest], Awaitable[None]]  # a new call
    in_dialog: Callable[[ServerRequest], Awaitable[None]]  # BYE, re-INVITE, INFO... of a dialog
    cancel: Callable[[ServerRequest], None]
    register: Callable[[ServerRequest], None]


async def dispatch(sreq: ServerRequest, handlers: Handlers) -> None:
    """Send a request to its handler by dialog (a To tag, §12.2.2) and method; answer OPTIONS
    (§11.2) here, absorb an ACK without a dialog, refuse BYE/INFO outside one (481), REFER
    outside one (403: only a party of a call may transfer it; RFC 3515 lets a UA refuse) and
    other methods (405 with Allow). Errors raised here or by a handler are answered by the
    stack (:func:`~callcenter.sip.stack.answer_failure`)."""
    req = sreq.request
    method = req.method
    if method == "CANCEL":
        handlers.cancel(sreq)
    elif req.to_tag is not None and method != "REGISTER":
        await handlers.in_dialog(sreq)
    elif method == "ACK":
        return  # the ACK of a 2xx of a dialog we no longer know: nothing to do
    elif method == "REGISTER":
        handlers.register(sreq)
    elif method == "OPTIONS":
        sreq.respond(200, headers={"Allow": SERVER_ALLOW, "Accept": "application/sdp"})
    elif method == "INVITE":
        await handlers.invite(sreq)
    elif method in ("BYE", "INFO"):
        raise CallDoesNotExist(f"{method} outside a dialog")
    elif method == "REFER":
        raise Forbidden("REFER outside a dialog")
    else:
        raise MethodNotAllowed(SERVER_ALLOW)
