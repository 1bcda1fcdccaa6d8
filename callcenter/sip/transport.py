"""asyncio UDP, TCP and TLS transports: the only sockets on the SIP side.

They move bytes and nothing else: each datagram or framed stream message is handed to
``on_message(data, source, transport)``; ``send(data, dest, transport)`` writes. TCP and TLS
connections are kept per (transport, peer address) and reused in both directions (RFC 3261
§18; for a phone registered over TLS that is the RFC 5626 flow: requests to it go back on the
connection it opened), opened when none is up, and closed after ``idle_timeout`` seconds
without traffic. TLS (RFC 3261 §26) listens on its own port with the stdlib ``ssl`` contexts
given to ``start``; a failed handshake is logged and the connection dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

import structlog

from callcenter.sip.framing import FramingError, StreamFramer
from callcenter.sip.message import MAX_MESSAGE_SIZE

log = structlog.get_logger("sip.transport")

Address = tuple[str, int]
ConnKey = tuple[str, Address]  #: ("tcp" or "tls", peer)
OnMessage = Callable[[bytes, Address, str], None]
OnFramingError = Callable[[FramingError, Address, str], None]
#: (dest, transport, messages) that could not be sent (a failed TCP connect)
OnSendFailed = Callable[[Address, str, list[bytes]], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: Transports) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner._deliver(data, (addr[0], addr[1]), "udp")

    def error_received(self, exc: Exception) -> None:
        log.debug("udp_error", error=str(exc))


class _TcpConn(asyncio.Protocol):
    """One TCP or TLS connection (``name``), framed into SIP messages."""

    def __init__(self, owner: Transports, name: str = "tcp") -> None:
        self.owner, self.name = owner, name
        self.framer = StreamFramer(max_size=MAX_MESSAGE_SIZE)
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)
        self.last_activity = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.last_activity = self.owner.loop.time()
        self.owner._conns[(self.name, self.peer)] = self

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.owner.loop.time()
        try:
            messages = self.framer.feed(data)
        except FramingError as exc:
            for msg in exc.messages:
                self.owner._deliver(msg, self.peer, self.name)
            log.warning("tcp_framing_error", peer=f"{self.peer[0]}:{self.peer[1]}",
                        reason=exc.reason, transport=self.name)
            self.owner.on_framing_error(exc, self.peer, self.name)
            if self.transport is not None:
                self.transport.close()
            return
        for msg in messages:
            self.owner._deliver(msg, self.peer, self.name)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._conns.get((self.name, self.peer)) is self:
            del self.owner._conns[(self.name, self.peer)]


class Transports:
    def __init__(
        self, *, host: str, port: int, on_message: OnMessage,
        on_framing_error: OnFramingError | None = None,
        idle_timeout: float = 300.0, udp_receive_buffer: int = 0,
        on_send_failed: OnSendFailed | None = None, tls_port: int = 5061,
        tls_server: ssl.SSLContext | None = None, tls_client: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.tls_port = host, port, tls_port
        self.tls_server, self.tls_client = tls_server, tls_client
        self.on_message = on_message
        self.on_framing_error = on_framing_error or (lambda err, src, tr: None)
        self.on_send_failed = on_send_failed or (lambda dest, tr, msgs: None)
        self.idle_timeout = idle_timeout
        self.udp_receive_buffer = udp_receive_buffer
        self.loop = asyncio.get_event_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._conns: dict[ConnKey, _TcpConn] = {}
        self._connecting: dict[ConnKey, asyncio.Task[_TcpConn | None]] = {}
        self._pending: dict[ConnKey, list[bytes]] = {}
        self._idle_task: asyncio.Task[None] | None = None
        self._tls_listener: socket.socket | None = None
        self._tls_accept: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        #: (transport, a phone's source) -> its Contact address, kept by the registrar: where
        #: to open a connection once the phone's own one (its flow) is gone
        self.contacts: dict[ConnKey, Address] = {}

    async def start(self, transports: list[str]) -> None:
        self.loop = asyncio.get_running_loop()
        if "udp" in transports:
            udp, _ = await self.loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, self.port)
            )
            self._udp = udp
            if self.udp_receive_buffer:
                self._grow_receive_buffer(udp.get_extra_info("socket"))
        if "tcp" in transports:
            self._servers.append(await self.loop.create_server(
                lambda: _TcpConn(self), self.host, self.port, reuse_address=True
            ))
        if "tls" in transports:
            if self.tls_server is None:
                raise ValueError("the tls transport needs a server certificate")
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self._tls_listener = socket.create_server((self.host, self.tls_port), family=family)
            self._tls_listener.setblocking(False)
            self.tls_port = self._tls_listener.getsockname()[1]
            self._tls_accept = self.loop.create_task(self._accept_tls())
        self._idle_task = self.loop.create_task(self._close_idle())

    def _grow_receive_buffer(self, sock: socket.socket | None) -> None:
        """Ask for ``udp_receive_buffer`` bytes; as root past net.core.rmem_max if needed."""
        if sock is None:
            return
        want = self.udp_receive_buffer
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports 2x
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        if got < want and force is not None:
            with contextlib.suppress(OSError):  # needs CAP_NET_ADMIN
                sock.setsockopt(socket.SOL_SOCKET, force, want)
                got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        log.info("sip_udp_receive_buffer", requested=want, granted=got)

    async def close(self) -> None:
        if self._idle_task:
            self._idle_task.cancel()
        if self._udp:
            self._udp.close()
        for conn in list(self._conns.values()):
            if conn.transport:
                conn.transport.close()
        for server in self._servers:
            server.close()
        for task in [self._tls_accept, *self._handshakes]:
            if task is not None:
                task.cancel()
        if self._tls_listener:
            self._tls_listener.close()

    def _deliver(self, data: bytes, source: Address, transport: str) -> None:
        try:
            self.on_message(data, source, transport)
        except Exception:
            log.exception("sip_receive_failed", source=f"{source[0]}:{source[1]}")

    def send(self, data: bytes, dest: Address, transport: str) -> None:
        if transport in ("tcp", "tls"):
            key = (transport, dest)
            conn = self._conns.get(key)
            if not _is_open(conn) and key in self.contacts:
                key = (transport, self.contacts[key])
                conn = self._conns.get(key)
            if conn is not None and _is_open(conn):
                conn.last_activity = self.loop.time()
                conn.transport.write(data)  # type: ignore[union-attr]
                return
            self._pending.setdefault(key, []).append(data)
            if key not in self._connecting:
                self._connecting[key] = self.loop.create_task(self._connect(key, dest))
            return
        if self._udp is not None:
            try:
                self._udp.sendto(data, dest)
            except (OSError, ValueError) as exc:
                log.warning("udp_send_failed", dest=f"{dest[0]}:{dest[1]}", error=str(exc))

    async def _accept_tls(self) -> None:
        """Accept on the TLS port; each handshake runs in its own task. Done by hand rather
        than by ``create_server(ssl=...)`` so that a failed handshake (an untrusted
        certificate, plain text on the TLS port) reaches us to be logged: asyncio and uvloop
        report it only in debug mode."""
        assert self._tls_listener is not None
        while True:
            try:
                sock, _ = await self.loop.sock_accept(self._tls_listener)
            except OSError as exc:  # EMFILE and the like: keep listening
                log.warning("tls_accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            task = self.loop.create_task(self._handshake(sock))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket) -> None:
        peer = sock.getpeername()
        try:
            await self.loop.connect_accepted_socket(
                lambda: _TcpConn(self, "tls"), sock, ssl=self.tls_server,
                ssl_handshake_timeout=10.0,
            )
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            log.warning("tls_handshake_failed", peer=f"{peer[0]}:{peer[1]}", error=str(exc))
            sock.close()

    async def _connect(self, key: ConnKey, reported: Address) -> _TcpConn | None:
        """Open ``key``'s connection; a failure is reported for ``reported``, the address the
        messages were sent to (a phone's source when ``key`` is its Contact)."""
        name, dest = key
        tls: dict[str, Any] = {}
        if name == "tls":  # the peer's certificate is checked against the host we dial
            self.tls_client = self.tls_client or ssl.create_default_context()
            tls = {"ssl": self.tls_client, "server_hostname": dest[0]}
        try:
            _, proto = await asyncio.wait_for(self.loop.create_connection(
                lambda: _TcpConn(self, name), dest[0], dest[1], **tls), 10.0)
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            log.warning(f"{name}_connect_failed", dest=f"{dest[0]}:{dest[1]}", error=str(exc))
            self._connecting.pop(key, None)
            # Told after the bookkeeping: the callback may send to dest again (a new connect).
            self.on_send_failed(reported, name, self._pending.pop(key, []))
            return None
        except BaseException:
            self._connecting.pop(key, None)
            raise
        self._connecting.pop(key, None)
        self._conns[key] = proto
        for data in self._pending.pop(key, []):
            if proto.transport is not None:
                proto.transport.write(data)
        return proto

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_timeout / 2))
            now = self.loop.time()
            for conn in list(self._conns.values()):
                # a TLS connection stays closing until the peer's close_notify (or a timeout)
                if (now - conn.last_activity > self.idle_timeout and _is_open(conn)
                        and conn.transport is not None):
                    log.info("tcp_idle_close", peer=f"{conn.peer[0]}:{conn.peer[1]}",
                             transport=conn.name)
                    conn.transport.close()


def _is_open(conn: _TcpConn | None) -> bool:
    return conn is not None and conn.transport is not None and not conn.transport.is_closing()
