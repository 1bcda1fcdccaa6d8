"""Events the transaction layer hands to the core above it (RFC 3261 §17, the TU interface)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from callcenter.sip.message import Request, Response

Address = tuple[str, int]


class TxKey(NamedTuple):
    """Which transaction a message belongs to (RFC 3261 §17.1.3 client, §17.2.3 server).

    ``method`` is the request's, INVITE for an ACK (it belongs to the INVITE's transaction).
    ``sent_by`` is the top Via's host:port (server side only). ``rfc2543`` holds the
    Request-URI, From tag, Call-ID and CSeq number that match requests whose branch lacks the
    magic cookie (§17.2.3's fallback), else None.

    A named tuple, not a dataclass: it keys the layer's dictionaries, looked up a few dozen
    times a call, and a tuple hashes and compares in C.
    """

    server: bool
    branch: str
    method: str
    sent_by: str = ""
    rfc2543: tuple[str, str, str, int] | None = None

    def cancelled_invite(self) -> TxKey:
        """The INVITE server transaction this CANCEL's key matches (§9.2: same Via branch
        and sent-by, or the same RFC 2543 fields)."""
        return self._replace(method="INVITE")


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the core.

    ``key`` names the server transaction created for it; it is ``None`` for an ACK, which
    never has a transaction of its own (an ACK for a non-2xx is absorbed by the layer and
    never surfaces; an ACK for a 2xx belongs to the dialog).
    """

    request: Request
    source: Address
    transport: str
    key: TxKey | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response matched to a client transaction (retransmitted 2xx included, RFC 6026)."""

    response: Response
    key: TxKey


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B or F fired (client): treat as a 408. Timer H fired (server): no ACK came."""

    key: TxKey
    request: Request
    server: bool


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """A 2xx to an INVITE was retransmitted for 64*T1 without an ACK (RFC 3261 §13.3.1.4).

    The core must end the dialog with a BYE.
    """

    key: TxKey
    request: Request
    response: Response


Event = RequestReceived | ResponseReceived | TransactionTimeout | AckTimeout
