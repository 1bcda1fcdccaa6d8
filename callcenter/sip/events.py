"""Events the transaction layer hands to the core above it (RFC 3261 §17, the TU interface)."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.sip.message import Request, Response

Address = tuple[str, int]
TxKey = tuple[str, ...]


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
