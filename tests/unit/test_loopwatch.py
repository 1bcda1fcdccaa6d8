"""The stall sampler (callcenter/loopwatch.py): it names what held the loop."""

from __future__ import annotations

import asyncio
import time

from callcenter.loopwatch import StallSampler


def _hog_the_loop(sampler: StallSampler) -> None:
    """Hold the loop until the sampler has seen it (bounded)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.01)
        with sampler._lock:
            if sampler._samples.total() >= 3:
                return


def test_a_stall_is_sampled_and_named_by_the_function_that_held_the_loop() -> None:
    async def main() -> tuple[str, int, int] | None:
        sampler = StallSampler(after=0.1, every=0.02)
        sampler.start(asyncio.get_running_loop())
        try:
            sampler.take()
            asyncio.get_running_loop().call_soon(_hog_the_loop, sampler)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return sampler.take()
        finally:
            sampler.stop()

    taken = asyncio.run(main())
    assert taken is not None
    stack, count, total = taken
    assert stack.startswith("test_loopwatch.py:_hog_the_loop:")
    assert 3 <= count <= total
