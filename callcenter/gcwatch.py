"""Python's cyclic garbage collector: tuned for the server, and its pauses measured.

A collection of the oldest generation scans every object the collector tracks, with the
event loop standing still meanwhile (about a microsecond per object here). The server's
tracked objects grow with its live calls and their SIP transactions (several hundred
each; a finished call is freed by reference counting: its ended legs refer to it weakly and
nothing else refers back, tests/unit/test_call_cycles.py), and with CPython's defaults (700, 10, 10) a full collection came every
few seconds under load: 0.3-0.7 s pauses at 130 calls/s, 1-3.4 s once a backlog had
grown the heap to a million objects, each pause growing the backlog further.

`tune()` moves what start-up left (modules, configuration, prompts) out of the collector's
reach (`gc.freeze`) and lets the youngest generation grow to `GEN0` objects, so a call's
objects mostly die young (cheap collections of the young generations) instead of being
promoted and scanned by full collections. `GcWatch` measures every pause.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

#: allocations between collections of the youngest generation (CPython's default: 700).
#: 50,000 rather than 10,000: at 100 B2BUA calls/s the collector's time fell from ~0.38 to
#: ~0.24 s per 2,000 calls (docs/benchmarks.md), more of a call's objects dying unscanned;
#: 200,000 once finished calls no longer lingered (their SIP transactions keep no parsed
#: messages): at 375 calls/s, 25 s, 0.33 s collecting instead of 1.0-2.2 s, worst pause
#: 0.21 s instead of 0.17-0.40 s
GEN0 = 200_000


def tune() -> None:
    """Freeze what exists now (call once start-up is done) and set the thresholds."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0, gen1, gen2)


@dataclass(eq=False)
class GcWatch:
    """Times each collection through ``gc.callbacks`` (the collector calls it before and
    after); no logging here: the loop-lag watcher reads and reports (``take_slow``)."""

    slow: float = 0.25  #: a pause this long is kept for ``take_slow``
    seconds: float = 0.0  #: time spent collecting, all generations
    pause_max: float = 0.0
    collections: int = 0
    _started: float = 0.0
    _slow: list[tuple[int, float, int]] = field(default_factory=list)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.collections += 1
        self.seconds += pause
        self.pause_max = max(self.pause_max, pause)
        if pause >= self.slow and len(self._slow) < 100:
            self._slow.append((info["generation"], pause, info["collected"]))

    def take_slow(self) -> list[tuple[int, float, int]]:
        """(generation, seconds, objects collected) of each slow pause since the last call."""
        slow, self._slow = self._slow, []
        return slow

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
