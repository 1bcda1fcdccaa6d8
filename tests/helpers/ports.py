"""Free loopback ports for tests: each allocation is a block of consecutive ports that were free
on UDP and TCP when checked. Ports come from 20000-32767 (below Linux's ephemeral range, so the
kernel does not hand them to other sockets) and never include 5060. Under pytest-xdist each
worker takes its own slice of that range, so two workers never race for one port."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass


def _slice(low: int, high: int) -> tuple[int, int]:
    """This process's part of low..high: all of it, or one xdist worker's share."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return low, high
    share = (high - low) // count
    start = low + int(worker[2:]) % count * share
    return start, start + share


LOW, HIGH = _slice(20000, 32700)
_lock = threading.Lock()
_cursor = LOW + (os.getpid() * 97) % (HIGH - LOW)  # spread concurrent test runs apart


@dataclass(frozen=True)
class PortBlock:
    """`size` consecutive ports starting at `base`."""

    base: int
    size: int

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.base + index

    @property
    def last(self) -> int:
        return self.base + self.size - 1


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when both a UDP and a TCP socket can bind host:port right now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def allocate(size: int = 10) -> PortBlock:
    """Reserve a block of `size` free consecutive ports (distinct from earlier blocks)."""
    global _cursor
    with _lock:
        for _ in range((HIGH - LOW) // size):
            base = _cursor
            if base + size > HIGH:
                base = LOW
            _cursor = base + size
            ports = range(base, base + size)
            if 5060 in ports:
                continue
            if all(port_is_free(p) for p in ports):
                return PortBlock(base, size)
    raise RuntimeError(f"no block of {size} free ports in {LOW}-{HIGH}")


def free_port() -> int:
    """One free port."""
    return allocate(1).base
