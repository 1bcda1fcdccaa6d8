"""The thin asyncio layer over the pure transaction layer (the shape of aioquic's protocol.py).

On every input it feeds the core, transmits what the core wants sent, hands events to the
application and re-arms one timer from ``get_timer()``. Client transactions surface to the
application as awaitables: ``await stack.request(...)`` returns the final response.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog

from callcenter.sip.dialog import new_branch
from callcenter.sip.errors import SipError
from callcenter.sip.events import (
    AckTimeout,
    Address,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTimeout,
    TxKey,
)
from callcenter.sip.message import (
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
    validate_request,
)
from callcenter.sip.received import stamp_via
from callcenter.sip.transaction import TransactionLayer, TxState, server_key
from callcenter.sip.transport import Transports

log = structlog.get_logger("sip")


class RequestTimeout(Exception):
    """No final response before Timer B/F (the caller treats it as 408)."""


@dataclass
class ServerRequest:
    """A request the application must answer through ``respond()``, or by raising a SipError
    from its handler (answered by ``answer_failure``)."""

    stack: SipStack
    request: Request
    source: Address
    transport: str
    key: TxKey | None
    answered: bool = False

    def respond(
        self, status: int, reason: str | None = None, *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), body: bytes = b"",
        content_type: str | None = None, to_tag: str | None = None,
    ) -> Response:
        resp = make_response(self.request, status, reason, to_tag=to_tag)
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            resp.headers.add(name, value)
        if self.stack.user_agent:
            resp.headers.add("Server", self.stack.user_agent)
        if body:
            resp.headers.add("Content-Type", content_type or "application/sdp")
            resp.body = body
        self.send(resp)
        return resp

    def refuse(self, error: SipError, *, to_tag: str | None = None) -> Response:
        """Answer with ``error``'s status, reason and headers."""
        return self.respond(error.status, error.reason, headers=error.headers, to_tag=to_tag)

    def send(self, resp: Response) -> None:
        if resp.status >= 200:
            self.answered = True
        if self.key is not None:
            self.stack.answering(self.key, resp.status)
            self.stack.layer.send_response(self.key, resp, self.stack.now())
        self.stack.flush()


def answer_failure(sreq: ServerRequest, exc: BaseException) -> None:
    """The one place where a request handler's error becomes the answer to its request: a
    SipError's status, reason and headers, or a 500 (logged) for anything else."""
    method = sreq.request.method
    if isinstance(exc, SipError):
        log.debug("sip_request_refused", method=method, status=exc.status, detail=exc.detail)
    else:
        log.error("sip_handler_failed", method=method, error=repr(exc), exc_info=exc)
        exc = SipError()
    if not sreq.answered and method != "ACK":
        sreq.refuse(exc)


@dataclass
class _Pending:
    future: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None
    on_retransmitted_2xx: Callable[[Response], None] | None = None
    on_final: Callable[[Response], None] | None = None
    responses: list[Response] = field(default_factory=list)
    started: float = 0.0  #: loop time the request went out


Handler = Callable[[ServerRequest], Awaitable[None] | None]


class SipStack:
    def __init__(
        self, *, host: str, port: int, advertised: str, transports: list[str],
        handler: Handler, on_ack_timeout: Callable[[AckTimeout], None],
        on_server_timeout: Callable[[TransactionTimeout], None] | None = None,
        user_agent: str = "callcenter", t1: float = 0.5, tcp_idle_timeout: float = 300.0,
        udp_receive_buffer: int = 0, tls_port: int = 5061,
        tls_server: ssl.SSLContext | None = None, tls_client: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.advertised = host, port, advertised
        self.tls_port = tls_port
        self.transport_names = transports
        self.handler = handler
        self.on_ack_timeout = on_ack_timeout
        self.on_server_timeout = on_server_timeout
        self.user_agent = user_agent
        self.layer = TransactionLayer(t1=t1)
        self.transports = Transports(
            host=host, port=port, on_message=self._on_message,
            on_framing_error=self._on_framing_error, idle_timeout=tcp_idle_timeout,
            udp_receive_buffer=udp_receive_buffer, on_send_failed=self._on_send_failed,
            tls_port=tls_port, tls_server=tls_server, tls_client=tls_client,
        )
        self._pending: dict[TxKey, _Pending] = {}
        self._acking: dict[TxKey, Callable[[Response], None]] = {}  # see _on_response
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"received": 0, "parse_errors": 0, "sent": 0}
        #: (method, "2xx".."6xx" or "timeout", seconds) of each request we sent, once answered
        self.on_transaction: Callable[[str, str, float], None] | None = None
        #: (method, "1xx".."6xx", seconds) of each request we answered: the time our handlers
        #: took to an INVITE's first response (after the layer's own 100 Trying), to another
        #: request's final one
        self.on_server_transaction: Callable[[str, str, float], None] | None = None
        self._serving: dict[TxKey, float] = {}  #: requests not answered yet: when they came
        # Every message at debug; structlog's own loggers (logging not configured yet, as in
        # tests) have no isEnabledFor: no trace then.
        enabled_for = getattr(structlog.get_logger("sip"), "isEnabledFor", None)
        self.trace = bool(enabled_for is not None and enabled_for(10))

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.transports.start(self.transport_names)

    async def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        # Whoever still awaits a final response (a BYE, a CANCEL) gets it as a timeout now
        # instead of hanging on a future nothing will ever resolve.
        pending, self._pending = self._pending, {}
        for key, entry in pending.items():
            if not entry.future.done():
                entry.future.set_exception(RequestTimeout(key.method))
        await self.transports.close()

    def now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def port_of(self, transport: str) -> int:
        """Our listening port for ``transport`` (TLS has its own, 5061 by default)."""
        return self.tls_port if transport == "tls" else self.port

    def via(self, transport: str, branch: str | None = None) -> str:
        return (
            f"SIP/2.0/{transport.upper()} {self.advertised}:{self.port_of(transport)}"
            f";branch={branch or new_branch()};rport"
        )

    def contact(self, user: str = "callcenter", transport: str = "udp") -> str:
        suffix = f";transport={transport}" if transport in ("tcp", "tls") else ""
        return f"<sip:{user}@{self.advertised}:{self.port_of(transport)}{suffix}>"

    # ------------------------------------------------------------------ input
    def _on_message(self, data: bytes, source: Address, transport: str) -> None:
        self.stats["received"] += 1
        if self.trace:
            log.debug("sip_in", source=f"{transport}:{source[0]}:{source[1]}",
                      message=data[:2000].decode("utf-8", "replace"))
        if not data.strip():
            return  # keep-alive (RFC 5626 CRLF)
        try:
            msg = parse_message(data)
            if isinstance(msg, Request):
                validate_request(msg)
        except SipParseError as exc:
            self.stats["parse_errors"] += 1
            self._answer_parse_error(exc, source, transport)
            return
        self.layer.receive(msg, source, transport, self.now())
        self._process()

    def _on_framing_error(self, exc: SipParseError, source: Address, transport: str) -> None:
        self.stats["parse_errors"] += 1
        self._answer_parse_error(exc, source, transport)
        self.flush()  # before the transport closes the connection

    def _on_send_failed(self, dest: Address, transport: str, messages: list[bytes]) -> None:
        """The transport could not send ``messages``: their client transactions end as 503."""
        for data in messages:
            self.layer.transport_error(dest, transport, data)
        self._process()

    def _answer_parse_error(self, exc: SipParseError, source: Address, transport: str) -> None:
        req = exc.request
        log.info(
            "sip_bad_message", source=f"{source[0]}:{source[1]}", status=exc.status,
            reason=exc.reason, answered=req is not None and req.method != "ACK",
        )
        if req is None or req.method == "ACK":
            return
        try:
            stamp_via(req, source)  # §18.2.1 holds for requests we reject too
            self.layer.respond_stateless(req, exc.status, source, transport, exc.reason)
        except Exception:  # noqa: BLE001 - the request was too broken to answer
            log.info("sip_unanswerable", source=f"{source[0]}:{source[1]}")
            return
        self.flush()

    def _process(self) -> None:
        """Hand every pending event up, then transmit and re-arm the timer.

        A callback that raises is logged and costs only its own event: the events after it
        are still delivered and the timer is still re-armed (otherwise every retransmission
        and timeout of the endpoint would stop until the next message arrives).
        """
        layer = self.layer
        while (event := layer.next_event()) is not None:
            try:
                self._dispatch(event)
            except Exception:
                log.exception("sip_event_failed", kind=type(event).__name__)
        self.flush()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            sreq = ServerRequest(self, event.request, event.source, event.transport, event.key)
            if event.key is not None:
                self._serving[event.key] = self.now()
            try:
                result = self.handler(sreq)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(functools.partial(self._handler_done, sreq=sreq))
            except Exception as exc:  # noqa: BLE001 - one request's bug must not stop the stack
                answer_failure(sreq, exc)
        elif isinstance(event, ResponseReceived):
            self._on_response(event.key, event.response)
        elif isinstance(event, TransactionTimeout):
            if event.server:
                self._serving.pop(event.key, None)
                if self.on_server_timeout:
                    self.on_server_timeout(event)
            else:
                pending = self._pending.pop(event.key, None)
                if pending and not pending.future.done():
                    self._transaction_done(event.key, pending, "timeout")
                    pending.future.set_exception(RequestTimeout(event.request.method))
        elif isinstance(event, AckTimeout):
            self.on_ack_timeout(event)

    def _handler_done(self, task: asyncio.Task[None], sreq: ServerRequest) -> None:
        if task.cancelled():
            if sreq.key is not None and not sreq.answered:
                self._serving.pop(sreq.key, None)
            return
        exc = task.exception()
        if exc is not None:
            answer_failure(sreq, exc)

    def _on_response(self, key: TxKey, resp: Response) -> None:
        pending = self._pending.get(key)
        if pending is None:
            again = self._acking.get(key)
            if again is not None and 200 <= resp.status < 300:
                again(resp)
            return
        if resp.status < 200:
            if pending.on_provisional:
                pending.on_provisional(resp)
            return
        self._transaction_done(key, pending, f"{resp.status // 100}xx")
        pending.future.set_result(resp)
        del self._pending[key]
        if (200 <= resp.status < 300 and key.method == "INVITE" and self.loop is not None
                and pending.on_retransmitted_2xx is not None):
            # Kept for the 2xx retransmissions (each needs our ACK again) while the layer keeps
            # the transaction in Accepted, then dropped with it (Timer M, RFC 6026 §8.4): only
            # that callback, so what the others refer to (a call's legs) is not kept for 32 s.
            self._forget_acked()
            self._acking[key] = pending.on_retransmitted_2xx
        if pending.on_final:  # the future's awaiters resume later, from the loop
            pending.on_final(resp)

    def answering(self, key: TxKey, status: int) -> None:
        """Our response to a server transaction goes out: report its first (an INVITE's) or
        final one."""
        if key.method != "INVITE" and status < 200:
            return
        started = self._serving.pop(key, None)
        if started is not None and self.on_server_transaction is not None:
            self.on_server_transaction(key.method, f"{status // 100}xx", self.now() - started)

    def _transaction_done(self, key: TxKey, pending: _Pending, outcome: str) -> None:
        if self.on_transaction is not None:
            self.on_transaction(key.method, outcome, self.now() - pending.started)

    # ----------------------------------------------------------------- output
    def flush(self) -> None:
        for data, dest, transport in self.layer.datagrams_to_send():
            self.stats["sent"] += 1
            if self.trace:
                log.debug("sip_out", dest=f"{transport}:{dest[0]}:{dest[1]}",
                          message=data[:2000].decode("utf-8", "replace"))
            self.transports.send(data, dest, transport)
        self._rearm()

    def _rearm(self) -> None:
        at = self.layer.get_timer()
        if at == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None and self.loop is not None:
            self._timer = self.loop.call_at(at, self._on_timer)

    def _forget_acked(self) -> None:
        """Drop the 2xx handlers whose INVITE transaction the layer has ended. They end in
        the order they were added (Timer M runs 64*T1 from the 2xx on every transport), so
        only the oldest are looked at: no timer of its own per answered INVITE."""
        acking, layer = self._acking, self.layer
        while acking:
            key = next(iter(acking))
            if layer.get(key) is not None:
                return
            del acking[key]

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.handle_timer(self.now())
        self._forget_acked()
        self._process()

    def send_request(
        self, req: Request, dest: Address, transport: str, *,
        on_provisional: Callable[[Response], None] | None = None,
        on_retransmitted_2xx: Callable[[Response], None] | None = None,
        on_final: Callable[[Response], None] | None = None,
    ) -> tuple[TxKey, asyncio.Future[Response]]:
        """Start a client transaction; the future resolves with the final response.
        ``on_final(response)`` runs as that response is processed, before the future's
        awaiters resume (a few loop turns later)."""
        assert self.loop is not None
        if self.user_agent and "User-Agent" not in req.headers:
            req.headers.add("User-Agent", self.user_agent)
        key = self.layer.send_request(req, dest, transport, self.now())
        fut: asyncio.Future[Response] = self.loop.create_future()
        self._pending[key] = _Pending(fut, on_provisional, on_retransmitted_2xx, on_final,
                                      started=self.now())
        self.flush()
        return key, fut

    async def request(
        self, req: Request, dest: Address, transport: str, *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> Response:
        _, fut = self.send_request(req, dest, transport, on_provisional=on_provisional)
        return await fut

    @staticmethod
    def invite_key(cancel: Request) -> TxKey:
        """The key of the server INVITE transaction a CANCEL matches (§9.2)."""
        return server_key(cancel).cancelled_invite()

    def server_request(self, key: TxKey) -> ServerRequest | None:
        """The live server transaction ``key`` as a request to answer (``answered`` once a
        final response went out); None when there is no such transaction or it is settled
        (it only absorbs retransmissions: ``has_transaction``)."""
        tx = self.layer.get(key)
        if tx is None or tx.request is None:
            return None
        answered = tx.state is not TxState.PROCEEDING
        return ServerRequest(self, tx.request, tx.peer, tx.transport, tx.key, answered)

    def has_transaction(self, key: TxKey) -> bool:
        return self.layer.get(key) is not None

    def send_ack(self, ack: Request, dest: Address, transport: str) -> None:
        self.layer.send_stateless(ack, dest, transport)
        self.flush()
