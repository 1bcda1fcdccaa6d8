"""The four RFC 3261 §17 transaction state machines, sans-I/O.

Everything that affects a transaction's state lives in this file. The layer is driven by
three inputs, ``receive()``, the ``send_*()`` calls and ``handle_timer(now)``, and the caller
pulls outputs with ``datagrams_to_send()``, ``next_event()`` and ``get_timer()``.

Timers (RFC 3261 §17 and table 4, RFC 6026 for the Accepted state):

====== ====================================== =========================
timer  meaning                                value
====== ====================================== =========================
A      INVITE request retransmit (UDP)         T1, doubling
B      INVITE client transaction timeout       64*T1
C      INVITE client: provisional, no final    180 s after the last 1xx (§16.6 value)
D      wait for response retransmits           32 s UDP, 0 TCP
E      non-INVITE request retransmit (UDP)     T1 doubling, capped at T2
F      non-INVITE client transaction timeout   64*T1
G      INVITE final response retransmit (UDP)  T1 doubling, capped at T2
H      wait for ACK receipt                    64*T1
I      wait for ACK retransmits                T4 UDP, 0 TCP
J      wait for non-INVITE request retransmits 64*T1 UDP, 0 TCP
K      wait for response retransmits           T4 UDP, 0 TCP
L      server INVITE Accepted -> Terminated    64*T1
M      client INVITE Accepted -> Terminated    64*T1
2xx    UAS 2xx retransmit until ACK (§13.3.1.4) T1 doubling, capped at T2, for 64*T1
====== ====================================== =========================
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from callcenter.sip.events import (
    AckTimeout,
    Address,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTimeout,
    TxKey,
)
from callcenter.sip.message import Headers, Request, Response, make_response, serialize
from callcenter.sip.received import RELIABLE, response_destination, stamp_via

MAGIC_COOKIE = "z9hG4bK"
TIMER_C = 180.0  # seconds; "greater than 3 minutes" for proxies (§16.6), a bound for UACs here


class TxState(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


@dataclass(eq=False)
class Transaction:
    key: TxKey
    request: Request
    peer: Address
    transport: str
    server: bool
    state: TxState
    wire: bytes = b""  # last message we sent (request for clients, response for servers)
    last_response: Response | None = None
    interval: float = 0.0  # current retransmission interval
    timers: dict[str, float] = field(default_factory=dict)
    ack_wire: bytes = b""  # client INVITE: the ACK for a non-2xx final response

    @property
    def invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE


def server_key(req: Request) -> TxKey:
    """Match a request to its server transaction (RFC 3261 §17.2.3).

    An ACK matches the INVITE it acknowledges; CANCEL gets a transaction of its own.
    Requests without the RFC 3261 magic cookie fall back to the RFC 2543 rules.
    """
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return ("s", branch, f"{via.host.lower()}:{via.port or 5060}", method)
    return (
        "s2543",
        req.uri,
        req.from_tag or "",
        req.call_id,
        str(req.cseq[0]),
        f"{via.host.lower()}:{via.port or 5060}",
        branch,
        method,
    )


def client_key(branch: str, method: str) -> TxKey:
    """Match a response to its client transaction (RFC 3261 §17.1.3)."""
    return ("c", branch, "INVITE" if method == "ACK" else method)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self._txs: dict[TxKey, Transaction] = {}
        self._out: list[tuple[bytes, Address, str]] = []
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, TxKey, str]] = []
        self._seq = itertools.count()
        # (Call-ID, From tag, CSeq) of requests in progress -> key, for merged requests (§8.2.2.2)
        self._merge: dict[tuple[str, str, int, str], TxKey] = {}
        # UAS 2xx awaiting ACK (§13.3.1.4): (Call-ID, From tag, CSeq number) -> INVITE server
        # tx key; the From tag tells two dialogs with the same Call-ID and CSeq apart
        self._await_ack: dict[tuple[str, str, int], TxKey] = {}

    # ---------------------------------------------------------------- outputs
    def datagrams_to_send(self) -> list[tuple[bytes, Address, str]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            at, _, key, name = heap[0]
            tx = self._txs.get(key)
            if tx is not None and tx.timers.get(name) == at:
                return at
            heapq.heappop(heap)
        return None

    def __len__(self) -> int:
        return len(self._txs)

    def get(self, key: TxKey) -> Transaction | None:
        return self._txs.get(key)

    # ----------------------------------------------------------------- inputs
    def receive(self, msg: Request | Response, source: Address, transport: str, now: float) -> None:
        if isinstance(msg, Response):
            self._receive_response(msg, now)
        else:
            self._receive_request(msg, source, transport, now)

    def send_request(
        self, req: Request, dest: Address, transport: str, now: float
    ) -> TxKey:
        """Start a client transaction. The request's top Via must carry a fresh branch."""
        if req.method == "ACK":
            raise ValueError("ACK has no transaction; use send_stateless()")
        key = client_key(req.top_via.branch or "", req.method)
        invite = req.method == "INVITE"
        tx = Transaction(
            key, req, dest, transport, server=False,
            state=TxState.CALLING if invite else TxState.TRYING,
        )
        tx.wire = serialize(req)
        self._txs[key] = tx
        self._out.append((tx.wire, dest, transport))
        if not tx.reliable:
            tx.interval = self.t1
            self._arm(tx, "A" if invite else "E", now + self.t1)
        self._arm(tx, "B" if invite else "F", now + 64 * self.t1)
        return key

    def send_response(self, key: TxKey, resp: Response, now: float) -> None:
        """Send a response within server transaction ``key``."""
        tx = self._txs.get(key)
        if tx is None or tx.state in (TxState.TERMINATED, TxState.CONFIRMED):
            return
        if tx.state is TxState.COMPLETED or tx.state is TxState.ACCEPTED:
            if not (tx.state is TxState.ACCEPTED and 200 <= resp.status < 300):
                return  # final response already sent
        tx.last_response = resp
        tx.wire = serialize(resp)
        self._out.append((tx.wire, tx.peer, tx.transport))
        status = resp.status
        if tx.invite:
            if status < 200:
                tx.state = TxState.PROCEEDING
            elif status < 300:
                self._accept_invite(tx, resp, now)
            else:
                tx.state = TxState.COMPLETED
                if not tx.reliable:
                    tx.interval = self.t1
                    self._arm(tx, "G", now + self.t1)
                self._arm(tx, "H", now + 64 * self.t1)
        else:
            if status < 200:
                tx.state = TxState.PROCEEDING
            else:
                tx.state = TxState.COMPLETED
                self._arm(tx, "J", now + (0 if tx.reliable else 64 * self.t1))

    def send_stateless(self, msg: Request | Response, dest: Address, transport: str) -> None:
        self._out.append((serialize(msg), dest, transport))

    def respond_stateless(
        self, req: Request, status: int, source: Address, transport: str,
        reason: str | None = None,
    ) -> None:
        """Answer a request outside any transaction (e.g. a 400 for a broken request)."""
        resp = make_response(req, status, reason)
        dest = response_destination(req.top_via, source, transport)
        self._out.append((serialize(resp), dest, transport))

    def transport_error(self, dest: Address, transport: str, data: bytes) -> None:
        """``data`` could not be sent to ``dest`` (e.g. a failed TCP connect).

        The client transaction whose request it was ends at once with a 503 for the TU
        (§8.1.3.1, §17.1.1.2, §17.1.2.2) instead of waiting 64*T1 for Timer B/F.
        """
        for tx in list(self._txs.values()):
            if (
                not tx.server and tx.wire == data and tx.peer == dest
                and tx.transport == transport
                and tx.state in (TxState.CALLING, TxState.TRYING, TxState.PROCEEDING)
            ):
                resp = make_response(tx.request, 503, "Service Unavailable")
                self._events.append(ResponseReceived(resp, tx.key))
                self._terminate(tx.key)

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, key, name = heapq.heappop(heap)
            tx = self._txs.get(key)
            if tx is None or tx.timers.get(name) != at:
                continue
            del tx.timers[name]
            self._fire(tx, name, now)

    # -------------------------------------------------------------- internals
    def _arm(self, tx: Transaction, name: str, at: float) -> None:
        tx.timers[name] = at
        heapq.heappush(self._heap, (at, next(self._seq), tx.key, name))

    def _terminate(self, key: TxKey) -> None:
        tx = self._txs.pop(key, None)
        if tx is None:
            return
        tx.state = TxState.TERMINATED
        tx.timers.clear()
        if tx.server:
            req = tx.request
            mkey = (req.call_id, req.from_tag or "", req.cseq[0], req.method)
            if self._merge.get(mkey) == key:
                del self._merge[mkey]
            akey = _ack_key(req)
            if self._await_ack.get(akey) == key:
                del self._await_ack[akey]

    def _accept_invite(self, tx: Transaction, resp: Response, now: float) -> None:
        first = tx.state is not TxState.ACCEPTED
        tx.state = TxState.ACCEPTED
        if first:
            self._arm(tx, "L", now + 64 * self.t1)
            self._await_ack[_ack_key(tx.request)] = tx.key
            tx.interval = self.t1
            if not tx.reliable:
                self._arm(tx, "2xx", now + self.t1)

    def _fire(self, tx: Transaction, name: str, now: float) -> None:
        if name in ("A", "E", "G", "2xx"):
            self._out.append((tx.wire, tx.peer, tx.transport))
            if name == "A":
                tx.interval *= 2
            elif name == "E" and tx.state is TxState.PROCEEDING:
                tx.interval = self.t2
            else:
                tx.interval = min(tx.interval * 2, self.t2)
            self._arm(tx, name, now + tx.interval)
            return
        if name in ("B", "C", "F"):
            if tx.state in (TxState.CALLING, TxState.TRYING, TxState.PROCEEDING):
                self._events.append(TransactionTimeout(tx.key, tx.request, server=False))
            self._terminate(tx.key)
        elif name == "H":
            self._events.append(TransactionTimeout(tx.key, tx.request, server=True))
            self._terminate(tx.key)
        elif name == "L":
            akey = _ack_key(tx.request)
            if self._await_ack.get(akey) == tx.key:
                del self._await_ack[akey]
                assert tx.last_response is not None
                self._events.append(AckTimeout(tx.key, tx.request, tx.last_response))
            self._terminate(tx.key)
        elif name in ("D", "I", "J", "K", "M"):
            self._terminate(tx.key)

    def _receive_request(self, req: Request, source: Address, transport: str, now: float) -> None:
        stamp_via(req, source)
        key = server_key(req)
        tx = self._txs.get(key)
        if req.method == "ACK":
            if tx is not None and tx.invite and tx.state is TxState.COMPLETED:
                tx.state = TxState.CONFIRMED
                tx.timers.pop("G", None)
                tx.timers.pop("H", None)
                self._arm(tx, "I", now + (0 if tx.reliable else self.t4))
                return
            if tx is not None and tx.state is TxState.CONFIRMED:
                return  # retransmitted ACK absorbed
            inv_key = self._await_ack.pop(_ack_key(req), None)
            if inv_key is not None:
                inv = self._txs.get(inv_key)
                if inv is not None:
                    inv.timers.pop("2xx", None)
            self._events.append(RequestReceived(req, source, transport, None))
            return
        if tx is not None:
            # A retransmission: answer with the last response, never bother the core.
            if tx.state is TxState.ACCEPTED:
                return  # the core's 2xx retransmissions cover it (RFC 6026 §7.1)
            if tx.wire and tx.server:
                self._out.append((tx.wire, tx.peer, tx.transport))
            return
        if req.to_tag is None:
            mkey = (req.call_id, req.from_tag or "", req.cseq[0], req.method)
            other = self._merge.get(mkey)
            if other is not None and other in self._txs and other != key:
                # A merged request (§8.2.2.2): same request forked back to us another way.
                self.respond_stateless(req, 482, source, transport, "Loop Detected")
                return
        tx = Transaction(
            key, req, response_destination(req.top_via, source, transport), transport, server=True,
            state=TxState.PROCEEDING if req.method == "INVITE" else TxState.TRYING,
        )
        self._txs[key] = tx
        if req.to_tag is None:
            self._merge[(req.call_id, req.from_tag or "", req.cseq[0], req.method)] = key
        if req.method == "INVITE":
            # Send 100 Trying at once so the caller stops retransmitting (§17.2.1).
            self.send_response(key, make_response(req, 100), now)
        self._events.append(RequestReceived(req, source, transport, key))

    def _receive_response(self, resp: Response, now: float) -> None:
        vias = resp.vias
        if not vias:
            return
        key = client_key(vias[0].branch or "", resp.cseq[1])
        tx = self._txs.get(key)
        if tx is None:
            return  # stray response: dropped (RFC 3261 §18.1.2)
        status = resp.status
        if tx.invite:
            if tx.state in (TxState.CALLING, TxState.PROCEEDING):
                tx.timers.pop("A", None)
                if status < 200:
                    tx.state = TxState.PROCEEDING
                    tx.timers.pop("B", None)
                    # Timer B stops at the first 1xx; without a bound a peer that rings and
                    # never sends a final response (nor a 487 to our CANCEL) would keep the
                    # transaction, and the TU's future, forever.
                    self._arm(tx, "C", now + TIMER_C)
                    self._events.append(ResponseReceived(resp, key))
                elif status < 300:
                    tx.state = TxState.ACCEPTED
                    tx.timers.clear()
                    self._arm(tx, "M", now + 64 * self.t1)
                    self._events.append(ResponseReceived(resp, key))
                else:
                    tx.state = TxState.COMPLETED
                    tx.timers.clear()
                    tx.ack_wire = serialize(ack_for(tx.request, resp))
                    self._out.append((tx.ack_wire, tx.peer, tx.transport))
                    self._arm(tx, "D", now + (0 if tx.reliable else 32.0))
                    self._events.append(ResponseReceived(resp, key))
            elif tx.state is TxState.COMPLETED and status >= 300:
                self._out.append((tx.ack_wire, tx.peer, tx.transport))
            elif tx.state is TxState.ACCEPTED and 200 <= status < 300:
                self._events.append(ResponseReceived(resp, key))
            return
        if tx.state in (TxState.TRYING, TxState.PROCEEDING):
            if status < 200:
                tx.state = TxState.PROCEEDING
            else:
                tx.state = TxState.COMPLETED
                tx.timers.clear()
                self._arm(tx, "K", now + (0 if tx.reliable else self.t4))
            self._events.append(ResponseReceived(resp, key))


def _ack_key(req: Request) -> tuple[str, str, int]:
    """Which 2xx an ACK acknowledges (§13.3.1.4): same Call-ID, From tag and CSeq number."""
    return (req.call_id, req.from_tag or "", req.cseq[0])


def _same_transaction(invite: Request, method: str, to: str) -> Request:
    """A request that belongs to ``invite``'s transaction: its top Via (branch), Route set,
    From, Call-ID and CSeq number, with ``method`` (RFC 3261 §9.1, §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", str(invite.vias[0]))
    for value in invite.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} {method}")
    return Request(method, invite.uri, headers)


def ack_for(invite: Request, resp: Response) -> Request:
    """The ACK for a non-2xx final response: same branch, To (with tag) from the response."""
    return _same_transaction(invite, "ACK", resp.headers.get("To") or "")


def cancel_for(invite: Request) -> Request:
    """The CANCEL of a pending INVITE: same branch and To as the INVITE."""
    return _same_transaction(invite, "CANCEL", invite.headers.get("To") or "")
