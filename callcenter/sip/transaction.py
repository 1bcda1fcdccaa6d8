"""The four RFC 3261 §17 transaction state machines, sans-I/O.

Everything that affects a transaction's state lives in this file, and all of it in one table,
``TABLE``: (machine, state, input) -> (actions, next state), where an input is a ``Timer``
firing or an ``Input`` (a response received or sent, a retransmitted request, an ACK, a
transport error). What the RFC says to absorb has an entry that does nothing; a pair without an
entry raises ``TransactionError``. The layer is driven by three inputs, ``receive()``, the
``send_*()`` calls and ``handle_timer(now)``, and the caller pulls outputs with
``datagrams_to_send()``, ``next_event()`` and ``get_timer()``.

Timers (RFC 3261 §17 and table 4, RFC 6026 for the Accepted state):

====== ====================================== =========================
timer  meaning                                value
====== ====================================== =========================
A      INVITE request retransmit (UDP)         T1, doubling
B      INVITE client transaction timeout       64*T1
C      INVITE client: provisional, no final    180 s after the last 1xx (§16.6 value)
D      wait for response retransmits           32 s UDP (a fixed minimum), 0 TCP
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum

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
TIMER_D = 32.0  # seconds over UDP: "at least 32 seconds" (§17.1.1.2), whatever T1 is


class _Enum(Enum):
    """An enum hashed by identity (its members are singletons): the table's lookups hash a
    state and an input a few dozen times a call, and Enum's own hash runs in Python."""

    __hash__ = object.__hash__


class TxState(_Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class Machine(_Enum):
    """The four machines of RFC 3261 §17 (with RFC 6026's Accepted state)."""

    INVITE_CLIENT = "INVITE client"  # §17.1.1
    NON_INVITE_CLIENT = "non-INVITE client"  # §17.1.2
    INVITE_SERVER = "INVITE server"  # §17.2.1
    NON_INVITE_SERVER = "non-INVITE server"  # §17.2.2


class Timer(StrEnum):
    """The timers of the table above; each is also an input of the machine it runs in."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    RETRANSMIT_2XX = "2xx"


class Input(_Enum):
    """What else drives a transaction: the TU, the peer and the transport."""

    START = "start"  # the transaction was created (client: TU's request; server: peer's)
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL = "TU sends 300-699"
    TRANSPORT_ERROR = "transport error"


class Do(_Enum):
    """Side effects of a transition, run in the order the table lists them."""

    TRANSMIT = "transmit"  # (re)send the transaction's last message: request or response
    RESPOND = "respond"  # adopt the TU's response as the last message and send it
    SEND_TRYING = "send 100"  # §17.2.1: at once, so the caller stops retransmitting
    REPORT = "report"  # the response to the TU (ResponseReceived)
    NEW_REQUEST = "new request"  # the request to the TU (RequestReceived)
    ACK_TO_TU = "ACK to TU"  # an ACK of a 2xx: stop that 2xx's retransmissions, tell the TU
    SEND_ACK = "send ACK"  # build the ACK of a non-2xx final response (§17.1.1.3), send it
    RESEND_ACK = "resend ACK"
    AWAIT_ACK = "await ACK"  # remember the 2xx until its ACK comes (§13.3.1.4)
    TIMEOUT = "timeout"  # TransactionTimeout to the TU
    ACK_TIMEOUT = "ACK timeout"  # AckTimeout to the TU if the 2xx is still unacknowledged
    FAIL_503 = "503 to TU"  # §8.1.3.1: a transport error reads as a 503
    RESET_INTERVAL = "interval = T1"
    DOUBLE = "interval *= 2"  # Timer A: no cap
    DOUBLE_CAPPED = "interval = min(2 * interval, T2)"  # Timers E, G, 2xx
    INTERVAL_T2 = "interval = T2"  # Timer E in Proceeding (§17.1.2.2)
    STOP_TIMERS = "stop all timers"
    TERMINATE = "terminate"


@dataclass(frozen=True, slots=True)
class Start:
    """Arm ``timer`` (its duration comes from ``TransactionLayer.duration``)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class Stop:
    timer: Timer


Action = Do | Start | Stop
Step = tuple[tuple[Action, ...], TxState]


class TransactionError(Exception):
    """An input the transaction's state machine has no entry for (a bug above or here).

    Inputs the RFC says to absorb (retransmissions, late responses) have entries that do
    nothing, so a peer can never cause this.
    """


def _absorb(*states: TxState) -> dict[TxState, Step]:
    return {state: ((), state) for state in states}


def _rows(
    inputs: tuple[Input | Timer, ...], by_state: Mapping[TxState, Step]
) -> dict[tuple[TxState, Input | Timer], Step]:
    return {(state, i): step for i in inputs for state, step in by_state.items()}


S = TxState
_RECV_ANY = (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FINAL)
_SEND_ANY = (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FINAL)
_END: Step = ((Do.TERMINATE,), S.TERMINATED)
_TIMEOUT: Step = ((Do.TIMEOUT, Do.TERMINATE), S.TERMINATED)
_FAIL: Step = ((Do.FAIL_503, Do.TERMINATE), S.TERMINATED)

#: Everything a transaction does: (machine, state, input) -> (actions, next state). A pair
#: that is not here raises TransactionError.
TABLE: dict[Machine, dict[tuple[TxState, Input | Timer], Step]] = {
    Machine.INVITE_CLIENT: {
        (S.CALLING, Input.START): (
            (Do.TRANSMIT, Do.RESET_INTERVAL, Start(Timer.A), Start(Timer.B)), S.CALLING),
        (S.CALLING, Timer.A): ((Do.TRANSMIT, Do.DOUBLE, Start(Timer.A)), S.CALLING),
        (S.CALLING, Timer.B): _TIMEOUT,
        # Timer B stops at the first 1xx; Timer C bounds a peer that rings and never sends a
        # final response (nor a 487 to our CANCEL), which would keep the TU waiting forever.
        **_rows((Input.RECV_1XX,), {s: (
            (Stop(Timer.A), Stop(Timer.B), Start(Timer.C), Do.REPORT), S.PROCEEDING)
            for s in (S.CALLING, S.PROCEEDING)}),
        **_rows((Input.RECV_2XX,), {s: (
            (Do.STOP_TIMERS, Start(Timer.M), Do.REPORT), S.ACCEPTED)
            for s in (S.CALLING, S.PROCEEDING)}),
        **_rows((Input.RECV_FINAL,), {s: (
            (Do.STOP_TIMERS, Do.SEND_ACK, Start(Timer.D), Do.REPORT), S.COMPLETED)
            for s in (S.CALLING, S.PROCEEDING)}),
        **_rows((Input.TRANSPORT_ERROR,), {S.CALLING: _FAIL, S.PROCEEDING: _FAIL}),
        (S.PROCEEDING, Timer.C): _TIMEOUT,
        # Completed: a retransmitted final response is ACKed again, not reported (§17.1.1.2)
        (S.COMPLETED, Input.RECV_FINAL): ((Do.RESEND_ACK,), S.COMPLETED),
        **_rows((Input.RECV_1XX, Input.RECV_2XX, Input.TRANSPORT_ERROR), _absorb(S.COMPLETED)),
        (S.COMPLETED, Timer.D): _END,
        # Accepted: every 2xx goes up, the TU ACKs each (RFC 6026 §8.4); the rest is absorbed
        (S.ACCEPTED, Input.RECV_2XX): ((Do.REPORT,), S.ACCEPTED),
        **_rows((Input.RECV_1XX, Input.RECV_FINAL, Input.TRANSPORT_ERROR),
                _absorb(S.ACCEPTED)),
        (S.ACCEPTED, Timer.M): _END,
    },
    Machine.NON_INVITE_CLIENT: {
        (S.TRYING, Input.START): (
            (Do.TRANSMIT, Do.RESET_INTERVAL, Start(Timer.E), Start(Timer.F)), S.TRYING),
        (S.TRYING, Timer.E): ((Do.TRANSMIT, Do.DOUBLE_CAPPED, Start(Timer.E)), S.TRYING),
        (S.PROCEEDING, Timer.E): (
            (Do.TRANSMIT, Do.INTERVAL_T2, Start(Timer.E)), S.PROCEEDING),
        **_rows((Timer.F,), {S.TRYING: _TIMEOUT, S.PROCEEDING: _TIMEOUT}),
        **_rows((Input.TRANSPORT_ERROR,), {S.TRYING: _FAIL, S.PROCEEDING: _FAIL}),
        **_rows((Input.RECV_1XX,), {s: ((Do.REPORT,), S.PROCEEDING)
                                    for s in (S.TRYING, S.PROCEEDING)}),
        **_rows((Input.RECV_2XX, Input.RECV_FINAL), {s: (
            (Do.STOP_TIMERS, Start(Timer.K), Do.REPORT), S.COMPLETED)
            for s in (S.TRYING, S.PROCEEDING)}),
        # Completed: response retransmissions are absorbed (§17.1.2.2)
        **_rows((*_RECV_ANY, Input.TRANSPORT_ERROR), _absorb(S.COMPLETED)),
        (S.COMPLETED, Timer.K): _END,
    },
    Machine.INVITE_SERVER: {
        (S.PROCEEDING, Input.START): ((Do.SEND_TRYING, Do.NEW_REQUEST), S.PROCEEDING),
        (S.PROCEEDING, Input.SEND_1XX): ((Do.RESPOND,), S.PROCEEDING),
        (S.PROCEEDING, Input.SEND_2XX): ((
            Do.RESPOND, Start(Timer.L), Do.AWAIT_ACK, Do.RESET_INTERVAL,
            Start(Timer.RETRANSMIT_2XX)), S.ACCEPTED),
        (S.PROCEEDING, Input.SEND_FINAL): ((
            Do.RESPOND, Do.RESET_INTERVAL, Start(Timer.G), Start(Timer.H)), S.COMPLETED),
        # A retransmitted INVITE gets the last response again and never bothers the TU
        **_rows((Input.RECV_REQUEST,), {s: ((Do.TRANSMIT,), s)
                                        for s in (S.PROCEEDING, S.COMPLETED, S.CONFIRMED)}),
        # An ACK with the INVITE's own branch outside Completed acknowledges a 2xx (RFC 2543
        # peers reuse the branch): it is the TU's, as is every other ACK of a 2xx (§17.2.3)
        **_rows((Input.RECV_ACK,), {s: ((Do.ACK_TO_TU,), s)
                                    for s in (S.PROCEEDING, S.ACCEPTED)}),
        (S.COMPLETED, Input.RECV_ACK): (
            (Stop(Timer.G), Stop(Timer.H), Start(Timer.I)), S.CONFIRMED),
        (S.COMPLETED, Timer.G): ((Do.TRANSMIT, Do.DOUBLE_CAPPED, Start(Timer.G)), S.COMPLETED),
        (S.COMPLETED, Timer.H): _TIMEOUT,
        # A final response after the final one (a TU's answer racing the 487 of a CANCEL)
        **_rows(_SEND_ANY, _absorb(S.COMPLETED, S.CONFIRMED)),
        (S.CONFIRMED, Input.RECV_ACK): ((), S.CONFIRMED),  # retransmitted ACKs (§17.2.1)
        (S.CONFIRMED, Timer.I): _END,
        # Accepted (RFC 6026 §7.1): the TU's 2xx retransmissions go out, its other responses
        # and INVITE retransmissions are absorbed
        (S.ACCEPTED, Input.SEND_2XX): ((Do.RESPOND,), S.ACCEPTED),
        **_rows((Input.SEND_1XX, Input.SEND_FINAL, Input.RECV_REQUEST), _absorb(S.ACCEPTED)),
        (S.ACCEPTED, Timer.RETRANSMIT_2XX): (
            (Do.TRANSMIT, Do.DOUBLE_CAPPED, Start(Timer.RETRANSMIT_2XX)), S.ACCEPTED),
        (S.ACCEPTED, Timer.L): ((Do.ACK_TIMEOUT, Do.TERMINATE), S.TERMINATED),
    },
    Machine.NON_INVITE_SERVER: {
        (S.TRYING, Input.START): ((Do.NEW_REQUEST,), S.TRYING),
        (S.TRYING, Input.RECV_REQUEST): ((), S.TRYING),  # nothing sent yet to repeat
        **_rows((Input.RECV_REQUEST,), {s: ((Do.TRANSMIT,), s)
                                        for s in (S.PROCEEDING, S.COMPLETED)}),
        **_rows((Input.SEND_1XX,), {s: ((Do.RESPOND,), S.PROCEEDING)
                                    for s in (S.TRYING, S.PROCEEDING)}),
        **_rows((Input.SEND_2XX, Input.SEND_FINAL), {s: (
            (Do.RESPOND, Start(Timer.J)), S.COMPLETED) for s in (S.TRYING, S.PROCEEDING)}),
        **_rows(_SEND_ANY, _absorb(S.COMPLETED)),  # a final response after the final one
        (S.COMPLETED, Timer.J): _END,
    },
}
del S


#: states in which a transaction needs no more than the bytes it sent: a client's final
#: response came (an INVITE's non-2xx is ACKed again from ``ack_wire``), a server's non-INVITE
#: final response or an INVITE's non-2xx went out and was ACKed (an INVITE's 2xx: once its ACK
#: came, ``_ack_received``)
SETTLED: dict[Machine, frozenset[TxState]] = {
    Machine.INVITE_CLIENT: frozenset({TxState.COMPLETED, TxState.ACCEPTED}),
    Machine.NON_INVITE_CLIENT: frozenset({TxState.COMPLETED}),
    Machine.INVITE_SERVER: frozenset({TxState.CONFIRMED}),
    Machine.NON_INVITE_SERVER: frozenset({TxState.COMPLETED}),
}


def step(machine: Machine, state: TxState, event: Input | Timer) -> Step:
    """The table's entry for ``event`` in ``state``; TransactionError if there is none."""
    try:
        return TABLE[machine][(state, event)]
    except KeyError:
        raise TransactionError(f"{machine.value} in {state.value}: no {event!r}") from None


def _response_input(status: int, *, sent: bool) -> Input:
    if status < 200:
        return Input.SEND_1XX if sent else Input.RECV_1XX
    if status < 300:
        return Input.SEND_2XX if sent else Input.RECV_2XX
    return Input.SEND_FINAL if sent else Input.RECV_FINAL


@dataclass(eq=False)
class Transaction:
    key: TxKey
    #: None once settled (``SETTLED``): then it only answers retransmissions from ``wire`` and
    #: ``ack_wire``, and what the parsed messages held (about 30 objects) is freed at once
    #: instead of after Timer J, L or M (32 s over UDP: 3 transactions of every call)
    request: Request | None
    peer: Address
    transport: str
    server: bool
    state: TxState
    wire: bytes = b""  # last message we sent (request for clients, response for servers)
    last_response: Response | None = None
    interval: float = 0.0  # current retransmission interval
    timers: dict[Timer, float] = field(default_factory=dict)
    ack_wire: bytes = b""  # client INVITE: the ACK for a non-2xx final response
    ack_key: tuple[str, str, int] | None = None  # server INVITE: the ACK its 2xx awaits
    merge_key: tuple[str, str, int, str] | None = None  # server: §8.2.2.2 merged requests

    def settle(self) -> None:
        """Only retransmissions are left to answer (``SETTLED``): free the parsed messages."""
        self.request = self.last_response = None

    @property
    def live_request(self) -> Request:
        assert self.request is not None, "a settled transaction has no request"
        return self.request

    @property
    def invite(self) -> bool:
        return self.key.method == "INVITE"

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    @property
    def machine(self) -> Machine:
        if self.server:
            return Machine.INVITE_SERVER if self.invite else Machine.NON_INVITE_SERVER
        return Machine.INVITE_CLIENT if self.invite else Machine.NON_INVITE_CLIENT


def server_key(req: Request) -> TxKey:
    """Match a request to its server transaction (RFC 3261 §17.2.3).

    An ACK matches the INVITE it acknowledges; CANCEL gets a transaction of its own.
    Requests without the RFC 3261 magic cookie fall back to the RFC 2543 rules.
    """
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    branch = via.branch or ""
    sent_by = f"{via.host.lower()}:{via.port or 5060}"
    if branch.startswith(MAGIC_COOKIE):
        return TxKey(True, branch, method, sent_by)
    return TxKey(
        True, branch, method, sent_by, (req.uri, req.from_tag or "", req.call_id,
                                        req.cseq[0]))


def client_key(branch: str, method: str) -> TxKey:
    """Match a response to its client transaction (RFC 3261 §17.1.3)."""
    return TxKey(False, branch, "INVITE" if method == "ACK" else method)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self._txs: dict[TxKey, Transaction] = {}
        self._out: list[tuple[bytes, Address, str]] = []
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, TxKey, Timer]] = []
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
            at, _, key, timer = heap[0]
            tx = self._txs.get(key)
            if tx is not None and tx.timers.get(timer) == at:
                return at
            heapq.heappop(heap)
        return None

    def __len__(self) -> int:
        return len(self._txs)

    def get(self, key: TxKey) -> Transaction | None:
        return self._txs.get(key)

    def duration(self, timer: Timer, tx: Transaction) -> float | None:
        """How long ``timer`` runs for ``tx`` (table above); None: not on its transport."""
        reliable = tx.reliable
        if timer in (Timer.A, Timer.E, Timer.G, Timer.RETRANSMIT_2XX):
            return None if reliable else tx.interval
        if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
            return 64 * self.t1
        if timer is Timer.C:
            return TIMER_C
        if timer is Timer.D:
            return 0.0 if reliable else TIMER_D
        if timer is Timer.J:
            return 0.0 if reliable else 64 * self.t1
        return 0.0 if reliable else self.t4  # I, K

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
        tx = Transaction(
            key, req, dest, transport, server=False,
            state=TxState.CALLING if req.method == "INVITE" else TxState.TRYING,
        )
        tx.wire = serialize(req)
        self._txs[key] = tx
        self._input(tx, Input.START, now)
        return key

    def send_response(self, key: TxKey, resp: Response, now: float) -> None:
        """Send a response within server transaction ``key`` (gone: nothing happens)."""
        tx = self._txs.get(key)
        if tx is not None:
            self._input(tx, _response_input(resp.status, sent=True), now, response=resp)

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
            if (not tx.server and tx.wire == data and tx.peer == dest
                    and tx.transport == transport):
                self._input(tx, Input.TRANSPORT_ERROR, now=0.0)  # starts no timer

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, key, timer = heapq.heappop(heap)
            tx = self._txs.get(key)
            if tx is None or tx.timers.get(timer) != at:
                continue
            del tx.timers[timer]
            self._input(tx, timer, now)

    # -------------------------------------------------------------- internals
    def _input(
        self, tx: Transaction, event: Input | Timer, now: float, *,
        response: Response | None = None, request: Request | None = None,
        source: Address | None = None, transport: str = "",
    ) -> None:
        """Run the table's transition for ``event``: set the next state, then the actions."""
        machine = tx.machine
        actions, tx.state = step(machine, tx.state, event)
        out = self._out
        for action in actions:
            if isinstance(action, Start):
                duration = self.duration(action.timer, tx)
                if duration is not None:
                    self._arm(tx, action.timer, now + duration)
            elif isinstance(action, Stop):
                tx.timers.pop(action.timer, None)
            elif action is Do.TRANSMIT:
                out.append((tx.wire, tx.peer, tx.transport))
            elif action is Do.RESPOND:
                assert response is not None
                tx.last_response, tx.wire = response, serialize(response)
                out.append((tx.wire, tx.peer, tx.transport))
            elif action is Do.SEND_TRYING:
                self.send_response(tx.key, make_response(tx.live_request, 100), now)
            elif action is Do.REPORT:
                assert response is not None
                self._events.append(ResponseReceived(response, tx.key))
            elif action is Do.NEW_REQUEST:
                assert source is not None
                self._events.append(RequestReceived(tx.live_request, source, transport, tx.key))
            elif action is Do.ACK_TO_TU:
                assert request is not None and source is not None
                self._ack_received(request, source, transport)
            elif action is Do.SEND_ACK:
                assert response is not None
                tx.ack_wire = serialize(ack_for(tx.live_request, response))
                out.append((tx.ack_wire, tx.peer, tx.transport))
            elif action is Do.RESEND_ACK:
                out.append((tx.ack_wire, tx.peer, tx.transport))
            elif action is Do.AWAIT_ACK:
                tx.ack_key = _ack_key(tx.live_request)
                self._await_ack[tx.ack_key] = tx.key
            elif action is Do.TIMEOUT:
                self._events.append(TransactionTimeout(tx.key, tx.live_request, server=tx.server))
            elif action is Do.ACK_TIMEOUT:
                akey = tx.ack_key
                if akey is not None and self._await_ack.get(akey) == tx.key:
                    del self._await_ack[akey]
                    assert tx.last_response is not None
                    self._events.append(AckTimeout(tx.key, tx.live_request, tx.last_response))
            elif action is Do.FAIL_503:
                resp = make_response(tx.live_request, 503, "Service Unavailable")
                self._events.append(ResponseReceived(resp, tx.key))
            elif action is Do.RESET_INTERVAL:
                tx.interval = self.t1
            elif action is Do.DOUBLE:
                tx.interval *= 2
            elif action is Do.DOUBLE_CAPPED:
                tx.interval = min(tx.interval * 2, self.t2)
            elif action is Do.INTERVAL_T2:
                tx.interval = self.t2
            elif action is Do.STOP_TIMERS:
                tx.timers.clear()
            elif action is Do.TERMINATE:
                self._terminate(tx.key)
        if tx.state in SETTLED[machine]:
            tx.settle()

    def _arm(self, tx: Transaction, timer: Timer, at: float) -> None:
        tx.timers[timer] = at
        heapq.heappush(self._heap, (at, next(self._seq), tx.key, timer))

    def _terminate(self, key: TxKey) -> None:
        tx = self._txs.pop(key, None)
        if tx is None:
            return
        tx.state = TxState.TERMINATED
        tx.timers.clear()
        if tx.merge_key is not None and self._merge.get(tx.merge_key) == key:
            del self._merge[tx.merge_key]
        if tx.ack_key is not None and self._await_ack.get(tx.ack_key) == key:
            del self._await_ack[tx.ack_key]

    def _ack_received(self, ack: Request, source: Address, transport: str) -> None:
        """An ACK of a 2xx: that 2xx stops being retransmitted; the ACK is the TU's."""
        inv_key = self._await_ack.pop(_ack_key(ack), None)
        inv = self._txs.get(inv_key) if inv_key is not None else None
        if inv is not None:
            inv.timers.pop(Timer.RETRANSMIT_2XX, None)
            inv.settle()  # its 2xx was ACKed
        self._events.append(RequestReceived(ack, source, transport, None))

    def _receive_request(self, req: Request, source: Address, transport: str, now: float) -> None:
        stamp_via(req, source)
        key = server_key(req)
        tx = self._txs.get(key)
        ack = req.method == "ACK"
        if tx is not None:
            event = Input.RECV_ACK if ack else Input.RECV_REQUEST
            self._input(tx, event, now, request=req, source=source, transport=transport)
            return
        if ack:
            self._ack_received(req, source, transport)
            return
        mkey = (req.call_id, req.from_tag or "", req.cseq[0], req.method)
        if req.to_tag is None:
            other = self._merge.get(mkey)
            if other is not None and other in self._txs and other != key:
                # A merged request (§8.2.2.2): same request forked back to us another way.
                self.respond_stateless(req, 482, source, transport, "Loop Detected")
                return
            self._merge[mkey] = key
        tx = Transaction(
            key, req, response_destination(req.top_via, source, transport), transport, server=True,
            state=TxState.PROCEEDING if req.method == "INVITE" else TxState.TRYING,
            merge_key=mkey,
        )
        self._txs[key] = tx
        self._input(tx, Input.START, now, source=source, transport=transport)

    def _receive_response(self, resp: Response, now: float) -> None:
        vias = resp.vias
        if not vias:
            return
        tx = self._txs.get(client_key(vias[0].branch or "", resp.cseq[1]))
        if tx is not None:  # else a stray response: dropped (RFC 3261 §18.1.2)
            self._input(tx, _response_input(resp.status, sent=False), now, response=resp)


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
