"""asyncio UDP and TCP transports: the only sockets on the SIP side.

They move bytes and nothing else: each datagram or framed TCP message is handed to
``on_message(data, source, transport)``; ``send(data, dest, transport)`` writes. TCP
connections are kept per peer address and reused in both directions (RFC 3261 §18), and
closed after ``idle_timeout`` seconds without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any, cast

import structlog

from callcenter.sip.framing import FramingError, StreamFramer
from callcenter.sip.message import MAX_MESSAGE_SIZE

log = structlog.get_logger("sip.transport")

Address = tuple[str, int]
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
    def __init__(self, owner: Transports) -> None:
        self.owner = owner
        self.framer = StreamFramer(max_size=MAX_MESSAGE_SIZE)
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)
        self.last_activity = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.last_activity = self.owner.loop.time()
        self.owner._tcp[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.owner.loop.time()
        try:
            messages = self.framer.feed(data)
        except FramingError as exc:
            for msg in exc.messages:
                self.owner._deliver(msg, self.peer, "tcp")
            log.warning("tcp_framing_error", peer=f"{self.peer[0]}:{self.peer[1]}",
                        reason=exc.reason)
            self.owner.on_framing_error(exc, self.peer, "tcp")
            if self.transport is not None:
                self.transport.close()
            return
        for msg in messages:
            self.owner._deliver(msg, self.peer, "tcp")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._tcp.get(self.peer) is self:
            del self.owner._tcp[self.peer]


class Transports:
    def __init__(
        self, *, host: str, port: int, on_message: OnMessage,
        on_framing_error: OnFramingError | None = None,
        idle_timeout: float = 300.0, udp_receive_buffer: int = 0,
        on_send_failed: OnSendFailed | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.on_message = on_message
        self.on_framing_error = on_framing_error or (lambda err, src, tr: None)
        self.on_send_failed = on_send_failed or (lambda dest, tr, msgs: None)
        self.idle_timeout = idle_timeout
        self.udp_receive_buffer = udp_receive_buffer
        self.loop = asyncio.get_event_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tcp: dict[Address, _TcpConn] = {}
        self._connecting: dict[Address, asyncio.Task[_TcpConn | None]] = {}
        self._pending: dict[Address, list[bytes]] = {}
        self._idle_task: asyncio.Task[None] | None = None

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
            self._tcp_server = await self.loop.create_server(
                lambda: _TcpConn(self), self.host, self.port, reuse_address=True
            )
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
        for conn in list(self._tcp.values()):
            if conn.transport:
                conn.transport.close()
        if self._tcp_server:
            self._tcp_server.close()

    def _deliver(self, data: bytes, source: Address, transport: str) -> None:
        try:
            self.on_message(data, source, transport)
        except Exception:
            log.exception("sip_receive_failed", source=f"{source[0]}:{source[1]}")

    def send(self, data: bytes, dest: Address, transport: str) -> None:
        if transport == "tcp":
            conn = self._tcp.get(dest)
            if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                conn.last_activity = self.loop.time()
                conn.transport.write(data)
                return
            self._pending.setdefault(dest, []).append(data)
            if dest not in self._connecting:
                self._connecting[dest] = self.loop.create_task(self._connect(dest))
            return
        if self._udp is not None:
            try:
                self._udp.sendto(data, dest)
            except (OSError, ValueError) as exc:
                log.warning("udp_send_failed", dest=f"{dest[0]}:{dest[1]}", error=str(exc))

    async def _connect(self, dest: Address) -> _TcpConn | None:
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(lambda: _TcpConn(self), dest[0], dest[1]), 5.0
            )
        except (TimeoutError, OSError) as exc:
            log.warning("tcp_connect_failed", dest=f"{dest[0]}:{dest[1]}", error=str(exc))
            self._connecting.pop(dest, None)
            # Told after the bookkeeping: the callback may send to dest again (a new connect).
            self.on_send_failed(dest, "tcp", self._pending.pop(dest, []))
            return None
        except BaseException:
            self._connecting.pop(dest, None)
            raise
        self._connecting.pop(dest, None)
        self._tcp[dest] = proto
        for data in self._pending.pop(dest, []):
            if proto.transport is not None:
                proto.transport.write(data)
        return proto

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_timeout / 2))
            now = self.loop.time()
            for conn in list(self._tcp.values()):
                if now - conn.last_activity > self.idle_timeout and conn.transport is not None:
                    log.info("tcp_idle_close", peer=f"{conn.peer[0]}:{conn.peer[1]}")
                    conn.transport.close()
