"""One end of the control pipe between the signalling process and a media worker.

Messages (`protocol`) go over a Unix stream socketpair; socket file descriptors ride along as
SCM_RIGHTS and are queued in arrival order (the kernel delivers them with the first byte of the
write that carried them, so a message's descriptors are always queued before it decodes).
Writes are batched: everything sent in one loop turn leaves in one ``sendmsg``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from .protocol import Decoder, ProtocolError, encode

log = logging.getLogger(__name__)
_RECV = 1 << 18
_MAX_FDS = 250  # SCM_MAX_FD is 253 per sendmsg
_FLUSH_AT = 1 << 18


class Link:
    def __init__(self, sock: socket.socket, on_message: Callable[[Any], None],
                 on_closed: Callable[[], None]) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fds: deque[int] = deque()
        """Descriptors received and not yet taken by a message."""
        self.closed = False
        self._on_message = on_message
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self._dec = Decoder()
        self._buf = bytearray()
        self._buf_fds: list[int] = []
        self._out: deque[tuple[memoryview, list[int]]] = deque()
        self._scheduled = False
        self._writing = False
        self._loop.add_reader(sock.fileno(), self.receive)

    def send(self, msg: object, fds: tuple[int, ...] = ()) -> None:
        if self.closed:
            return
        self._buf += encode(msg)
        self._buf_fds.extend(os.dup(f) for f in fds)  # ours until sent: the caller may close
        if len(self._buf) >= _FLUSH_AT or len(self._buf_fds) >= _MAX_FDS:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._buf:
            self._out.append((memoryview(bytes(self._buf)), self._buf_fds))
            self._buf.clear()
            self._buf_fds = []
        while self._out and not self.closed:
            data, fds = self._out[0]
            try:
                n = socket.send_fds(self.sock, [data], fds) if fds else self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                if not self._writing:
                    self._writing = True
                    self._loop.add_writer(self.sock.fileno(), self.flush)
                return
            except OSError:
                self.close()
                return
            for f in fds:
                os.close(f)
            if n < len(data):
                self._out[0] = (data[n:], [])
            else:
                self._out.popleft()
        if self._writing and not self.closed:
            self._writing = False
            self._loop.remove_writer(self.sock.fileno())

    def receive(self) -> None:
        """Handle what has arrived (the loop calls this when the socket is readable)."""
        for _ in range(16):
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, _RECV, _MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            self.fds.extend(fds)
            if not data:
                self.close()
                return
            try:
                messages = self._dec.feed(data)
            except ProtocolError:
                log.exception("media control pipe: bad frame")
                self.close()
                return
            for msg in messages:
                try:
                    self._on_message(msg)
                except Exception:
                    log.exception("media control message %r failed", msg)
                if self.closed:
                    return

    def close(self, *, notify: bool = True) -> None:
        """Close the pipe; ``on_closed`` runs unless this end chose to (``notify=False``)."""
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self.sock.fileno())
        if self._writing:
            self._loop.remove_writer(self.sock.fileno())
        self.sock.close()
        for f in [*self._buf_fds, *(f for _, fds in self._out for f in fds)]:
            os.close(f)
        self._buf_fds, self._out = [], deque()
        if notify:
            self._on_closed()
