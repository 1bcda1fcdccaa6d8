"""What the event loop's thread runs while the loop is late: a stall sampler.

The loop stamps a heartbeat every ``every`` seconds; a daemon thread looks as often and,
once the last stamp is older than ``after``, samples the loop thread's stack
(``sys._current_frames``). The loop-lag watcher logs the most frequent stack of a stall.
A garbage collection holds the interpreter lock, so the thread sees none: gcwatch times those.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from types import FrameType


def _stack(frame: FrameType | None, depth: int) -> str:
    """The innermost ``depth`` frames, innermost first: ``file.py:function:line < ...``."""
    out: list[str] = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        out.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(out)


class StallSampler:
    def __init__(self, *, after: float = 0.25, every: float = 0.05, depth: int = 8) -> None:
        self.after, self.every, self.depth = after, every, depth
        self.beat = time.monotonic()
        self._samples: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._ident = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start sampling ``loop``; call from the loop's thread."""
        self._loop, self._ident = loop, threading.get_ident()
        self._beat()
        threading.Thread(target=self._run, name="stall-sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()

    def take(self) -> tuple[str, int, int] | None:
        """(most frequent stack, its samples, all samples) since the last call, or None."""
        with self._lock:
            samples, self._samples = self._samples, Counter()
        if not samples:
            return None
        stack, count = samples.most_common(1)[0]
        return stack, count, samples.total()

    def _beat(self) -> None:
        self.beat = time.monotonic()
        assert self._loop is not None
        self._handle = self._loop.call_later(self.every, self._beat)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if time.monotonic() - self.beat > self.after:
                stack = _stack(sys._current_frames().get(self._ident), self.depth)
                with self._lock:
                    self._samples[stack] += 1
